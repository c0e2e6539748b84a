"""A log as lines of evidence (docs/design.md#fault-classes): the prefixes launchers put in front of each line
taken off, the level each line was logged at, whether the library or the driver printed it, and the Python
exceptions that ended its tracebacks. Pure functions over text; text that is not what it should be gives fewer
lines of evidence, never an exception."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

# What launchers and log collectors put in front of each line: "[rank3]: ", "[80746] ", "(train pid=8464) ",
# "(Worker_TP1 pid=..) ", srun's "15: ", vLLM's "ERROR 07-08 19:23:04 [engine.py:458] ", grep's "x.log:5739:",
# docker build's "90.61 ", `kubectl logs --timestamps`' RFC 3339 time and the kubelet's CRI log files' time, stream
# and partial-line tag ("2016-10-06T00:17:09.669794202Z stdout F "), `kubectl logs --prefix`'s "[pod/x/trainer] ",
# Open MPI's `--tag-output` ("[1,0]<stderr>:").
_PREFIX = re.compile(
    r"^(?:\s*(?:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)(?: std(?:out|err) [FP])?(?= )"
    r"|\[pod/[^\]\s/]+/[^\]\s]+\]|\[rank\d+\]:|\[\d+(?:,\d+)?\]<std(?:out|err|diag)>:|\[\d+\](?= )"
    r"|\([^()\n]*pid=\d+[^()\n]*\)|\d{1,5}:(?= )"
    r"|(?:ERROR|WARNING|INFO|DEBUG|CRITICAL) \d\d-\d\d \d\d:\d\d:\d\d(?:\.\d+)? \[[^\]]*\]"
    r"|[\w .-]+\.log:\d+:|\d+\.\d+(?= )))+ ?",
    re.IGNORECASE,
)
# The level a line was logged at: the first level word in its first 120 characters ("[INFO]", "NCCL INFO",
# glog's "I1228 03:09:48", " - INFO - ", "INFO:root:", "[E ProcessGroupNCCL.cpp", "E0818 16:33:56").
_LEVEL = re.compile(
    r"(?:^|[\s\[(|:,-])(ERROR|ERR|WARNING|WARN|INFO|DEBUG|TRACE|CRITICAL|FATAL"
    r"|[EWIF]\d{3,4}(?= \d\d:)|[EWIF](?= \w+\.\w+:\d+))"
    r"(?=[\s\]:),|-]|$)"
)
_QUIET = frozenset({"INFO", "DEBUG", "TRACE"})
# A line that the library or the driver printed, not the user: a C++ source location (c10d's glog lines,
# "NCCL error in: .../NCCLUtils.hpp:268", torch_npu's "OpParamMaker.cpp:281" and "compiler_depend.ts:25", CANN's
# "[FILE:log_inner.cpp][LINE:161]"), NCCL's own words (its version, its result codes, WorkNCCL(...), NCCL WARN),
# CANN's error codes ("EI0006: [PID: ...", "ERR00100 PTA call acl api failed") and any CANN module's plog line
# ("[ERROR] HCCL(1234,python):", "[ERROR] TSCH(...)", "[ERROR] ROCE(...)"), the loggers of the training libraries
# ("ERROR:torch.distributed.elastic...", "WARNING megatron.core..."), the NVIDIA kernel driver ("NVRM: Xid ..."),
# the trailer c10 prints under every CUDA error, and the signal handler of torch's DataLoader workers.
_LIBRARY = re.compile(
    r"\.(?:cpp|cc|cu|cuh|hpp|h|c):\d+|compiler_depend\.ts:\d+|\[FILE:\w+\.\w+\]"
    r"|\bNCCL (?:WARN|INFO)\b|NCCL version \d|\bnccl[A-Z]\w+|\bWorkNCCL\("
    r"|(?:^|\s)E[A-Z\d]\d{4}[:\[ ]|\bERR\d{5}\b|\[(?:ERROR|WARNING|WARN|EVENT)\] [A-Z][A-Z_]+\(\d+,|\bNVRM: "
    r"|(?:ERROR|WARNING|CRITICAL)[: ]+(?:torch|torch_npu|deepspeed|megatron|transformers|accelerate|vllm\w*"
    r"|mindspeed)\.\w"
    r"|CUDA kernel errors might be asynchronously reported"
    r"|^ERROR: Unexpected (?:bus error|segmentation fault|floating-point exception) encountered in worker"
    r"|RTS_HWTS:|Exception info:TGID=|\berror code=0x[0-9a-f]+|\bTHCudaCheck FAIL"
)
# How far below a signature the library's trailer may stand ("RuntimeError: CUDA error: ..." + 3 lines of c10).
TRAILER_LINES = 3


@dataclass(frozen=True)
class Line:
    number: int  # 0-based, in the whole text
    raw: str
    text: str  # without the launchers' prefixes
    level: str | None  # the level word it was logged at, when it shows one

    @property
    def evidence(self) -> bool:
        """Does the line carry an error? INFO and DEBUG output only describes; it never classifies (a component's own
        verdict logged at INFO is read by the table's report entries alone: tandem.faults.signatures)."""
        return self.level not in _QUIET

    @property
    def library(self) -> bool:
        return bool(_LIBRARY.search(self.text))


def _level(raw: str) -> str | None:
    match = _LEVEL.search(raw[:120])
    if not match:
        return None
    word = match.group(1)
    if (word[0] in "EWIF" and word[1:].isdigit()) or len(word) == 1:
        return {"E": "ERROR", "W": "WARNING", "I": "INFO", "F": "FATAL"}[word[0]]
    return word


# Only so much of a line is read: what names a fault stands at its start, and a pattern's cost grows with the
# line (a hostile or runaway line of megabytes must not stall the operator). Kubernetes keeps 4096 bytes of a
# termination message anyway.
MAX_LINE = 4096


def _unquoted(text: str) -> str:
    """A line as it reads without markdown's inline quote: a log pasted from an issue or a chat into `tandem
    classify --log` often quotes its error line in backticks (a fence, three backticks, stays as it is)."""
    if text.startswith("`") and not text.startswith("``"):
        text = text[1:]
        return text[:-1] if text.endswith("`") and not text.endswith("``") else text
    return text


# Python 3.11's exception groups print each member's traceback inside a margin, "  | " or "  + " indented one level
# per nested group (Lib/traceback.py, TracebackException.format); a group always opens with this header. Only a text
# that holds it loses the margin, so a table's "| " rows (nvidia-smi, markdown) stay as they are.
_GROUP_HEADER = "Exception Group Traceback (most recent call last):"
_GROUP_MARGIN = re.compile(r"^\s*[|+] ")


# torchrun's summary of a failed worker (ChildFailedError) quotes the worker's traceback from its error file under
# this field, every line indented two more spaces (torch/distributed/elastic/multiprocessing/errors/__init__.py,
# _format_failure): read without that indent, its last exception is the worker's.
_SUMMARY_TRACEBACK = re.compile(r"^  traceback :\s*")


# A terminal's colours (a TTY, FORCE_COLOR, Python 3.13's coloured tracebacks): ANSI escape sequences carry no words.
_ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")


def _json_values_as_lines(text: str) -> str:
    """A structured logger (structlog's JSONRenderer, python-json-logger) writes one JSON object a line and a
    traceback, like any message of several lines, as one escaped string in it: those strings are read as lines of
    their own, after the line that held them."""
    out = []
    for raw in text.splitlines():
        body = _PREFIX.sub("", raw).strip() if "\\n" in raw else ""
        record = None
        if body.startswith("{"):
            try:
                record = json.loads(body)
            except ValueError:  # a line cut short (a log tail's first line) or not JSON at all: read as it is
                record = None
        if not isinstance(record, dict):
            out.append(raw)
            continue
        long_values = [v for v in record.values() if isinstance(v, str) and "\n" in v]
        out.append(json.dumps({k: v for k, v in record.items() if not (isinstance(v, str) and "\n" in v)}))
        out.extend(line for value in long_values for line in value.splitlines())
    return "\n".join(out)


def lines_of(text: str) -> list[Line]:
    if "\x1b[" in text:
        text = _ANSI.sub("", text)
    if "{" in text and "\\n" in text:
        text = _json_values_as_lines(text)
    margin = _GROUP_MARGIN if _GROUP_HEADER in text else None
    lines, in_summary = [], False
    for n, raw in enumerate(text.splitlines()):
        line = _PREFIX.sub("", raw[:MAX_LINE])
        if margin:
            line = margin.sub("", line)
        summary = _SUMMARY_TRACEBACK.match(line)
        if summary:
            line, in_summary = line[summary.end() :], True
        elif in_summary and line.startswith("  "):
            line = line[2:]
        else:
            in_summary = False
        lines.append(Line(n, raw[:MAX_LINE], _unquoted(line.rstrip()), _level(raw)))
    return lines


def library_near(lines: list[Line], index: int) -> bool:
    """Did the library print the line at `index`, or the trailer just under it?"""
    return any(line.library for line in lines[index : index + 1 + TRAILER_LINES])


# torch prints the error NCCL recorded (ncclGetLastError) under NCCL's generic result code: "ncclInternalError:
# Internal check failed.\nLast error:\n<what failed>" (torch/csrc/distributed/c10d/NCCLUtils.cpp).
_LAST_ERROR = re.compile(r"\bLast error:[ \t]*(\S?)")
DETAIL_LINES = 2  # the recorded error is one line; a wrapped one may go on to a second
LAST_ERROR_BELOW = 2  # how far under the result code torch's "Last error:" may stand


def last_error_detail(lines: list[Line], index: int) -> range:
    """The lines of the error NCCL recorded under the result code at `index` (empty when it printed none): after a
    "Last error:" within the next two lines, up to an empty line."""
    for line in lines[index : index + 1 + LAST_ERROR_BELOW]:
        match = _LAST_ERROR.search(line.text)
        if match:
            start = line.number if match.group(1) else line.number + 1
            end = start
            while end < min(len(lines), start + DETAIL_LINES) and lines[end].text.strip():
                end += 1
            return range(start, end)
    return range(0)


# --- Python tracebacks --------------------------------------------------------------------------------------------

# An exception's class name ends in one of these words, or is Python's own base class: `raise Exception("...")` prints
# "Exception: ..." (there is no class `Error`, so a bare "Error: ..." is another program's words).
_EXCEPTION_LINE = re.compile(
    r"^((?:[A-Za-z_]\w*\.)*([A-Z]\w*(?:Error|Exception|Exit|Interrupt|Failure|Warning)|Exception))(?::(.*))?$")
_CHAINED = ("During handling of the above exception", "The above exception was the direct cause")
# What CPython prints above an exception it could not raise and went on from: "Exception ignored in: <obj>", "Exception
# ignored in atexit callback: ...", 3.13's "Exception ignored while calling deallocator ..." (Python/errors.c).
_IGNORED = "Exception ignored "
_FRAME_LINE = re.compile(r'^\s*File "([^"]*)", line \d+')
_CARETS = re.compile(r"^\s*[~^]+\s*$")
# Frames of installed code (the interpreter, torch, torch_npu, any pip package, CANN's Python) rather than the job's.
_LIBRARY_PATH = re.compile(r"site-packages|dist-packages|/lib(?:64)?/python\d|<frozen |/torch(?:_npu)?/|\\lib\\")


@dataclass(frozen=True)
class Raised:
    """An exception that ended a Python traceback in a log."""

    name: str  # the exception's class name, without its module
    line: str
    frame: str  # the innermost frame ("File ..., line N, in f"), where it was raised; "" when the log lost it
    code: str  # that frame's source line
    index: int  # the exception line's number in the log
    cause: Raised | None = None  # the exception this one replaced in a chain
    end: int = 0  # the number of the first line after its message (which may continue on several lines)

    @property
    def raised_by_user(self) -> bool:
        """A `raise` statement in the job's own code threw it (not torch, not a C++ extension under it)."""
        match = _FRAME_LINE.match(self.frame)
        return bool(match) and not _LIBRARY_PATH.search(match.group(1)) and self.code.startswith("raise")

    @property
    def root(self) -> Raised:
        return self.cause.root if self.cause else self


def _message_end(lines: list[Line], start: int) -> int:
    """Where an exception's message ends: at the next traceback, frame or chain marker, an empty line, or a line
    logged at a level of its own (another logger's line, not the message going on)."""
    for line in lines[start + 1 :]:
        text = line.text
        if (not text.strip() or line.level is not None or "Traceback (most recent call last)" in text
                or _FRAME_LINE.match(text) or any(marker in text for marker in _CHAINED)):
            return line.number
    return lines[-1].number + 1 if lines else start + 1


def frames_of(lines: list[Line]) -> str:
    """The frames of every traceback in the log and their source lines, one per line: where its errors were
    raised ("File .../torch/serialization.py, line 328, in save" and "torch.save(state, path)")."""
    kept = []
    for line in lines:
        if _FRAME_LINE.match(line.text):
            kept.append(line.text.strip())
            following = lines[line.number + 1].text.strip() if line.number + 1 < len(lines) else ""
            if following and not _FRAME_LINE.match(following) and not _EXCEPTION_LINE.match(following):
                kept.append(following)
    return "\n".join(kept)


def raised_in(lines: list[Line]) -> list[Raised]:
    """The exceptions that ended Python tracebacks, oldest first; one that a later exception in the same chain
    replaced is that exception's `cause`. Works without the "Traceback" header, which a log tail cut at 80 lines
    has often lost: an exception line is an unindented "Name: message" after a frame, a code line or IPython's
    arrow, a line of its own at the very start of the text, or the text's last words."""
    found: list[Raised] = []
    previous, frame, code = "", "", ""
    previous_in_frame = False
    cause: Raised | None = None
    # An uncaught exception is the last thing the interpreter prints: a text's last line that is an exception ended
    # the process even where the traceback above it was cut (a handled error the program printed has more after it).
    last = max((line.number for line in lines if line.text.strip()), default=-1)
    # Under "Exception ignored in: ...", Python printed an exception and went on (sys.unraisablehook): "traceback"
    # while it prints it, "ended" once its exception is out (a chain of its own may follow), "" elsewhere.
    ignoring = ""
    for line in lines:
        text = line.text
        if not text.strip():
            continue
        if text.startswith(_IGNORED):
            ignoring, frame, code, cause = "traceback", "", "", None
            previous = text
            continue
        chained = any(marker in text for marker in _CHAINED)
        if ignoring == "ended":
            ignoring = "traceback" if chained else ""
        if chained:
            if not ignoring:
                cause = found.pop() if found else cause
            previous = text
            continue
        in_frame = False
        if _FRAME_LINE.match(text):
            frame, code, in_frame = text.strip(), "", True
        elif frame and not code and not _CARETS.match(text) and not _EXCEPTION_LINE.match(text):
            code, in_frame = text.strip(), True
        match = _EXCEPTION_LINE.match(text)
        after_traceback = (previous[:1] in (" ", "\t", "│", "╰", "|") or "Traceback (most recent call last)" in previous
                           or previous.startswith("---->") or previous_in_frame or (not previous and not found))
        if match and not match.group(2).endswith("Warning") and (after_traceback or line.number == last):
            if ignoring:
                ignoring = "ended"
            else:
                end = _message_end(lines, line.number)
                found.append(Raised(match.group(2), text, frame, code, line.number, cause, end))
            frame, code, cause = "", "", None
        previous, previous_in_frame = text, in_frame
    return found
