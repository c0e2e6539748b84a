"""Fault classification and the pod's termination message (docs/design.md#fault-classes,
docs/design.md#termination-message).

Pure functions over texts, exception types, exit codes and reports; no torch import, so the launcher
can classify and report even when torch itself is what failed to import.
"""

from __future__ import annotations

import errno
import json
import re
import signal
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import PurePath
from typing import Any, Literal

FaultClass = Literal["interconnect", "device", "node", "oom", "storage", "user", "unknown", "none"]
CLASSES: tuple[FaultClass, ...] = ("interconnect", "device", "node", "oom", "storage", "user", "unknown", "none")

# The launcher's exit code says the class even when the termination message is lost. 1 stays
# "unknown" (Python's own exit code for an unhandled exception) and 2 "user" (argparse's usage error).
EXIT_CODES: dict[FaultClass, int] = {
    "none": 0,
    "unknown": 1,
    "user": 2,
    "interconnect": 3,
    "device": 4,
    "oom": 5,
    "node": 6,
    "storage": 7,
}
MESSAGE_LIMIT = 1000  # Kubernetes keeps at most 4096 bytes of a container's termination message.


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


# (class, reason, pattern): the first match wins, so specific signatures come before generic ones.
# Device OOM before everything: an OOM inside a collective mentions HCCL/NCCL too.
SIGNATURES: tuple[tuple[FaultClass, str, re.Pattern[str]], ...] = tuple(
    (cls, reason, re.compile(pattern, re.IGNORECASE))
    for cls, reason, pattern in [
        ("oom", "DeviceOOM", r"(CUDA|NPU|HIP|XPU) (error: )?out of memory"),
        ("oom", "HostOOM", r"DefaultCPUAllocator: (can't allocate|not enough) memory|Cannot allocate memory"),
        # A kernel's assertion on bad input (labels out of range): the program's bug, though CUDA reports it; no
        # network or hardware fault causes one, so it beats the timeouts it leaves on the other ranks.
        ("user", "DeviceSideAssert", r"device-side assert(ion)? triggered"),
        ("interconnect", "CollectiveTimeout", r"Watchdog caught collective operation timeout"),
        ("interconnect", "HcclSocketTimeout", r"\bEI0006\b|Getting socket times out"),
        ("interconnect", "HcclExecTimeout", r"\bEI0002\b|Notify register times out|hccl fftsplus task timeout"),
        ("interconnect", "HcclLinkError", r"\bEI00(0[0-9]|1[0-9])\b|\bEJ0001\b|\bHCCS\b|\bRoCE\b"),
        ("interconnect", "NcclRemoteError", r"ncclRemoteError|remote process exited or there was a network error"),
        ("interconnect", "NcclSystemError", r"ncclSystemError|unhandled system error"),
        ("interconnect", "NcclError", r"ncclInternalError|ncclUnhandledCudaError|NCCL error|NCCL communicator"),
        ("interconnect", "HcclError", r"HCCL error|HCCL function error|Hccl\w+, error code|DIST call hccl api"),
        # The checkpoint volume (strerror texts of glibc, and torch's own words when a write fails): after the
        # collective libraries (NCCL's /dev/shm running full is its "unhandled system error"), before the
        # generic timeouts and lost peers that a rank stuck on a dead NFS server makes the others show.
        ("storage", "DiskFull", r"No space left on device|\bENOSPC\b"),
        ("storage", "QuotaExceeded", r"Disk quota exceeded|\bEDQUOT\b"),
        ("storage", "ReadOnlyVolume", r"Read-only file system|\bEROFS\b"),
        ("storage", "StaleFileHandle", r"Stale (NFS )?file handle|\bESTALE\b"),
        ("storage", "WriteFailed", r"PytorchStreamWriter failed writing file|unexpected pos \d+ vs \d+"),
        ("storage", "VolumeIOError", r"write\(\): fd \d+ failed with Input/output error"),
        ("storage", "CheckpointUnreadable", r"\bCheckpointUnreadable\b"),
        ("interconnect", "CollectiveTimeout", r"Timed out waiting \d+ms|Socket Timeout|collective.*timed out"),
        ("interconnect", "PeerConnectionLost", r"Connection (closed|reset) by peer|Broken pipe"),
        ("device", "EccError", r"uncorrectable ECC error|ECC_UNCORRECTABLE"),
        ("device", "Xid", r"\bXid\b"),
        ("device", "NpuError", r"ERR00100 PTA call acl api failed|NPU function error|aicore.*(error|time)"),
        ("device", "CudaError", r"CUDA error|CUDA driver|cudaError"),
        ("user", "TorchNpuMissing", r"No module named 'torch_npu'"),
    ]
)

# How unlikely a reason is to be the root cause among the ranks' faults (higher = less likely; any
# other reason is 0). A rank waiting in a collective (1) is waiting for another rank: any fault that
# explains why wins. A lost peer connection (2) is what a rank sees *because* another rank died first.
REASON_RANK = {"CollectiveHang": 1, "PeerConnectionLost": 2}


