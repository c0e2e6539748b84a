"""Every collective timeout of a training process, derived in one place (no torch): the supervisor
(tandem-train's launcher, tandem-run) exports the vendor variables, and the process group that tandem.sdk.init
joins takes its timeout from the same derivation, so the two never disagree.

The order, from first to fire to last (W is the job's deadline: tandem-train's `watchdogSeconds`, tandem-run's
`faultPolicy.progressTimeoutSeconds`):

1. Tandem's own watchdog at W: it knows the step and the phase and writes a precise report.
2. HCCL's execution timeout E > W (W + EXEC_MARGIN, then as HCCL will really apply it): HCCL ends the stuck
   task itself and writes its own diagnosis to the plog.
3. The process group's timeout T > max(E, C) + PG_MARGIN, where C is HCCL_CONNECT_TIMEOUT: torch_npu warns that a
   watchdog timeout at or below HCCL's execution timeout loses the plog ("The plog may not be recorded",
   ProcessGroupHCCL.cpp), and a process group that gives up before C (120 s at least) fails rendezvous that HCCL
   would still have completed. T is never exactly 1800 s: torch_npu takes 30 min as "not set" and replaces it with
   HCCL_EXEC_TIMEOUT + 1800 s (ProcessGroupHCCL.cpp, DEFAULT_TIMEOUT in ProcessGroupHCCL.hpp, v7.1.0-pytorch2.6.0).

HCCL_EXEC_TIMEOUT by chip generation (CANN environment variable reference, envref_07_0078, 8.0 and 9.0):
- Atlas training series (910A, `ascend910`): (0, 17340] s; HCCL uses the value floored to a multiple of 68 s, and
  68 s below that: so Tandem exports a multiple of 68 at or above W + margin.
- Atlas A2 / A3 (910B, 910C: `ascend910b`, `ascend910c`): [0, 2147483647] s, 0 = never; whole seconds.
- In "AIV" expansion mode (HCCL_OP_EXPANSION_MODE=AIV) on A2/A3: [0, 1091] s, 0 or more than 1091 means 1091.
- An unknown generation is treated as the strictest: a multiple of 68, at most 17340.
Where the range cannot hold W + margin, HCCL fires before Tandem's watchdog; the derivation says so in `notes`.
HCCL_CONNECT_TIMEOUT: [120, 7200] s on every generation.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

from tandem.chips import GENERATION_ENV, Generation, generation_of

EXEC_MARGIN = 30  # seconds between Tandem's deadline and HCCL's execution timeout
PG_MARGIN = 60  # seconds between the later HCCL timeout and the process group's
NCCL_MARGIN = 30  # seconds between Tandem's deadline and NCCL's (or gloo's) process-group timeout
CONNECT_RANGE = (120, 7200)
EXEC_STEP_910A = 68
EXEC_MAX_910A = 17340
EXEC_MAX_A2 = 2147483647
EXEC_MAX_AIV = 1091
TORCH_NPU_DEFAULT_SECONDS = 1800  # a process-group timeout torch_npu treats as "not set"
# torch_npu 2.6.0 reads HCCL_ASYNC_ERROR_HANDLING; newer releases TORCH_HCCL_ASYNC_ERROR_HANDLING: both are set.
ASYNC_ERROR_HANDLING = ("HCCL_ASYNC_ERROR_HANDLING", "TORCH_HCCL_ASYNC_ERROR_HANDLING")


@dataclass(frozen=True)
class Timeouts:
    deadline: float  # Tandem's own (W)
    process_group: timedelta  # for init_process_group
    env: dict[str, str]  # the vendor variables to export (those the pool or job set are left out)
    hccl_exec: int | None = None  # the execution timeout HCCL will really apply (None: never, or not an NPU)
    hccl_connect: int | None = None
    notes: tuple[str, ...] = ()  # where the order could not be kept, and why


def _int(value: str | None) -> int | None:
    """A timeout the environment sets, in whole seconds; None when unset or not a finite number (`inf`, `nan`)."""
    try:
        return int(float(value)) if value not in (None, "") else None
    except (ValueError, OverflowError):
        return None


def effective_exec(value: int, generation: Generation, aiv: bool) -> int | None:
    """The execution timeout HCCL applies for HCCL_EXEC_TIMEOUT=`value` (None: it never times out)."""
    if generation in ("ascend910b", "ascend910c"):
        if aiv:
            return EXEC_MAX_AIV if value <= 0 or value > EXEC_MAX_AIV else value
        return None if value == 0 else min(value, EXEC_MAX_A2)
    value = min(max(value, 1), EXEC_MAX_910A)
    return max(EXEC_STEP_910A, value // EXEC_STEP_910A * EXEC_STEP_910A)


def exec_for(deadline: float, generation: Generation, aiv: bool) -> int:
    """The HCCL_EXEC_TIMEOUT to export so that HCCL fires after `deadline` + EXEC_MARGIN, as far as the
    generation's range allows."""
    wanted = math.ceil(deadline) + EXEC_MARGIN
    if generation in ("ascend910b", "ascend910c"):
        return min(wanted, EXEC_MAX_AIV if aiv else EXEC_MAX_A2)
    return min(math.ceil(wanted / EXEC_STEP_910A) * EXEC_STEP_910A, EXEC_MAX_910A)


