"""The recovery policy (docs/design.md#recovery): after an attempt ends with a fault, or cannot get
scheduled, what comes next: fail, restart on the same pool, or fail over to another. Pure."""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tandem.operator.api import Fault, FaultClass, FaultPolicy, TrainingJobSpec

# Faults that say something about the pool's hardware; they count towards a failover.
POOL_FAULTS = frozenset({FaultClass.INTERCONNECT, FaultClass.DEVICE})
# A storage fault (the checkpoint volume is full, read-only, missing, stale) is the volume's, which every pool
# shares: it waits longer for someone to free or fix the volume, never excludes a node, never moves the job.
STORAGE_MIN_BACKOFF_SECONDS = 60.0
STORAGE_BACKOFF_FACTOR = 4
STORAGE_RULE = (f"storage faults wait at least {STORAGE_MIN_BACKOFF_SECONDS:.0f}s ({STORAGE_BACKOFF_FACTOR}x "
                "backoffSeconds, up to maxBackoffSeconds), exclude no node and move no job")


@dataclass(frozen=True)
class RecoveryPlan:
    outcome: Literal["fail", "restart", "failover"]
    pool: str  # the pool of the next attempt (the current one when failing)
    delay_seconds: float
    reason: str  # the Event reason: Failed, Restarting, FailedOver
    message: str


def backoff_seconds(policy: FaultPolicy, streak: int) -> float:
    """backoffSeconds, doubled per consecutive restart, capped by maxBackoffSeconds."""
    return float(min(policy.backoff_seconds * 2 ** max(streak - 1, 0), policy.max_backoff_seconds))


def storage_backoff_seconds(policy: FaultPolicy, streak: int) -> float:
    """STORAGE_BACKOFF_FACTOR x the usual backoff, at least STORAGE_MIN_BACKOFF_SECONDS, capped by
    maxBackoffSeconds (the user's cap wins over the floor)."""
    longer = max(STORAGE_MIN_BACKOFF_SECONDS, STORAGE_BACKOFF_FACTOR * backoff_seconds(policy, streak))
    return float(min(longer, policy.max_backoff_seconds))


def checkpoint_volume(spec: TrainingJobSpec) -> str:
    """The job's checkpoint volume in words, for Events: `persistentVolumeClaim ckpt`, `nfs host:/path`, ..."""
    volume = spec.checkpoint.volume
    if volume.persistent_volume_claim is not None:
        return f"persistentVolumeClaim {volume.persistent_volume_claim.claim_name}"
    if volume.host_path is not None:
        return f"hostPath {volume.host_path.path}"
    if volume.nfs is not None:
        return f"nfs {volume.nfs.server}:{volume.nfs.path}"
    return "emptyDir"


# The files a storage error names: Python's OSError (`[Errno 5] Input/output error: '/path'`, and the second file of
# a copy, `'/a' -> '/b'`), TensorFlow's `path; Input/output error`, coreutils' `'/path': No space left on device`
# and Go's path errors (`write /path: input/output error`).
_NAMED_FILE = re.compile(
    r"\[Errno \d+\][^'\n]*: '(/[^'\n]*)'(?: -> '(/[^'\n]*)')?"
    r"|(/[^\s;'\"]+); [A-Z][a-z/ ]+\b"
    r"|'(/[^'\n]*)': [A-Z][\w/-]* \w"
    r"|\b(?:open|read|write|mkdir|rename|remove|stat|lstat|sync|close|unlinkat|openat) (/[^\s:]+): [a-z][\w/-]* \w"
)


def storage_location(spec: TrainingJobSpec, message: str) -> str:
    """Where a storage fault hit, in words for its Event and message: the checkpoint volume, unless the error names
    only files elsewhere (a dataset, a cache), where it would send the user to look at the wrong volume."""
    mount = posixpath.normpath(spec.checkpoint.path)
    named = [posixpath.normpath(path) for found in _NAMED_FILE.finditer(message) for path in found.groups() if path]
    elsewhere = [path for path in named if path != mount and not path.startswith(mount.rstrip("/") + "/")]
    if not elsewhere or len(elsewhere) < len(named):
        return f"on the checkpoint volume ({checkpoint_volume(spec)})"
    return f"on {elsewhere[0]}, outside the checkpoint volume ({checkpoint_volume(spec)} at {mount})"


def fault_streak(faults: Sequence[Fault]) -> int:
    """Consecutive faults without progress: an attempt that reached a newer checkpoint than the one
    before it resets the backoff, as a crash loop and a fault after hours of training differ."""
    if not faults:
        return 0
    lost = faults[-1].checkpoint_step
    streak = 0
    for fault in reversed(faults):
        if fault.checkpoint_step != lost:
            break
        streak += 1
    return streak