def classify_text(text: str) -> tuple[FaultClass, str] | None:
    for cls, reason, pattern in SIGNATURES:
        if pattern.search(text):
            return cls, reason
    return None


def excerpt(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """The part of a long error that names the fault: from the line of the first signature on."""
    for _, _, pattern in SIGNATURES:
        match = pattern.search(text)
        if match:
            start = text.rfind("\n", 0, match.start()) + 1
            text = text[start:]
            break
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


_USER_EXCEPTIONS = frozenset(
    {
        "ValueError", "TypeError", "KeyError", "IndexError", "AttributeError", "NameError",
        "AssertionError", "ZeroDivisionError", "NotImplementedError", "ImportError",
        "ModuleNotFoundError", "SyntaxError", "ValidationError", "UnicodeDecodeError",
    }
)  # fmt: skip


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


def _within(path: object, root: str | None) -> bool:
    return bool(root) and isinstance(path, str) and PurePath(path).is_relative_to(str(root))


def _above_or_at(path: object, root: str | None) -> bool:
    return bool(root and path) and isinstance(path, str) and PurePath(str(root)).is_relative_to(path)


def storage_reason(exc: BaseException, checkpoint_dir: str | None = None) -> str | None:
    """The storage fault behind an exception, by errno: ENOSPC, EDQUOT, EROFS, ESTALE anywhere; EIO on the
    checkpoint volume (its path under `checkpoint_dir`, or inside DCP's CheckpointException); ENOENT of the
    checkpoint folder itself or a folder above it (the volume is not mounted). None when it is not one."""
    chain = list(_chain(exc))
    in_checkpoint = any(type(e).__name__ == "CheckpointException" for e in chain)
    for error in chain:
        if not isinstance(error, OSError):
            continue
        if error.errno in STORAGE_ERRNOS:
            return STORAGE_ERRNOS[error.errno]
        if error.errno == errno.EIO and (in_checkpoint or _within(error.filename, checkpoint_dir)):
            return "VolumeIOError"
        if error.errno == errno.ENOENT and _above_or_at(error.filename, checkpoint_dir):
            return "VolumeMissing"
    return None


def checkpoint_unreadable(detail: str) -> FaultError:
    """The fault when no checkpoint on the volume loads (every one failed verification or loading)."""
    return FaultError("storage", "CheckpointUnreadable", f"no checkpoint loads: {detail}")


def classify_exception(exc: BaseException, checkpoint_dir: str | None = None) -> tuple[FaultClass, str, str]:
    """(class, reason, message) of an exception raised in a worker; `checkpoint_dir` (the volume's mount) makes
    an I/O error or a missing folder there a storage fault."""
    if isinstance(exc, FaultError):
        return exc.cls, exc.reason, excerpt(str(exc))
    names = [t.__name__ for t in type(exc).__mro__]
    text = f"{type(exc).__name__}: {exc}"
    storage = storage_reason(exc, checkpoint_dir)
    if storage:
        return "storage", storage, excerpt(text)
    found = classify_text(text)
    if found:
        return found[0], found[1], excerpt(text)
    if "OutOfMemoryError" in names or "MemoryError" in names:
        return "oom", "DeviceOOM" if "OutOfMemoryError" in names else "HostOOM", excerpt(text)
    if "DistBackendError" in names or "DistNetworkError" in names or "DistStoreError" in names:
        return "interconnect", "CollectiveError", excerpt(text)
    if names[0] in ("ModuleNotFoundError", "ImportError"):
        return "user", "ImportError", excerpt(text)
    if any(name in _USER_EXCEPTIONS for name in names):
        return "user", "PythonException", excerpt(text)
    if "OSError" in names:
        return "unknown", "IOError", excerpt(text)
    return "unknown", type(exc).__name__, excerpt(text)


def classify_exit(returncode: int) -> tuple[FaultClass, str, str]:
    """A worker that died without writing a report: all that is left is how it exited."""
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        if -returncode == signal.SIGKILL:
            return "oom", "OOMKilled", "worker killed by SIGKILL (the kernel's OOM killer is the usual sender)"
        if -returncode in (signal.SIGTERM, signal.SIGINT):
            return "node", "Terminated", f"worker stopped by {name}"
        return "unknown", "Crashed", f"worker died of {name}"
    for cls, code in EXIT_CODES.items():
        if code == returncode and cls != "none":
            return cls, "ExitCode", f"worker exited with code {returncode} and left no report"
    return "unknown", "ExitCode", f"worker exited with code {returncode} and left no report"


def root_cause(faults: Iterable[Fault]) -> Fault | None:
    """The first fault among the ranks, not the ones that followed because of it."""
    failed = [f for f in faults if f.cls != "none"]
    if not failed:
        return None
    return min(
        failed,
        key=lambda f: (REASON_RANK.get(f.reason, 0), f.time if f.time is not None else float("inf"), f.rank or 0),
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
