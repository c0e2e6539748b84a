"""What a pod's log tail says about why it failed (docs/design.md#fault-classes, the last source): the Python
tracebacks in it and the fault signatures of the runtime's table. Pure functions over text; no I/O, no
torch; text that is not what it should be gives no verdict, never an exception.

terminationMessagePolicy FallbackToLogsOnError leaves the last 2048 bytes / 80 lines of the log in
`terminated.message` when the container wrote no termination message; that is the text read here.

A log is the user's to write, so words in it prove little: a training script may print "CUDA error" or
"out of memory" and then fail on its own KeyError. What counts:
- the exception that ended the last traceback, and where it was raised: a user's exception type, or any
  exception a `raise` in the user's own frames threw, is `user`, whatever an earlier line says (a wrapper
  the user raised `from` a library's error is judged by that error);
- lines the collective library, torch, the Ascend CANN stack or the NVIDIA driver printed themselves (a C++
  source location, NCCL's and CANN's error codes, NVRM): only they make a hardware verdict `confident`,
  and only they outrank the user's own exception.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from tandem.operator.api_types import FaultClass
from tandem.operator.device_reports import xid_class, xid_numbers
from tandem.runtime.faults import SIGNATURES

MESSAGE_LIMIT = 1000

# Exceptions of the user's own code or config: retrying cannot fix them.
USER_EXCEPTIONS = frozenset({
    "ValueError", "KeyError", "TypeError", "IndexError", "AttributeError", "NameError", "UnboundLocalError",
    "AssertionError", "ZeroDivisionError", "OverflowError", "NotImplementedError", "RecursionError", "LookupError",
    "ImportError", "ModuleNotFoundError", "SyntaxError", "IndentationError", "TabError", "FileNotFoundError",
    "IsADirectoryError", "NotADirectoryError", "UnicodeDecodeError", "UnicodeEncodeError", "JSONDecodeError",
    "ValidationError",
})  # fmt: skip
_IMPORT_ERRORS = frozenset({"ImportError", "ModuleNotFoundError"})
# torchrun's summary of a failed worker: the worker's own traceback above it says why.
_LAUNCHER_WRAPPERS = frozenset({"ChildFailedError"})
_NODE_BLAMING = frozenset({FaultClass.INTERCONNECT, FaultClass.DEVICE, FaultClass.NODE})
# Faults in the origin's chain that explain the Python exception they raised (a full volume, an ECC error).
_BEATS_USER_EXCEPTIONS = frozenset({FaultClass.OOM, FaultClass.DEVICE, FaultClass.USER, FaultClass.NODE,
                                    FaultClass.STORAGE})
# What launchers put in front of each line: "[rank3]: ", "[80746] ", "(train pid=8464) ", "(Worker_TP1 pid=..) ".
_LINE_PREFIX = re.compile(r"^(?:\s*(?:\[rank\d+\]:|\[\d+\]|\([^()\n]*pid=\d+[^()\n]*\)))+ ?")
_EXCEPTION_LINE = re.compile(r"^((?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure)))(?::(.*))?$")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
_FRAME_LINE = re.compile(r'^\s*File "([^"]*)", line \d+')
_CARETS = re.compile(r"^\s*[~^]+\s*$")
# Frames of installed code (the interpreter, torch, torch_npu, any pip package) rather than the job's own.
_LIBRARY_PATH = re.compile(r"site-packages|dist-packages|/lib(?:64)?/python\d|<frozen |/torch(?:_npu)?/")
# A line that the library or the driver printed, not the user: a C++ source location (c10d's glog lines,
# "NCCL error in: .../NCCLUtils.hpp:268", torch_npu's "OpParamMaker.cpp:281" and "compiler_depend.ts:25"),
# NCCL's own words (its version, its result codes ncclSystemError/ncclRemoteError, WorkNCCL(...), NCCL WARN),
# CANN's error codes ("EI0006: [PID: ...", "ERR00100 PTA call acl api failed"), the NVIDIA kernel driver
# ("NVRM: Xid ..."), and the trailer c10 prints under every CUDA error. Texts: tests/data/faults/log_tails.yaml.
_LIBRARY_LINE = re.compile(
    r"\.(?:cpp|cc|cu|cuh|hpp|h|c):\d+|compiler_depend\.ts:\d+"
    r"|\bNCCL (?:WARN|INFO)\b|NCCL version \d|\bnccl[A-Z]\w+|\bWorkNCCL\("
    r"|^E[A-Z]\d{4}: |\bERR\d{5}\b|\bNVRM: |CUDA kernel errors might be asynchronously reported"
)
# How far below a signature the library's trailer may stand ("RuntimeError: CUDA error: ..." + 3 lines of c10).
_TRAILER_LINES = 3
# torchrun stopping its workers because it was told to or because another worker failed (pytorch#150916,
# NVIDIA/nvidia-resiliency-ext#18): what a rank shows when something else ended the attempt.
_WORKER_STOPPED = re.compile(
    r"Sending process \d+ closing signal SIG[A-Z]+|Closing process \d+ via signal SIG[A-Z]+"
    r"|Received \d+ death signal|SignalException: Process \d+ got signal"
)


@dataclass(frozen=True)
class LogVerdict:
    """What a log tail says: a class and a reason, the lines that show it, and whether those lines are the
    library's or the driver's own (False: only words that anyone could have printed name the hardware)."""

    fault_class: FaultClass
    reason: str
    message: str
    confident: bool = True


@dataclass(frozen=True)
class _Raised:
    name: str  # the exception's class name, without its module
    line: str
    frame: str  # the innermost frame ("File ..., line N, in f"), where it was raised; "" when the log lost it
    code: str  # that frame's source line
    index: int  # the exception line's number in the log
    cause: _Raised | None = None  # the exception this one replaced in a chain

    @property
    def raised_by_user(self) -> bool:
        """A `raise` statement in the job's own code threw it (not torch, not a C++ extension under it)."""
        match = _FRAME_LINE.match(self.frame)
        return bool(match) and not _LIBRARY_PATH.search(match.group(1)) and self.code.startswith("raise")

    @property
    def root(self) -> _Raised:
        return self.cause.root if self.cause else self


