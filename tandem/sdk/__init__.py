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
import sys
import time
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from tandem.backends import DEFAULT_BACKEND
from tandem.faults.taxonomy import MESSAGE_LIMIT
from tandem.runtime.faults import FaultError
from tandem.runtime.inject import Injector, parse_inject
from tandem.runtime.plan import BatchPlan
from tandem.runtime.plan import batch_plan as _plan

if TYPE_CHECKING:
    from tandem.sdk.distributed import Context

PROGRESS_FILE_ENV = "TANDEM_PROGRESS_FILE"

__all__ = ["BatchPlan", "ResumePoint", "batch_plan", "init", "progress", "resume_point", "world_size"]


def progress(step: int, **metrics: float) -> None:
    """Tell tandem-run that training reached `step` (an optimizer step, counting from 1). Cheap (one small file
    replaced atomically); a no-op outside tandem-run. Metrics that are not finite numbers are left out.

    With TANDEM_FAULT_INJECT set (demos and tests; the grammar of tandem-train's, runtime/README.md), the faults
    of `step` fire here, in this rank, with the exception types and texts the real faults raise."""
    path = os.environ.get(PROGRESS_FILE_ENV)
    if path:
        _beat(path, step, metrics)
    _inject(step)


def _beat(path: str, step: int, metrics: dict[str, float]) -> None:
    numbers = {k: float(v) for k, v in metrics.items() if isinstance(v, int | float) and math.isfinite(float(v))}
    record = json.dumps({"step": int(step), "time": time.time(), "metrics": numbers})
    partial = f"{path}.{os.getpid()}.tmp"
    with open(partial, "w") as out:
        out.write(record)
    os.replace(partial, path)


FAULT_DIR_ENV = "TANDEM_FAULT_DIR"
_injectors: dict[str, Injector] = {}
_checkpointers: weakref.WeakSet[Any] = weakref.WeakSet()  # every live tandem.sdk.checkpoint.Checkpointer


def _report_fault(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    """sys.excepthook while tandem.sdk is imported: a Tandem fault that ends the script (a superseded attempt's
    save, an unreadable checkpoint, a bad environment) is left for tandem-run with its class, which the traceback
    text alone does not carry; then the previous hook prints the traceback as always."""
    folder = os.environ.get(FAULT_DIR_ENV)
    if folder and isinstance(error, FaultError):
        record = {"class": error.cls, "reason": error.reason, "message": str(error)[:MESSAGE_LIMIT],
                  "rank": int(os.environ.get("RANK") or 0), "time": time.time()}
        try:
            partial = os.path.join(folder, f".{os.getpid()}.tmp")
            with open(partial, "w") as out:
                out.write(json.dumps(record))
            os.replace(partial, os.path.join(folder, f"fault-{os.getpid()}.json"))
        except OSError:
            pass  # the traceback still reaches the log, and tandem-run reads that
    _previous_hook(kind, error, trace)


_previous_hook = sys.excepthook
sys.excepthook = _report_fault


def _inject(step: int) -> None:
    """Fire the injected faults of `step` for this rank and attempt, once the checkpoint writes in flight have
    committed. The default flavor is the pool's library (TANDEM_BACKEND), as in tandem-train, even where a CPU
    stands in for the device."""
    text = os.environ.get("TANDEM_FAULT_INJECT", "")
    if not text:
        return
    if text not in _injectors:
        env = os.environ
        accelerator = env.get("TANDEM_ACCELERATOR", "cpu")
        _injectors[text] = Injector(parse_inject(text), int(env.get("RANK") or 0), int(env.get("LOCAL_RANK") or 0),
                                    int(env.get("TANDEM_ATTEMPT") or 1),
                                    env.get("TANDEM_BACKEND") or DEFAULT_BACKEND.get(accelerator, "gloo"), accelerator)
    injector = _injectors[text]
    if not injector.due(step):
        return
    for checkpointer in list(_checkpointers):  # a demo or test knows which checkpoint the restart finds
        checkpointer.wait()
    injector.compute(step)
    injector.collective(step)


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


def init(env: Mapping[str, str] | None = None, *, mixed_precision: bool | None = None,
         timeout_seconds: float | None = None) -> Context:
    """The device and the process group of this attempt (tandem.sdk.distributed.init; imports torch)."""
    from tandem.sdk.distributed import init as _init

    return _init(env, mixed_precision=mixed_precision, timeout_seconds=timeout_seconds)