def _fits(pool: str, spec: TrainingJobSpec, capacity: Mapping[str, int]) -> bool:
    return capacity.get(pool, 0) >= spec.nodes


def choose_pool(spec: TrainingJobSpec, current: str, capacity: Mapping[str, int], leave_current: bool) -> str:
    """The pool for the next attempt. `capacity` counts the pods each pool has room for on usable
    nodes (ready, not faulty, not excluded). Without failBack the job only ever moves down `spec.pools`; with it,
    the most preferred pool that fits wins. When nothing else fits, the job stays where it is."""
    candidates = list(spec.pools)
    if not spec.fault_policy.fail_back and current in candidates:
        candidates = candidates[candidates.index(current):]
    if leave_current:
        candidates = [p for p in candidates if p != current]
    for pool in candidates:
        if _fits(pool, spec, capacity):
            return pool
    return current


def _when(delay: float) -> str:
    # The backoff runs from the moment the attempt's last pod has stopped (a rank may take a while to exit).
    return f"{delay:.0f}s after the attempt's pods stop"


def _restart_on_storage(spec: TrainingJobSpec, faults: Sequence[Fault], restarts: int, current: str) -> RecoveryPlan:
    fault, delay = faults[-1], storage_backoff_seconds(spec.fault_policy, fault_streak(faults))
    return RecoveryPlan("restart", current, delay, "Restarting",
                        f"storage fault {fault.reason} {storage_location(spec, fault.message)}: restart "
                        f"{restarts + 1} of {spec.fault_policy.max_restarts} on {current} {_when(delay)}; "
                        f"{STORAGE_RULE}")


def plan_after_fault(spec: TrainingJobSpec, faults: Sequence[Fault], restarts: int, current: str,
                     capacity: Mapping[str, int], *, pool_faults: int, failovers: int) -> RecoveryPlan:
    """`faults` already ends with the fault that ended the attempt (the list is capped: it only gives the
    backoff streak); `restarts` and `failovers` are the counts before it; `pool_faults` counts the
    interconnect/device faults on `current` since the job arrived there, this one included."""
    policy, fault = spec.fault_policy, faults[-1]
    summary = f"{fault.fault_class.value} fault {fault.reason}"
    if fault.fault_class == FaultClass.USER:
        return RecoveryPlan("fail", current, 0.0, "Failed", f"{summary}: retrying cannot help: {fault.message}")
    if restarts >= policy.max_restarts:
        return RecoveryPlan("fail", current, 0.0, "Failed",
                            f"{summary} after {restarts} restart(s): maxRestarts ({policy.max_restarts}) reached")
    if fault.fault_class == FaultClass.STORAGE:
        return _restart_on_storage(spec, faults, restarts, current)
    leave = pool_faults >= policy.failover_after_faults
    may_move = failovers < policy.max_failovers
    target = choose_pool(spec, current, capacity, leave_current=leave) if may_move else current
    delay = backoff_seconds(policy, fault_streak(faults))
    if target == current:
        if not may_move and (leave or not _fits(current, spec, capacity)):
            why = f"; maxFailovers ({policy.max_failovers}) reached: staying on {current}"
        elif _fits(current, spec, capacity):
            why = ""
        else:
            why = f"; no other pool has room for {spec.nodes} pod(s)"
        return RecoveryPlan("restart", current, delay, "Restarting",
                            f"{summary}: restart {restarts + 1} of {policy.max_restarts} on {current} "
                            f"{_when(delay)}{why}")
    because = (f"{pool_faults} interconnect/device fault(s) on {current}" if leave
               else f"{current} has room for fewer than {spec.nodes} pod(s)")
    return RecoveryPlan("failover", target, delay, "FailedOver",
                        f"{summary}: moving from {current} to {target} ({because}); "
                        f"restart {restarts + 1} of {policy.max_restarts} {_when(delay)}")


def plan_after_pending(spec: TrainingJobSpec, current: str, capacity: Mapping[str, int],
                       waited_seconds: float, failovers: int) -> RecoveryPlan | None:
    """Pods unschedulable for pendingTimeoutSeconds: the next pool, at once; None to keep waiting. These
    moves count against maxFailovers too: with failBack, two pools that each lack room would otherwise
    take turns for ever."""
    if waited_seconds < spec.fault_policy.pending_timeout_seconds or failovers >= spec.fault_policy.max_failovers:
        return None
    target = choose_pool(spec, current, capacity, leave_current=True)
    if target == current:
        return None
    return RecoveryPlan("failover", target, 0.0, "FailedOver",
                        f"pods unschedulable on {current} for {waited_seconds:.0f}s "
                        f"(pendingTimeoutSeconds {spec.fault_policy.pending_timeout_seconds}): moving to {target}")