@dataclass(frozen=True)
class _Match:
    fault_class: FaultClass
    reason: str
    at: int  # where in the text
    strong: bool


def short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _unprefixed(text: str) -> list[str]:
    return [_LINE_PREFIX.sub("", raw).rstrip() for raw in text.splitlines()]


def _raised(text: str) -> list[_Raised]:
    """The exceptions that ended Python tracebacks in a log, oldest first; one that a later exception in the
    same chain replaced is that exception's `cause`. Works without the "Traceback" header, which a log tail cut
    at 80 lines has often lost: an exception line is an unindented "Name: message" after a frame or code line."""
    found: list[_Raised] = []
    previous, frame, code = "", "", ""
    cause: _Raised | None = None
    for index, line in enumerate(_unprefixed(text)):
        if not line.strip():
            continue
        if any(marker in line for marker in _CHAINED):
            cause = found.pop() if found else cause
            previous = line
            continue
        if _FRAME_LINE.match(line):
            frame, code = line.strip(), ""
        elif frame and not code and line[:1] in (" ", "\t") and not _CARETS.match(line):
            code = line.strip()
        match = _EXCEPTION_LINE.match(line)
        after_traceback = previous[:1] in (" ", "\t", "│", "╰", "|") or "Traceback (most recent call last)" in previous
        if match and after_traceback:
            found.append(_Raised(match.group(2), line, frame, code, index, cause))
            frame, code, cause = "", "", None
        previous = line
    return found


def _strong_at(text: str, at: int) -> bool:
    """Did the library or the driver print the line at `at`, or the trailer just under it?"""
    first = text.count("\n", 0, at)
    lines = _unprefixed(text)[first : first + 1 + _TRAILER_LINES]
    return any(_LIBRARY_LINE.search(line.lstrip()) for line in lines)


def _matches(text: str, classes: Iterable[str] | None = None) -> list[_Match]:
    """Per signature of the runtime's table, in its order, the first occurrence the library printed, else the
    first occurrence at all."""
    found = []
    for cls, reason, pattern in SIGNATURES:
        if classes is not None and cls not in classes:
            continue
        hits = [m.start() for m in pattern.finditer(text)]
        if hits:
            strong = [at for at in hits if _strong_at(text, at)]
            found.append(_Match(FaultClass(cls), reason, (strong or hits)[0], bool(strong)))
    return found


