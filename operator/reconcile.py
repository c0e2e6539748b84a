"""The operator's functional core: from a TrainingJob, its pools, nodes and pods, decide the next
status and the actions that get the cluster there. No I/O and no clock: `now` is an argument.

The shell applies a Decision in a fixed order: the status first (it is the job's write-ahead
log: an operator that dies after it resumes from it), then deletions, then creations, then the
Events. Every decision is idempotent: reconciling the same state twice changes nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from tandem.operator.api import AcceleratorPool, Condition, JobPhase, TrainingJob, TrainingJobStatus
from tandem.operator.observe import (
    Obj,
    attempt_of,
    first_failure,
    is_bound,
    is_finished,
    is_terminating,
    node_is_ready,
    phase_of,
    pool_nodes,
    rank_of,
)
from tandem.operator.podspec import attempt_pod, headless_service, image_for

TERMINAL = (JobPhase.SUCCEEDED, JobPhase.FAILED)
RECHECK_SECONDS = 30.0  # how soon a job waiting on something outside its pods looks again


@dataclass(frozen=True)
class Observation:
    job: TrainingJob
    pools: Mapping[str, AcceleratorPool]
    nodes: Sequence[Obj]
    pods: Sequence[Obj]  # every pod labelled with this job, all attempts
    service_exists: bool
    now: datetime


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Decision:
    status: TrainingJobStatus
    create: list[Obj] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # pod names
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None

    def changes(self, before: TrainingJobStatus) -> bool:
        return bool(self.create or self.delete or self.events or self.status != before)


def set_condition(status: TrainingJobStatus, type_: str, value: bool, reason: str, message: str,
                  now: datetime, generation: int) -> None:
    """metav1.Condition semantics: lastTransitionTime moves only when the status flips."""
    wanted = "True" if value else "False"
    for index, condition in enumerate(status.conditions):
        if condition.type == type_:
            moved = now if condition.status.value != wanted else condition.last_transition_time
            status.conditions[index] = Condition(type=type_, status=wanted, reason=reason, message=message,
                                                 last_transition_time=moved, observed_generation=generation)
            return
    status.conditions.append(Condition(type=type_, status=wanted, reason=reason, message=message,
                                       last_transition_time=now, observed_generation=generation))


def _generation(job: TrainingJob) -> int:
    return int(job.metadata.get("generation", 1))


class _Step:
    """One reconcile: the working copy of the status plus the actions decided so far."""

    def __init__(self, obs: Observation) -> None:
        self.obs = obs
        self.job = obs.job
        self.decision = Decision(status=obs.job.status.model_copy(deep=True))
        self.status = self.decision.status

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.decision.events.append(Event(type_, reason, message))

    def condition(self, type_: str, value: bool, reason: str, message: str) -> None:
        set_condition(self.status, type_, value, reason, message, self.obs.now, _generation(self.job))

    def move_to(self, phase: JobPhase, reason: str, message: str, warning: bool = False) -> None:
        """Change phase with an Event, a condition and a human message; no-op when already there."""
        if self.status.phase == phase and self.status.message == message:
            return
        self.status.phase, self.status.message = phase, message
        self.event("Warning" if warning else "Normal", reason, message)
        self.condition("Ready", phase == JobPhase.RUNNING, reason, message)
        if phase in TERMINAL:
            self.status.completion_time = self.obs.now
            self.condition(phase.value, True, reason, message)

    def fail(self, reason: str, message: str) -> Decision:
        self.move_to(JobPhase.FAILED, reason, message, warning=True)
        self.delete_unfinished(self.obs.pods)
        return self.decision

    def delete_unfinished(self, pods: Sequence[Obj]) -> None:
        for pod in pods:
            if not is_finished(pod) and not is_terminating(pod):
                self.decision.delete.append(pod["metadata"]["name"])


def reconcile(obs: Observation) -> Decision:
    step = _Step(obs)
    status, spec = step.status, obs.job.spec
    if status.phase in TERMINAL:
        return step.decision  # a finished job is history: nothing is changed, not even observedGeneration
    status.observed_generation = _generation(obs.job)

    pool_name = status.pool or spec.pools[0]
    pool = obs.pools.get(pool_name)
    if pool is None:
        return step.fail("PoolNotFound", f"AcceleratorPool {pool_name!r} does not exist")
    if image_for(obs.job, pool) is None:
        return step.fail("NoImage", f"neither the job's container.image nor pool {pool_name!r} names an image")

    if status.attempt == 0:
        if not _pool_can_hold(step, pool):
            return step.decision
        status.attempt, status.pool, status.start_time = 1, pool_name, status.start_time or obs.now
        step.move_to(JobPhase.PENDING, "AttemptStarted",
                     f"attempt 1 on pool {pool_name}: {spec.nodes} pod(s) of {pool.spec.devices_per_node} device(s)")

    current = [p for p in obs.pods if attempt_of(p) == status.attempt]
    step.delete_unfinished([p for p in obs.pods if attempt_of(p) != status.attempt])

    failure = first_failure(current)
    if failure is not None:
        # Gang semantics: one failed rank ends the attempt. Fault handling decides what comes next.
        return step.fail("PodFailed", failure.describe())
    if len(current) == spec.nodes and all(phase_of(p) == "Succeeded" for p in current):
        step.move_to(JobPhase.SUCCEEDED, "Succeeded", f"all {spec.nodes} rank(s) finished")
        return step.decision

    present = {rank_of(p) for p in current}
    missing = [rank for rank in range(spec.nodes) if rank not in present]
    if missing and status.phase == JobPhase.RUNNING:
        return step.fail("PodDeleted", f"pod(s) of rank {missing} disappeared while the attempt was running")
    if not obs.service_exists:
        step.decision.create.append(headless_service(obs.job))
    for rank in missing:
        step.decision.create.append(attempt_pod(obs.job, pool, status.attempt, rank, status.excluded_nodes))

    _follow_pods(step, current, missing)
    return step.decision


def _pool_can_hold(step: _Step, pool: AcceleratorPool) -> bool:
    """A job larger than its pool would hold some nodes forever: wait, and say why."""
    ready = [n for n in pool_nodes(pool, list(step.obs.nodes)) if node_is_ready(n)]
    needed = step.job.spec.nodes
    if len(ready) >= needed:
        step.condition("PoolCapacity", True, "Enough", f"pool {pool.metadata['name']} has {len(ready)} ready node(s)")
        return True
    message = f"needs {needed} node(s); pool {pool.metadata['name']} has {len(ready)} ready"
    if step.status.message != message:
        step.status.message = message
        step.event("Warning", "PoolTooSmall", message)
    step.condition("PoolCapacity", False, "PoolTooSmall", message)
    step.decision.requeue_after = RECHECK_SECONDS
    return False


def _follow_pods(step: _Step, current: list[Obj], missing: list[int]) -> None:
    if missing:
        return  # they are being created: the phase stays where it is
    if all(phase_of(p) in ("Running", "Succeeded") for p in current):
        step.move_to(JobPhase.RUNNING, "Running", f"all {len(current)} rank(s) running")
    elif all(is_bound(p) for p in current):
        step.move_to(JobPhase.STARTING, "Starting", f"all {len(current)} pod(s) scheduled; waiting for them to run")
    else:
        waiting = sum(1 for p in current if not is_bound(p))
        step.move_to(JobPhase.PENDING, "Scheduling", f"waiting for {waiting} pod(s) to be scheduled")


def status_patch(decision: Decision) -> dict[str, Any]:
    return {"status": decision.status.to_dict()}
