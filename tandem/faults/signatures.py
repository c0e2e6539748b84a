"""The fault signature table (signatures.yaml beside this file), loaded and checked once: each entry's class,
reason, pattern, vendor, source and strength. The table is data; this module only reads it and finds the entries
that match a line. Order in the file is precedence; the entry `- codes: ...` is where the error-code table
(codes.yaml, tandem.faults.codes) takes its place in that order."""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import yaml

from tandem.faults.codes import NOT_AFTER_A_PROCESS_ID, CodeEntry, code_table, known_codes_in
from tandem.faults.entries import LoadedOnce, checked_class
from tandem.faults.prefilter import Prefilter
from tandem.faults.taxonomy import FaultClass

Strength = Literal["strong", "weak"]
VENDORS = frozenset({"ascend", "nvidia", "kubernetes", "generic"})
_FIELDS = ("id", "class", "reason", "vendor", "strength", "pattern", "source")


@dataclass(frozen=True)
class Signature:
    id: str
    fault_class: FaultClass
    reason: str
    vendor: str
    strength: Strength
    pattern: re.Pattern[str]
    source: str
    note: str = ""
    order: int = 0  # its place in the table: lower decides first
    code: str = ""  # an entry of the code table: the code it reads (found by tandem.faults.codes, not its pattern)
    # Where the entry holds: a second pattern that must occur on the line or in the frames of the log's tracebacks
    # (where the error was raised: "an I/O error inside a save"); None holds everywhere.
    context: re.Pattern[str] | None = None
    # A component's own verdict that its authors log at INFO (the NVIDIA device plugin marking a GPU unhealthy, the
    # node controller's condition message): it stands on a line at any level, where other entries need an error line.
    report: bool = False

    @property
    def strong(self) -> bool:
        return self.strength == "strong"


class SignatureTableError(ValueError):
    """The table is malformed: the message names the entry and the field."""


# A bare number in a pattern (`\b` before a digit: CANN's runtime codes such as 507011) must stand alone: not a time's
# fraction (`09:28:00.507000`, `,507`: torch's and Python's log lines), not a process id (`PID: 507015`, or the field
# after the time in torch's `E1203 09:28:00.507000 507011 file.py:1]`). Guarded once here, for every entry.
_BARE_NUMBER = re.compile(r"\\b(?=\d)")
_NOT_A_TIME_OR_PID = rf"(?<!\d[.,]){NOT_AFTER_A_PROCESS_ID}\b"


def guarded(pattern: str) -> str:
    """`pattern` with each bare number's leading `\b` guarded against times and process ids."""
    return _BARE_NUMBER.sub(lambda _: _NOT_A_TIME_OR_PID, pattern)


def _signature(order: int, raw: object) -> Signature:
    entry, where, cls = checked_class(raw, f"entry {order}", "id", _FIELDS, ("note", "context", "report"),
                                      SignatureTableError)
    if "context" in entry and (not isinstance(entry["context"], str) or not entry["context"].strip()):
        raise SignatureTableError(f"{where}: context is not a string")
    if not isinstance(entry.get("report", False), bool):
        raise SignatureTableError(f"{where}: report is not true or false")
    if entry.get("report") and entry["strength"] != "strong":
        raise SignatureTableError(f"{where}: a report is strong (a component's own verdict), not {entry['strength']}")
    try:
        pattern = re.compile(guarded(entry["pattern"]), re.IGNORECASE)
        context = re.compile(entry["context"], re.IGNORECASE) if "context" in entry else None
    except re.error as error:
        raise SignatureTableError(f"{where}: {error}") from error
    if entry["vendor"] not in VENDORS:
        raise SignatureTableError(f"{where}: vendor {entry['vendor']!r} is not one of {sorted(VENDORS)}")
    return Signature(entry["id"], cls, entry["reason"], entry["vendor"], entry["strength"], pattern,
                     entry["source"], str(entry.get("note") or ""), order, context=context,
                     report=entry.get("report", False))