def _refine_xid(text: str, found: _Match) -> _Match | None:
    """The runtime's table calls any Xid a device fault; the number says more (NVLink -> interconnect)."""
    if found.reason != "Xid":
        return found
    classes = [xid_class(x) for x in xid_numbers(text)]
    if not classes or FaultClass.DEVICE in classes:
        return found
    if FaultClass.INTERCONNECT in classes:
        return _Match(FaultClass.INTERCONNECT, "NvlinkError", found.at, found.strong)
    return None  # application Xids only: the GPU is healthy, the program misbehaved


def _first(text: str) -> _Match | None:
    found = next(iter(_matches(text)), None)
    return _refine_xid(text, found) if found else None


def _from_line(text: str, at: int) -> str:
    return short(text[text.rfind("\n", 0, at) + 1 :])


def _verdict(text: str, found: _Match) -> LogVerdict:
    confident = found.strong or found.fault_class not in _NODE_BLAMING
    return LogVerdict(found.fault_class, found.reason, _from_line(text, found.at), confident)


def _user_verdict(raised: _Raised) -> LogVerdict:
    reason = "ImportError" if raised.name in _IMPORT_ERRORS else "PythonException"
    where = f" ({raised.frame})" if raised.frame else ""
    return LogVerdict(FaultClass.USER, reason, short(raised.line + where))


def _origin(raised: list[_Raised]) -> _Raised | None:
    """The exception that ended the last traceback (torchrun's summary skipped), and through the wrappers the
    user's own code raised `from` another exception, the one they wrapped."""
    final = next((r for r in reversed(raised) if r.name not in _LAUNCHER_WRAPPERS), None)
    while final and final.raised_by_user and final.cause:
        final = final.cause
    return final


def _is_user_error(raised: _Raised) -> bool:
    return raised.name in USER_EXCEPTIONS or raised.raised_by_user


def _hardware_the_library_printed(text: str) -> LogVerdict | None:
    """The first signature, in the table's order, that the library or the driver printed, when it names the
    hardware (a device-side assert is the program's bug, though CUDA reports it)."""
    for found in _matches(text, ("oom", "device", "node", "user")):
        if not found.strong:
            continue
        refined = _refine_xid(text, found)
        if refined is None or refined.fault_class == FaultClass.USER:
            return None
        if refined.fault_class != FaultClass.INTERCONNECT:
            return _verdict(text, refined)
    return None


def _evidence(text: str, origin: _Raised | None) -> str:
    """The part of the log that may name the fault: from the origin's chain on, and the library's lines above
    it. Earlier lines of the program's own are its words, not evidence (a handled error it printed)."""
    if origin is None:
        return text
    lines = text.splitlines()
    start = origin.root.index
    above = [line for line in lines[:start] if _LIBRARY_LINE.search(_LINE_PREFIX.sub("", line).strip())]
    return "\n".join([*above, *lines[start:]])


def read_log(text: str) -> LogVerdict | None:
    """A verdict if the text holds any evidence; class unknown when it only holds an exception."""
    if not isinstance(text, str) or not text.strip():
        return None
    raised = _raised(text)
    origin = _origin(raised)
    if origin and _is_user_error(origin):
        return _hardware_the_library_printed(text) or _user_verdict(origin)
    evidence = _evidence(text, origin)
    found = _first(evidence)
    # A fault in the hardware beats the Python exception it raised; a collective that timed out does not beat
    # a user exception: on the other ranks it is the consequence of the rank that raised.
    if found and found.fault_class in _BEATS_USER_EXCEPTIONS:
        return _verdict(evidence, found)
    user = next((r for r in raised if r.name in USER_EXCEPTIONS), None)
    if user:
        return _user_verdict(user)
    if found:
        return _verdict(evidence, found)
    stopped = _WORKER_STOPPED.search(text)
    if stopped:
        return LogVerdict(FaultClass.UNKNOWN, "WorkerStopped", _from_line(text, stopped.start()))
    if origin:
        return LogVerdict(FaultClass.UNKNOWN, origin.name, short(origin.line))
    return None
