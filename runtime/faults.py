"""Fault classification and the pod's termination message (docs/design.md#fault-classes,
docs/design.md#termination-message).

Pure functions over texts, exception types, exit codes and reports; no torch import, so the launcher
can classify and report even when torch itself is what failed to import.
"""

from __future__ import annotations

import errno
import json
import signal
import traceback
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import PurePath
from typing import Any, Literal

from tandem.faults import read_log
from tandem.faults.reading import DECIDED_BY_TABLE, UNEXPLAINED
from tandem.faults.taxonomy import (
    EXIT_CODES,
    MESSAGE_LIMIT,
    cause_rank,
    class_of_exit_code,
    short,
    signal_meaning,
)

# The report's class: a fault class of the shared taxonomy (tandem.faults), or "none" for a pod that finished.
FaultClass = Literal["interconnect", "device", "node", "oom", "storage", "user", "unknown", "none"]
CLASSES: tuple[FaultClass, ...] = ("interconnect", "device", "node", "oom", "storage", "user", "unknown", "none")


class FaultError(Exception):
    """An error whose class the runtime already knows (bad config, missing torch_npu, ...)."""

    def __init__(self, cls: FaultClass, reason: str, message: str) -> None:
        super().__init__(message)
        self.cls: FaultClass = cls
        self.reason = reason


@dataclass(frozen=True)
class Fault:
    cls: FaultClass
    reason: str
    message: str
    rank: int | None = None
    step: int | None = None
    time: float | None = None  # wall clock when the fault began; the earliest one is the root cause

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["class"] = out.pop("cls")
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        return cls(
            cls=data["class"],
            reason=data["reason"],
            message=data.get("message", ""),
            rank=data.get("rank"),
            step=data.get("step"),
            time=data.get("time"),
        )


