"""What a log says about why a training process failed (docs/design.md#fault-classes): the signature table's
entries on the lines that carry an error, and the Python exception that ended the last traceback. One reading for
the operator (a pod's log, `tandem classify`) and the runtime (an exception's text). Pure functions over text.

How a reading is decided, in this order (costs are asymmetric: a wrong `user` fails the job, a wrong
`interconnect` or `device` blames a healthy node, `unknown` only costs a restart):
1. the first strong entry in table order that is not a symptom of another rank's fault (where it proves nothing on
   its own, an entry on the error NCCL recorded under it: its "Last error:");
2. the exception that ended the last traceback, when it is the user's (a user exception type, or raised by a
   `raise` in the job's own frames; a wrapper the user raised `from` a library's error is judged by that error);
3. the first strong symptom (a rank that waited for or lost a peer);
4. the first weak entry: interconnect and device only on a line the library printed, else unknown; user never;
5. torchrun stopping its workers, or the last exception's name: unknown.
Lines of the program's own above the exception's chain are its words, not evidence (a handled error it printed):
only the library's lines count there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tandem.faults.logtext import Line, Raised, frames_of, last_error_detail, library_near, lines_of, raised_in
from tandem.faults.signatures import Signature, matching, may_hold_a_report, reports_matching
from tandem.faults.taxonomy import (
    IMPORT_ERRORS,
    NODE_CLASSES,
    USER_EXCEPTIONS,
    FaultClass,
    launcher_wrapper,
    short,
    symptom_tier,
)
from tandem.faults.xid import xid_class, xid_numbers

# torchrun stopping its workers because it was told to or because another worker failed (pytorch#150916,
# NVIDIA/nvidia-resiliency-ext#18): what a rank shows when something else ended the attempt.
_WORKER_STOPPED = re.compile(
    r"Sending process \d+ closing signal SIG[A-Z]+|Closing process \d+ via signal SIG[A-Z]+"
    r"|Received \d+ death signal|SignalException: Process \d+ got signal|ChildFailedError"
    r"|failed \(exitcode: -?\d+\) local_rank"
)


# The steps of the order above: those where a table entry decided, and the last one (nothing explains it).
DECIDED_BY_TABLE = frozenset({1, 3, 4})
UNEXPLAINED = 5


@dataclass(frozen=True)
class Match:
    """One table entry on one line, and what it says there."""

    signature: Signature
    line: Line
    library: bool  # the library or the driver printed the line (or the trailer under it)
    fault_class: FaultClass  # after the strength rule and the Xid number
    reason: str

    @property
    def symptom(self) -> bool:
        return symptom_tier(self.reason) > 0

    def describe(self) -> str:
        sig = self.signature
        return (f"{sig.id} ({sig.fault_class.value}/{sig.reason}, {sig.strength}, {sig.vendor}) at line "
                f"{self.line.number + 1}{' [library]' if self.library else ''} -> {self.fault_class.value}")


@dataclass(frozen=True)
class Reading:
    """A log's verdict, what decided it and what else was there (for `tandem classify --explain`)."""

    fault_class: FaultClass
    reason: str
    message: str
    decided_by: str
    matches: tuple[Match, ...] = ()
    exception: Raised | None = None
    rule: int = 0  # the step of the module's order that decided
    entry: Match | None = None  # the table entry that decided, if one did

    def explain(self) -> dict[str, object]:
        sig = self.entry.signature if self.entry else None
        return {
            "decidedBy": self.decided_by,
            "rule": self.rule,
            "entry": ({"id": sig.id, "class": sig.fault_class.value, "reason": sig.reason, "vendor": sig.vendor,
                       "strength": sig.strength, "source": sig.source, "note": sig.note,
                       **({"code": sig.code, "table": "tandem/faults/codes.yaml"} if sig.code
                          else {"table": "tandem/faults/signatures.yaml"})} if sig else None),
            "exception": ({"name": self.exception.name, "line": self.exception.index + 1,
                           "raisedByUser": self.exception.raised_by_user, "frame": self.exception.frame}
                          if self.exception else None),
            "matches": [m.describe() for m in self.matches],
        }


def _judged(signature: Signature, line: Line, library: bool) -> tuple[FaultClass, str] | None:
    """The class an entry gives on this line: the Xid number refines an Xid line; a weak entry names the
    hardware only where the library printed it, and never the user."""
    cls, reason = signature.fault_class, signature.reason
    if signature.reason == "GpuXid":
        classes = [xid_class(x) for x in xid_numbers(line.text)]
        if classes and FaultClass.DEVICE not in classes:
            if FaultClass.INTERCONNECT not in classes:
                return FaultClass.UNKNOWN, "GpuApplicationXid"
            cls, reason = FaultClass.INTERCONNECT, "NvlinkError"
    if signature.strong:
        return cls, reason
    if (cls in NODE_CLASSES and not library) or cls == FaultClass.USER:
        return FaultClass.UNKNOWN, reason
    return cls, reason