# The code table's entries in the order they decide among themselves, as the phrase table's sections do: memory,
# the program's own errors, storage, the device, the node, the interconnect, then what proves nothing.
_CODE_CLASS_ORDER = ("oom", "user", "storage", "device", "node", "interconnect", "unknown")


def _code_signatures(first: int, codes: tuple[CodeEntry, ...]) -> list[Signature]:
    ordered = sorted(codes, key=lambda c: (_CODE_CLASS_ORDER.index(c.fault_class.value), c.code))
    return [Signature(f"code-{c.code.replace(':', '-')}", c.fault_class, c.reason, "ascend", c.strength,  # type: ignore[arg-type]
                      re.compile(rf"(?<![\w-]){re.escape(c.code.split(':')[-1])}(?![\w-])"), c.source,
                      c.meaning + (f" ({c.note})" if c.note else ""), first + n, c.code)
            for n, c in enumerate(ordered)]


def parse_table(text: str, codes: tuple[CodeEntry, ...] = ()) -> tuple[Signature, ...]:
    """The entries in precedence order; the code table's entries (`codes`) stand where the `- codes:` entry is."""
    data = yaml.safe_load(text)
    if not isinstance(data, list):
        raise SignatureTableError("the signature table is a list of entries")
    table: list[Signature] = []
    for entry in data:
        if isinstance(entry, dict) and set(entry) == {"codes"}:
            table += _code_signatures(len(table), codes)
        else:
            table.append(_signature(len(table), entry))
    duplicates = sorted(i for i, n in Counter(s.id for s in table).items() if n > 1)
    if duplicates:
        raise SignatureTableError(f"ids used more than once: {duplicates}")
    return tuple(table)


@LoadedOnce
def table() -> tuple[Signature, ...]:
    """The shipped table (tandem/faults/signatures.yaml), in precedence order."""
    text = resources.files("tandem.faults").joinpath("signatures.yaml").read_text(encoding="utf-8")
    return parse_table(text, tuple(code_table().values()))


@cache
def _phrases() -> tuple[Signature, ...]:
    return tuple(s for s in table() if not s.code)


@cache
def _by_code() -> dict[str, Signature]:
    return {s.code: s for s in table() if s.code}


@cache
def _prefilter() -> Prefilter:
    return Prefilter([s.pattern for s in _phrases()])


def matching(line: str) -> list[Signature]:
    """Every entry that the line matches (a phrase entry's pattern, a code entry's code), in precedence order."""
    phrases = _phrases()  # searched only where the text each pattern requires occurs (tandem.faults.prefilter)
    return _with_codes(line, [phrases[i] for i in _prefilter().candidates(line) if phrases[i].pattern.search(line)])


@cache
def _reports() -> tuple[tuple[Signature, ...], Prefilter]:
    reports = tuple(s for s in _phrases() if s.report)
    return reports, Prefilter([s.pattern for s in reports])


def may_hold_a_report(text: str) -> bool:
    """Could a report entry match anywhere in the text? One pass over a whole log, so that its INFO lines (most of
    any log) are searched line by line only when one could."""
    return bool(_reports()[1].candidates(text))


def reports_matching(line: str) -> list[Signature]:
    """The report entries the line matches, in precedence order: what a line at INFO or DEBUG may still say (most
    lines of a log are INFO: the prefilter spares them the searches)."""
    reports, prefilter = _reports()
    return [reports[i] for i in prefilter.candidates(line) if reports[i].pattern.search(line)]


def matching_every_entry(line: str) -> list[Signature]:
    """What `matching` finds, by searching every phrase entry: the reference its prefilter is tested and
    benchmarked against."""
    return _with_codes(line, [s for s in _phrases() if s.pattern.search(line)])


def _with_codes(line: str, phrases: list[Signature]) -> list[Signature]:
    by_code = _by_code()
    found = phrases + [by_code[entry.code] for entry in known_codes_in(line)]
    return sorted(found, key=lambda s: s.order)
