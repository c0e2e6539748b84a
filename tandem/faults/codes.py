"""The error-code table (codes.yaml beside this file): what each Ascend error code means, read by the code itself
rather than by the words around it (docs/design.md#fault-classes). A code says the same thing in any phrasing,
any language and any wrapper (torch_npu's "error code is 507033", CANN's "EI0006: [PID: ...]", HCCL's
"HcclAllReduce(...), error code is 9"), so one entry per code, taken from the vendor's code reference, reads
texts that no phrase in signatures.yaml has seen.

A code's entry becomes a Signature placed where signatures.yaml says (its `codes:` entry): after the phrases that
name a root cause, before the families' generic fallbacks. Pure data and a lookup; no torch, no Kubernetes."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

import yaml

from tandem.faults.entries import LoadedOnce, checked_class
from tandem.faults.taxonomy import FaultClass

FAMILIES = ("acl-runtime", "hccl-result", "cann-message", "torch-npu")
_FIELDS = ("code", "family", "meaning", "class", "reason", "strength", "source")

# Where a code stands in a line, by family. ACL's six-digit return codes are read after the words that report them
# ("error code is", "runtime result =", "ret=", "ErrCode=", "aclError") or bare on a line that says it failed;
# CANN's message codes are E, a module letter or digit, four digits; HCCL's HcclResult follows the HCCL call.
_ACL_CONTEXT = re.compile(
    r"(?:error[ _]?code|err[ _]?code|result|ret(?:code|urn(?: value| code)?)?|acl ?error|status|error|errno)"
    r"\s*(?:is|=|:|\()?\s*\[?\s*((?:10[07]|20[07]|50[07])\d{3})\b",
    re.IGNORECASE,
)
# A bare number that follows this is a process id, not a code: after "pid", or the field after the time in torch's
# `E1203 09:28:00.507000 507011 file.py:1]` (the signature table guards its bare numbers with it too).
NOT_AFTER_A_PROCESS_ID = r"(?<![Pp][Ii][Dd] )(?<![Pp][Ii][Dd]: )(?<![Pp][Ii][Dd]=)(?<!\.\d{6} )"
# Nor the first field of CANN's log header `HCCL(507011,python3)`.
_ACL_BARE = re.compile(rf"(?<![\w.:/-]){NOT_AFTER_A_PROCESS_ID}((?:107|207|507)\d{{3}})(?![\w.:/-]|,[A-Za-z])")
_FAILED = re.compile(r"error|fail|abnormal|exception", re.IGNORECASE)
_CANN_MESSAGE = re.compile(r"(?<![\w-])(E[A-Z1-9]\d{4})(?![\w-])")
_HCCL_RESULT = re.compile(r"\bHccl\w*(?:\([^()]*\))?,? (?:error code is|return(?:ed)?|ret(?: =)?)\s*(\d{1,2})\b")
_TORCH_NPU = re.compile(r"\b(ERR\d{5})\b")


@dataclass(frozen=True)
class CodeEntry:
    code: str  # as logs print it: "507033", "EI0006", "ERR02200"; an HcclResult as "hccl:9"
    name: str
    family: str
    meaning: str
    fault_class: FaultClass
    reason: str
    strength: str
    source: str
    note: str = ""


class CodeTableError(ValueError):
    """The code table is malformed: the message names the entry and the field."""


def _entry(index: int, raw: object) -> CodeEntry:
    entry, where, cls = checked_class(raw, f"code entry {index}", "code", _FIELDS, ("name", "note"), CodeTableError)
    if entry["family"] not in FAMILIES:
        raise CodeTableError(f"{where}: family {entry['family']!r} is not one of {list(FAMILIES)}")
    if cls == FaultClass.UNKNOWN and entry["strength"] == "strong":
        # A code that proves nothing must not outrank the evidence around it (the user's exception, a symptom).
        raise CodeTableError(f"{where}: an unknown code is weak (it must not hide the other evidence)")
    return CodeEntry(entry["code"], str(entry.get("name") or ""), entry["family"], entry["meaning"], cls,
                     entry["reason"], entry["strength"], entry["source"], str(entry.get("note") or ""))


def parse_codes(text: str) -> tuple[CodeEntry, ...]:
    data = yaml.safe_load(text)
    if not isinstance(data, list):
        raise CodeTableError("the code table is a list of entries")
    entries = tuple(_entry(index, raw) for index, raw in enumerate(data))
    seen: set[str] = set()
    twice = sorted({e.code for e in entries if e.code in seen or seen.add(e.code)})
    if twice:
        raise CodeTableError(f"codes listed more than once: {twice}")
    return entries


@LoadedOnce
def code_table() -> dict[str, CodeEntry]:
    """The shipped code table (tandem/faults/codes.yaml), by code."""
    text = resources.files("tandem.faults").joinpath("codes.yaml").read_text(encoding="utf-8")
    return {entry.code: entry for entry in parse_codes(text)}


def codes_in(line: str) -> list[str]:
    """The codes a line reports, in the order they stand, each once."""
    found: list[tuple[int, str]] = []
    found += [(m.start(1), m.group(1)) for m in _ACL_CONTEXT.finditer(line)]
    if _FAILED.search(line):
        found += [(m.start(1), m.group(1)) for m in _ACL_BARE.finditer(line)]
    found += [(m.start(1), m.group(1)) for m in _CANN_MESSAGE.finditer(line)]
    found += [(m.start(1), f"hccl:{m.group(1)}") for m in _HCCL_RESULT.finditer(line)]
    found += [(m.start(1), m.group(1)) for m in _TORCH_NPU.finditer(line)]
    return list(dict.fromkeys(code for _, code in sorted(found)))


def known_codes_in(line: str) -> list[CodeEntry]:
    table = code_table()
    return [table[code] for code in codes_in(line) if code in table]


__all__ = ["FAMILIES", "NOT_AFTER_A_PROCESS_ID", "CodeEntry", "CodeTableError", "code_table", "codes_in",
           "known_codes_in", "parse_codes"]
