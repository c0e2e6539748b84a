"""The demo's script: how long it trains, where the checkpoints fall and which steps the two
interconnect faults hit (pure). `--fast` plays the same story in fewer steps."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

INJECT_ENV = "TANDEM_FAULT_INJECT"


@dataclass(frozen=True)
class StoryPlan:
    steps: int
    interval: int  # checkpoint every this many steps
    faults: tuple[tuple[int, int], ...]  # (attempt, step): one HCCL fault per attempt, so a resume never replays it
    rank: int = 1  # the global rank that faults

    def inject(self) -> str:
        return ";".join(f"interconnect@step={step},rank={self.rank},attempt={attempt},flavor=hccl"
                        for attempt, step in self.faults)

    def checkpoint_before(self, step: int) -> int:
        return (step - 1) // self.interval * self.interval


# Each fault lands a few steps after a checkpoint, so some finished steps are lost and trained again.
FULL = StoryPlan(steps=150, interval=10, faults=((1, 47), (2, 86)))
FAST = StoryPlan(steps=16, interval=3, faults=((1, 8), (2, 11)))


def demo_job(base: dict[str, Any], plan: StoryPlan, in_place: bool = True) -> dict[str, Any]:
    """The TrainingJob of examples/demo/ with the plan's steps, checkpoint interval and injected faults; with
    `in_place` false every restart recreates the pods (to compare the two on the same fault)."""
    job = copy.deepcopy(base)
    spec = job["spec"]
    spec.setdefault("faultPolicy", {})["inPlaceRestart"] = in_place
    spec["training"]["steps"] = plan.steps
    # Every step is logged: the loss curve of the report has a point per step.
    spec["training"].setdefault("metrics", {})["logEverySteps"] = 1
    spec["checkpoint"]["intervalSteps"] = plan.interval
    container = spec.setdefault("container", {})
    env = [var for var in container.get("env", []) if var.get("name") != INJECT_ENV]
    container["env"] = [*env, {"name": INJECT_ENV, "value": plan.inject()}]
    return job


def validate(plan: StoryPlan) -> list[str]:
    """Why this plan cannot tell the story (empty: it can): each fault must come after a checkpoint the
    attempt itself reached, and the job must resume from a checkpoint after every fault."""
    problems = []
    resumed = 0
    for attempt, step in plan.faults:
        ckpt = plan.checkpoint_before(step)
        if ckpt <= resumed:
            problems.append(f"the fault of attempt {attempt} at step {step} comes before a new checkpoint")
        if step > plan.steps:
            problems.append(f"the fault of attempt {attempt} at step {step} is after the last step")
        resumed = ckpt
    return problems