def _unset(wanted: dict[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """What to export: the variables the pool or the job did not set themselves."""
    return {k: v for k, v in wanted.items() if k not in env}


def _process_group(seconds: float) -> timedelta:
    return timedelta(seconds=seconds + 1 if seconds == TORCH_NPU_DEFAULT_SECONDS else seconds)


def derive(accelerator: str, deadline: float, env: Mapping[str, str], generation: Generation = "unknown") -> Timeouts:
    """The timeouts for a job whose own deadline is `deadline` seconds, on `accelerator`; `env` is the
    environment the pool and the job give (their HCCL values win, and the process group follows what HCCL will
    really apply)."""
    if accelerator != "npu":
        nccl = {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "1"} if accelerator == "gpu" else {}
        return Timeouts(deadline, _process_group(deadline + NCCL_MARGIN), _unset(nccl, env))
    aiv = env.get("HCCL_OP_EXPANSION_MODE", "").upper() == "AIV"
    out = {name: "1" for name in ASYNC_ERROR_HANDLING}
    exec_set = _int(env.get("HCCL_EXEC_TIMEOUT"))
    exec_value = exec_set if exec_set is not None else exec_for(deadline, generation, aiv)
    out["HCCL_EXEC_TIMEOUT"] = str(exec_value)
    connect_set = _int(env.get("HCCL_CONNECT_TIMEOUT"))
    lo, hi = CONNECT_RANGE
    connect = connect_set if connect_set is not None else min(max(math.ceil(deadline) + EXEC_MARGIN, lo), hi)
    out["HCCL_CONNECT_TIMEOUT"] = str(connect)
    hccl_exec = effective_exec(exec_value, generation, aiv)
    notes = []
    if hccl_exec is not None and hccl_exec <= deadline:
        source = "the pool or job set HCCL_EXEC_TIMEOUT" if exec_set is not None else f"the {generation} range"
        notes.append(f"HCCL's execution timeout ({hccl_exec} s, {source}{', AIV mode' if aiv else ''}) fires before"
                     f" Tandem's deadline ({deadline:g} s): hangs are reported by HCCL")
    later = max(hccl_exec if hccl_exec is not None else deadline, connect)
    if hccl_exec is None:
        notes.append("HCCL_EXEC_TIMEOUT=0: HCCL never times out a task; the process group follows Tandem's deadline")
    pg = _process_group(max(later, deadline) + PG_MARGIN)
    return Timeouts(deadline, pg, _unset(out, env), hccl_exec, connect, tuple(notes))


def for_environment(accelerator: str, deadline: float, env: Mapping[str, str]) -> Timeouts:
    """`derive` with the chip generation the environment names (unknown when it names none)."""
    return derive(accelerator, deadline, env, generation_of(env.get(GENERATION_ENV)))
