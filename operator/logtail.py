"""What a pod's log tail says about why it failed (docs/design.md#fault-classes, the last source): the Python
tracebacks in it and the fault signatures of the runtime's table. Pure functions over text; no I/O, no
torch; text that is not what it should be gives no verdict, never an exception.

terminationMessagePolicy FallbackToLogsOnError leaves the last 2048 bytes / 80 lines of the log in
`terminated.message` when the container wrote no termination message; that is the text read here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tandem.operator.api_types import FaultClass
from tandem.operator.device_reports import xid_class, xid_numbers
from tandem.runtime.faults import classify_text, excerpt

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
# What launchers put in front of each line: "[rank3]: ", "[80746] ", "(train pid=8464) ", "(Worker_TP1 pid=..) ".
_LINE_PREFIX = re.compile(r"^(?:\s*(?:\[rank\d+\]:|\[\d+\]|\([^()\n]*pid=\d+[^()\n]*\)))+ ?")
_EXCEPTION_LINE = re.compile(r"^((?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure)))(?::(.*))?$")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
_FRAME_LINE = re.compile(r'^\s*File "[^"]*", line \d+')


@dataclass(frozen=True)
class LogVerdict:
    """What a log tail says: a class and a reason, and the lines that show it."""

    fault_class: FaultClass
    reason: str
    message: str


@dataclass(frozen=True)
class _Raised:
    name: str  # the exception's class name, without its module
    line: str
    frame: str


def short(text: str) -> str:
    text = text.strip()
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 3] + "..."


def _raised(text: str) -> list[_Raised]:
    """The exceptions that ended Python tracebacks in a log, oldest first, without the ones a later
    exception in the same chain replaced. Works without the "Traceback" header, which a log tail cut at
    80 lines has often lost: an exception line is an unindented "Name: message" after a frame or code line."""
    found: list[_Raised] = []
    previous, frame = "", ""
    for raw in text.splitlines():
        line = _LINE_PREFIX.sub("", raw).rstrip()
        if not line.strip():
            continue
        if any(marker in line for marker in _CHAINED):
            if found:
                found.pop()
            previous = line
            continue
        if _FRAME_LINE.match(line):
            frame = line.strip()
        match = _EXCEPTION_LINE.match(line)
        after_traceback = previous[:1] in (" ", "\t", "│", "╰", "|") or "Traceback (most recent call last)" in previous
        if match and after_traceback:
            found.append(_Raised(match.group(2), line, frame))
            frame = ""
        previous = line
    return found


def _refine_xid(text: str, found: tuple[str, str]) -> tuple[str, str] | None:
    """The runtime's table calls any Xid a device fault; the number says more (DESIGN: NVLink -> interconnect)."""
    classes = [xid_class(x) for x in xid_numbers(text)]
    if not classes:
        return found
    if FaultClass.DEVICE in classes:
        return found
    if FaultClass.INTERCONNECT in classes:
        return FaultClass.INTERCONNECT.value, "NvlinkError"
    return None  # application Xids only: the GPU is healthy, the program misbehaved


def read_log(text: str) -> LogVerdict | None:
    """A verdict if the text holds any evidence; class unknown when it only holds an exception."""
    if not isinstance(text, str) or not text.strip():
        return None
    found = classify_text(text)
    if found and found[1] == "Xid":
        found = _refine_xid(text, found)
    raised = _raised(text)
    user = next((r for r in raised if r.name in USER_EXCEPTIONS), None)

    def make(cls: str, reason: str, message: str) -> LogVerdict:
        return LogVerdict(FaultClass(cls), reason, short(message))

    # A fault in the hardware beats the Python exception it raised; a collective that timed out does not beat
    # a user exception: on the other ranks it is the consequence of the rank that raised.
    if found and found[0] in ("oom", "device", "user", "node"):
        return make(found[0], found[1], excerpt(text, MESSAGE_LIMIT))
    if user:
        reason = "ImportError" if user.name in _IMPORT_ERRORS else "PythonException"
        where = f" ({user.frame})" if user.frame else ""
        return make("user", reason, user.line + where)
    if found and found[0] != "unknown":
        return make(found[0], found[1], excerpt(text, MESSAGE_LIMIT))
    if raised:
        return make("unknown", raised[-1].name, raised[-1].line)
    return None
