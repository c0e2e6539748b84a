"""The fault taxonomy that the operator and the runtime share (docs/design.md#fault-classes): the classes, what
the runtime's exit codes and a worker's death signal mean, which reasons are symptoms of another rank's fault,
which Python exceptions are the user's, and how long a message may be. Plain data and small pure functions; no
torch, no Kubernetes client, so both images import it."""

from __future__ import annotations

import re
import signal
from enum import StrEnum


class FaultClass(StrEnum):
    """What broke: interconnect, device, node, oom, storage, user or unknown (docs/design.md#fault-classes)."""

    INTERCONNECT = "interconnect"
    DEVICE = "device"
    NODE = "node"
    OOM = "oom"
    # The checkpoint volume: full, over quota, read-only, missing, stale, or no checkpoint on it loads.
    STORAGE = "storage"
    USER = "user"
    UNKNOWN = "unknown"


# The classes that blame the node the fault was seen on (its next attempts avoid it, the pool's failover budget
# is spent).
NODE_CLASSES = frozenset({FaultClass.INTERCONNECT, FaultClass.DEVICE, FaultClass.NODE})

# The launcher's exit code says the class even when the termination message is lost. 1 stays "unknown"
# (Python's own exit code for an unhandled exception) and 2 "user" (argparse's usage error). Codes 3-7 mean a
# class only when `tandem-train` set them: any other program may exit 3 for its own reasons.
EXIT_CODES: dict[str, int] = {
    "none": 0,
    "unknown": 1,
    "user": 2,
    "interconnect": 3,
    "device": 4,
    "oom": 5,
    "node": 6,
    "storage": 7,
}
LAUNCHER_ONLY_CODES = frozenset(code for cls, code in EXIT_CODES.items() if cls not in ("none", "unknown", "user"))


def class_of_exit_code(code: int) -> FaultClass | None:
    """The class `tandem-train` means by an exit code (1 and 2 included), None for 0 and codes it never uses."""
    for cls, value in EXIT_CODES.items():
        if value == code and cls != "none":
            return FaultClass(cls)
    return None


# Kubernetes keeps at most 4096 bytes of a container's termination message; a fault's message in a job's status
# and in the termination message is cut to this many characters.
MESSAGE_LIMIT = 1000


def short(text: str, limit: int = MESSAGE_LIMIT) -> str:
    text = text.strip()
    return text if len(text) <= limit else text[: limit - 3] + "..."


# What a rank says *because* another rank failed first, by tier: 1, it waited for a peer that never came (a
# collective timed out or hung); 2, its peer vanished or its launcher stopped it. Never the root cause when
# another rank shows one (tier 0), and no evidence against the rank's own node.
SYMPTOMS: dict[str, int] = {
    "CollectiveHang": 1, "CollectiveTimeout": 1, "HcclSocketTimeout": 1, "HcclExecTimeout": 1,
    "HcclNotifyWaitTimeout": 1, "StreamSyncTimeout": 1, "TaskTimeout": 1, "CollectiveAborted": 1, "StoreTimeout": 1,
    "StoreConnectionLost": 2,
    "PeerConnectionLost": 2, "NcclRemoteError": 2, "WorkerStopped": 2,
}  # fmt: skip
SYMPTOM_REASONS = frozenset(SYMPTOMS)
PEER_DIED = frozenset(reason for reason, tier in SYMPTOMS.items() if tier == 2)


def symptom_tier(reason: str) -> int:
    """0 for a root cause; higher tiers are less likely to be the first fault among the ranks."""
    return SYMPTOMS.get(reason, 0)


def cause_rank(fault_class: str, reason: str) -> int:
    """How unlikely a rank's fault is to be the attempt's root cause, the same for the operator (across pods) and
    the runtime (across a pod's ranks): 0 a named cause, 1 unknown, 2 a rank that waited for a peer, 3 a rank
    whose peer died. Ties go to the earliest fault, then the lowest rank."""
    tier = symptom_tier(reason)
    if tier:
        return 1 + tier
    return 1 if fault_class == FaultClass.UNKNOWN else 0


# Exceptions of the user's own code or config, wherever they were raised: retrying cannot fix them. A missing
# file is the job's path (a missing checkpoint volume is storage: tandem.runtime.faults.storage_reason).
USER_EXCEPTIONS = frozenset({
    "ValueError", "KeyError", "TypeError", "IndexError", "AttributeError", "NameError", "UnboundLocalError",
    "AssertionError", "ZeroDivisionError", "OverflowError", "NotImplementedError", "RecursionError", "LookupError",
    "ImportError", "ModuleNotFoundError", "SyntaxError", "IndentationError", "TabError", "FileNotFoundError",
    "IsADirectoryError", "NotADirectoryError", "UnicodeDecodeError", "UnicodeEncodeError", "JSONDecodeError",
    "ValidationError", "ArgumentError", "HFValidationError", "ConfigAttributeError", "ConfigKeyError",
    "MissingMandatoryValue", "InterpolationResolutionError", "ScannerError", "ParserError", "TomlDecodeError",
    "TOMLDecodeError", "MisconfigurationException", "ConfigCompositionException", "MissingConfigException",
    "OverrideParseException", "RepositoryNotFoundError", "GatedRepoError", "RevisionNotFoundError",
})  # fmt: skip
IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError"})
# Launchers' summaries of a failed worker: the worker's own traceback above them says why.
LAUNCHER_WRAPPERS = frozenset({"ChildFailedError", "SignalException"})
# Launchers that run the workers as subprocesses and raise CalledProcessError when one exits non-zero, in the frame
# that raises it: `accelerate launch` (accelerate/commands/launch.py, simple_launcher) and torch.distributed.launch
# before torch 1.9 (pytorch/pytorch#16069). There, too, the worker's traceback above says why.
LAUNCHER_FRAME = re.compile(r"accelerate[/\\]commands[/\\]launch\.py|torch[/\\]distributed[/\\]launch\.py")


def launcher_wrapper(name: str, frame: str) -> bool:
    """Is this exception a launcher's report that a worker failed, rather than a failure of its own?"""
    return name in LAUNCHER_WRAPPERS or (name == "CalledProcessError" and bool(LAUNCHER_FRAME.search(frame)))


def user_exception(names: list[str]) -> str | None:
    """"ImportError" or "PythonException" when an exception (its class names, most derived first) is the user's."""
    if names and names[0] in IMPORT_ERRORS:
        return "ImportError"
    return "PythonException" if any(name in USER_EXCEPTIONS for name in names) else None


# What a process's death signal says on its own: (class, reason, decisive). Weak (not decisive) meanings stand
# only when no other evidence explains the death. SIGKILL without the kubelet's OOMKilled is not proof of an OOM:
# the kubelet kills after a grace period, a launcher kills the rest of a failed gang, a user runs `kill -9`.
SIGNAL_MEANINGS: dict[int, tuple[FaultClass, str, bool]] = {
    signal.SIGKILL: (FaultClass.UNKNOWN, "Killed", False),
    signal.SIGTERM: (FaultClass.NODE, "Terminated", False),
    signal.SIGINT: (FaultClass.NODE, "Terminated", False),
    signal.SIGABRT: (FaultClass.UNKNOWN, "Aborted", False),
}


def signal_meaning(signum: int) -> tuple[FaultClass, str, str]:
    """(class, reason, signal name) for a process that died of `signum`."""
    try:
        name = signal.Signals(signum).name
    except ValueError:
        name = f"signal {signum}"
    cls, reason, _ = SIGNAL_MEANINGS.get(signum, (FaultClass.UNKNOWN, "Crashed", False))
    return cls, reason, name