def _matches(lines: list[Line], origin: Raised | None, reports: bool) -> list[Match]:
    """Every entry on every line of evidence (and every report entry on the other lines, where `reports` says one
    may be there), in table order, then line order."""
    # Above a traceback the program speaks; an exception that came without its frames bounds nothing.
    start = origin.root.index if origin and origin.root.frame else 0
    found = []
    frames: str | None = None
    for line in lines:
        if line.number < start and not line.library:
            continue
        signatures = matching(line.text) if line.evidence else reports_matching(line.text) if reports else []
        library = library_near(lines, line.number) if signatures else False  # once per line, not per entry
        for signature in signatures:
            if signature.context and not signature.context.search(line.text):
                frames = frames_of(lines) if frames is None else frames  # once per log, and only when asked
                if not signature.context.search(frames):
                    continue
            judged = _judged(signature, line, library)
            if judged:
                found.append(Match(signature, line, library, *judged))
    return sorted(found, key=lambda m: (m.signature.order, m.line.number))


def _origin(raised: list[Raised]) -> Raised | None:
    """The exception that ended the last traceback (a launcher's report that a worker failed skipped), and through
    the wrappers the user's own code raised `from` another exception, the one they wrapped."""
    final = next((r for r in reversed(raised) if not launcher_wrapper(r.name, r.frame)), None)
    while final and final.raised_by_user and final.cause:
        final = final.cause
    return final


def _carries_a_match(origin: Raised, found: list[Match]) -> bool:
    """Does the exception's own message (its line and the lines it continues on) carry the library's text: a
    strong entry, or any entry on a line the library printed? Words of the user's own prove nothing."""
    return any(origin.index <= m.line.number < origin.end and (m.signature.strong or m.library) for m in found)


MESSAGE_LINES = 12  # a fault's message: its line and what follows, up to a new traceback or this many lines


def _from_line(lines: list[Line], index: int) -> str:
    kept = [lines[index].text]
    for line in lines[index + 1 : index + MESSAGE_LINES]:
        text = line.text
        if ("Traceback (most recent call last)" in text or text.lstrip().startswith('File "')
                or text.startswith(("During handling of the above exception", "The above exception was"))):
            break
        kept.append(line.text)
    return short("\n".join(kept))


def _refined(lines: list[Line], first: Match, strong: list[Match]) -> Match:
    """A result code that proves nothing on its own (NCCL's internal error) yields to what the error NCCL recorded
    under it names, cause or symptom: that is the same failure, told more precisely."""
    if first.fault_class != FaultClass.UNKNOWN:
        return first
    detail = last_error_detail(lines, first.line.number)
    return next((m for m in strong if m.line.number in detail and m.fault_class != FaultClass.UNKNOWN), first)


def _by_match(lines: list[Line], match: Match, rule: int, found: list[Match], origin: Raised | None) -> Reading:
    return Reading(match.fault_class, match.reason, _from_line(lines, match.line.number),
                   f"signature {match.describe()}", tuple(found), origin, rule, match)


def read_log(text: str) -> Reading | None:
    """A reading if the text holds any evidence, None when it holds none (empty, or nothing but output)."""
    if not isinstance(text, str) or not text.strip():
        return None
    lines = lines_of(text)
    origin = _origin(raised_in(lines))
    found = _matches(lines, origin, may_hold_a_report(text))
    strong = [m for m in found if m.signature.strong]
    # 1. A root cause the library, the driver or the kubelet named.
    first = next((m for m in strong if not m.symptom), None)
    if first:
        return _by_match(lines, _refined(lines, first, strong), 1, found, origin)
    # 2. The user's exception: a user exception type, or one the job's own code raised with its own words (a
    # message that carries the library's text, a `raise RuntimeError(hccl_error_text)`, is judged by that text).
    if origin and (origin.name in USER_EXCEPTIONS or (origin.raised_by_user and not _carries_a_match(origin, found))):
        reason = "ImportError" if origin.name in IMPORT_ERRORS else "PythonException"
        where = f" ({origin.frame})" if origin.frame else ""
        return Reading(FaultClass.USER, reason, short(origin.line + where),
                       f"exception {origin.name} at line {origin.index + 1}, "
                       f"{'raised in the job' + chr(39) + 's own code' if origin.raised_by_user else 'a user error'}",
                       tuple(found), origin, 2)
    # 3. A rank that waited for or lost a peer; 4. words that prove less.
    symptom = next((m for m in strong if m.symptom), None) or next(iter(found), None)
    if symptom:
        return _by_match(lines, symptom, 3 if symptom.signature.strong else 4, found, origin)
    # 5. Nothing the table knows.
    stopped = next((line for line in lines if _WORKER_STOPPED.search(line.text)), None)
    if stopped:
        return Reading(FaultClass.UNKNOWN, "WorkerStopped", _from_line(lines, stopped.number),
                       f"torchrun stopped its workers (line {stopped.number + 1})", tuple(found), origin, 5)
    if origin:
        return Reading(FaultClass.UNKNOWN, origin.name, short(origin.line),
                       f"exception {origin.name} at line {origin.index + 1}, not the user's and in no table entry",
                       tuple(found), origin, 5)
    return None


__all__ = ["DECIDED_BY_TABLE", "UNEXPLAINED", "Match", "Reading", "read_log"]
