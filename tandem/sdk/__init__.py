"""`tandem.sdk`: what a team's own training script can ask Tandem for (docs/design.md#the-sdk), beyond what
`tandem-run` gives any command. This part needs no torch:

- `progress(step, **metrics)`: a heartbeat for tandem-run's hang watch (no progress line needed in the output);
- `resume_point()`: where this attempt resumes from (tandem-run's TANDEM_RESUME_STEP / TANDEM_RESUME_PATH);
- `batch_plan(global_batch)`: micro-batch and gradient accumulation for this attempt's world size, so the global
  batch, and with it the optimisation trajectory, stays the same after a failover to a pool of another size.

`init()` (tandem.sdk.distributed, imported when called: it needs torch) binds the device and joins the process
group; `tandem.sdk.checkpoint.Checkpointer` saves and loads a script's state at any world size.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tandem.runtime.plan import BatchPlan
from tandem.runtime.plan import batch_plan as _plan

if TYPE_CHECKING:
    from tandem.sdk.distributed import Context

PROGRESS_FILE_ENV = "TANDEM_PROGRESS_FILE"

__all__ = ["BatchPlan", "ResumePoint", "batch_plan", "init", "progress", "resume_point", "world_size"]


def progress(step: int, **metrics: float) -> None:
    """Tell tandem-run that training reached `step` (an optimizer step, counting from 1). Cheap (one small file
    replaced atomically); a no-op outside tandem-run. Metrics that are not finite numbers are left out."""
    path = os.environ.get(PROGRESS_FILE_ENV)
    if not path:
        return
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(float(v))}
    record = json.dumps({"step": int(step), "time": time.time(), "metrics": numbers})
    partial = f"{path}.{os.getpid()}.tmp"
    with open(partial, "w") as out:
        out.write(record)
    os.replace(partial, path)


@dataclass(frozen=True)
class ResumePoint:
    step: int
    path: str


def resume_point() -> ResumePoint | None:
    """The newest complete checkpoint tandem-run found before it started the script; None for a fresh start."""
    step, path = os.environ.get("TANDEM_RESUME_STEP", ""), os.environ.get("TANDEM_RESUME_PATH", "")
    return ResumePoint(int(step), path) if step.isdigit() and path else None


def world_size() -> int:
    """Processes in this attempt: torchrun's WORLD_SIZE in a worker, else the pod contract's nodes x devices."""
    if os.environ.get("WORLD_SIZE", "").isdigit():
        return int(os.environ["WORLD_SIZE"])
    nodes, devices = os.environ.get("TANDEM_NODES", "1"), os.environ.get("TANDEM_DEVICES_PER_NODE", "1")
    return int(nodes) * int(devices) if nodes.isdigit() and devices.isdigit() else 1


def batch_plan(global_batch: int, micro_batch: int | None = None, world: int | None = None) -> BatchPlan:
    """How this attempt reaches `global_batch` sequences per optimizer step: `micro_batch` (an upper bound) per
    rank per forward/backward and `accumulation` passes, for `world` ranks (default: this attempt's). Raises a
    user fault naming the global batch when no world of this size can keep it."""
    return _plan(global_batch, world_size() if world is None else world, micro_batch)


def init(env: Mapping[str, str] | None = None) -> Context:
    """The device and the process group of this attempt (tandem.sdk.distributed.init; imports torch)."""
    from tandem.sdk.distributed import init as _init

    return _init(env)