# errno -> reason of the storage faults that name the volume wherever they were raised.
STORAGE_ERRNOS = {
    errno.ENOSPC: "DiskFull",
    errno.EDQUOT: "QuotaExceeded",
    errno.EROFS: "ReadOnlyVolume",
    errno.ESTALE: "StaleFileHandle",
}
_CHAIN_LIMIT = 32


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what it was raised from or while handling, and the ranks' errors that DCP's
    CheckpointException wraps (`failures`: rank -> (exception, traceback))."""
    seen: set[int] = set()
    todo = [exc]
    while todo and len(seen) < _CHAIN_LIMIT:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        failures = getattr(current, "failures", None)
        if isinstance(failures, dict):
            todo.extend(f[0] if isinstance(f, tuple) else f for f in failures.values())
        todo.extend(e for e in (current.__cause__, current.__context__) if e is not None)


def _above_or_at(path: object, root: str | None) -> bool:
    return bool(root and path) and isinstance(path, str) and PurePath(str(root)).is_relative_to(path)


def storage_reason(exc: BaseException, checkpoint_dir: str | None = None) -> str | None:
    """The storage fault behind an exception, by errno: ENOSPC, EDQUOT, EROFS, ESTALE anywhere; a bare EIO inside
    DCP's CheckpointException (whose text hides it); ENOENT of the checkpoint folder itself or a folder above it
    (the volume is not mounted). None when it is not one. EIO on a named file is left to the shared table
    (volume-io-error-on-a-file), which reads it as the traceback shows it, so both sides hold one rule."""
    chain = list(_chain(exc))
    in_checkpoint = any(type(e).__name__ == "CheckpointException" for e in chain)
    for error in chain:
        if not isinstance(error, OSError):
            continue
        if error.errno in STORAGE_ERRNOS:
            return STORAGE_ERRNOS[error.errno]
        if error.errno == errno.EIO and in_checkpoint:
            return "VolumeIOError"
        if error.errno == errno.ENOENT and _above_or_at(error.filename, checkpoint_dir):
            return "VolumeMissing"
    return None


def checkpoint_unreadable(detail: str) -> FaultError:
    """The fault when no checkpoint on the volume loads (every one failed verification or loading)."""
    return FaultError("storage", "CheckpointUnreadable", f"no checkpoint loads: {detail}")


def classify_exception(exc: BaseException, checkpoint_dir: str | None = None) -> tuple[FaultClass, str, str]:
    """(class, reason, message) of an exception raised in a worker or the launcher; `checkpoint_dir` (the volume's
    mount) makes a missing folder there a storage fault. The exception is judged as its traceback
    reads in a pod's log (tandem.faults.read_log), so the operator gives the same class for the same evidence;
    only what a log cannot show comes first: a class the runtime already knows and the errno of a storage fault."""
    if isinstance(exc, FaultError):
        return exc.cls, exc.reason, short(str(exc))
    text = f"{type(exc).__name__}: {exc}"
    storage = storage_reason(exc, checkpoint_dir)
    if storage:
        return "storage", storage, short(text)
    reading = read_log("".join(traceback.format_exception(exc)))
    if reading is None or reading.rule == UNEXPLAINED:
        # No table entry, no user frame and no user exception type explains it: unknown, named by its type, as the
        # operator names it (what only the runtime could see, a base class, would make the two sides disagree).
        return "unknown", type(exc).__name__, short(text)
    # The message: from the line of the exception's own text that decided, else the exception's first line.
    own = read_log(text)
    message = own.message if own is not None and own.rule in DECIDED_BY_TABLE else text
    return reading.fault_class.value, reading.reason, short(message)


def classify_text(text: str) -> tuple[FaultClass, str] | None:
    """(class, reason) of an error text, as the shared table reads it; None when it holds no evidence."""
    reading = read_log(text)
    return None if reading is None else (reading.fault_class.value, reading.reason)


def classify_exit(returncode: int, oom_killed: bool = False) -> tuple[FaultClass, str, str]:
    """A worker that died without writing a report: all that is left is how it exited, and whether the kernel's
    OOM killer struck in the pod's memory cgroup meanwhile (`oom_killed`)."""
    if returncode < 0:
        if -returncode == signal.SIGKILL and oom_killed:
            return "oom", "OOMKilled", "worker killed by the kernel's OOM killer (the pod's memory cgroup counted one)"
        cls, reason, name = signal_meaning(-returncode)
        if reason == "Killed":
            return cls.value, reason, f"worker killed by {name}; the pod's memory cgroup counted no OOM kill"
        if reason == "Terminated":
            return cls.value, reason, f"worker stopped by {name}"
        return cls.value, reason, f"worker died of {name}"
    cls = class_of_exit_code(returncode)
    if cls is not None and returncode != EXIT_CODES["unknown"]:
        return cls.value, "ExitCode", f"worker exited with code {returncode} and left no report"
    return "unknown", "ExitCode", f"worker exited with code {returncode} and left no report"


def root_cause(faults: Iterable[Fault]) -> Fault | None:
    """The first fault among the ranks, not the ones that followed because of it."""
    failed = [f for f in faults if f.cls != "none"]
    if not failed:
        return None
    return min(
        failed,
        key=lambda f: (cause_rank(f.cls, f.reason), f.time if f.time is not None else float("inf"), f.rank or 0),
    )


def termination_message(
    fault: Fault | None,
    *,
    step: int | None,
    checkpoint_step: int | None,
    resumed_from: int | None,
    finished: bool,
) -> dict[str, Any]:
    """One JSON object for the pod (docs/design.md#termination-message)."""
    if fault is None:
        fault = (
            Fault("none", "Completed", f"trained to step {step}")
            if finished
            else Fault("unknown", "Incomplete", "the workers exited before the last step without reporting a fault")
        )
    return {
        "class": fault.cls,
        "reason": fault.reason,
        "message": fault.message[:MESSAGE_LIMIT],
        "rank": fault.rank,
        "step": fault.step if fault.step is not None else step,
        "checkpointStep": checkpoint_step,
        "resumedFrom": resumed_from,
    }


def exit_code(message: dict[str, Any]) -> int:
    return EXIT_CODES.get(message["class"], EXIT_CODES["unknown"])


def dumps(message: dict[str, Any]) -> str:
    return json.dumps(message, separators=(",", ":"), sort_keys=False)
