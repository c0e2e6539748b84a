"""The fault signature table (signatures.yaml beside this file), loaded and checked once: each entry's class,
reason, pattern, vendor, source and strength. The table is data; this module only reads it and finds the entries
that match a line. Order in the file is precedence."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Literal

import yaml

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

    @property
    def strong(self) -> bool:
        return self.strength == "strong"


class SignatureTableError(ValueError):
    """The table is malformed: the message names the entry and the field."""


def _signature(order: int, entry: object) -> Signature:
    if not isinstance(entry, dict):
        raise SignatureTableError(f"entry {order}: not a mapping")
    where = f"entry {order} ({entry.get('id', '?')})"
    for field in _FIELDS:
        if not isinstance(entry.get(field), str) or not entry[field].strip():
            raise SignatureTableError(f"{where}: {field} is missing or not a string")
    unknown = set(entry) - {*_FIELDS, "note"}
    if unknown:
        raise SignatureTableError(f"{where}: unknown fields {sorted(unknown)}")
    try:
        cls = FaultClass(entry["class"])
        pattern = re.compile(entry["pattern"], re.IGNORECASE)
    except (ValueError, re.error) as error:
        raise SignatureTableError(f"{where}: {error}") from error
    if entry["vendor"] not in VENDORS:
        raise SignatureTableError(f"{where}: vendor {entry['vendor']!r} is not one of {sorted(VENDORS)}")
    if entry["strength"] not in ("strong", "weak"):
        raise SignatureTableError(f"{where}: strength {entry['strength']!r} is not strong or weak")
    if not entry["source"].startswith("https://"):
        raise SignatureTableError(f"{where}: source {entry['source']!r} is not an https URL")
    return Signature(entry["id"], cls, entry["reason"], entry["vendor"], entry["strength"], pattern,
                     entry["source"], str(entry.get("note") or ""), order)


def parse_table(text: str) -> tuple[Signature, ...]:
    data = yaml.safe_load(text)
    if not isinstance(data, list):
        raise SignatureTableError("the signature table is a list of entries")
    table = tuple(_signature(order, entry) for order, entry in enumerate(data))
    ids = [s.id for s in table]
    duplicates = sorted({i for i in ids if ids.count(i) > 1})
    if duplicates:
        raise SignatureTableError(f"ids used more than once: {duplicates}")
    return table


@cache
def table() -> tuple[Signature, ...]:
    """The shipped table (tandem/faults/signatures.yaml), in precedence order."""
    return parse_table(resources.files("tandem.faults").joinpath("signatures.yaml").read_text(encoding="utf-8"))


@cache
def _any_entry() -> re.Pattern[str]:
    """One pattern that matches where any entry does: most lines of a long log match none, and one search tells."""
    return re.compile("|".join(f"(?:{s.pattern.pattern})" for s in table()), re.IGNORECASE)


def matching(line: str) -> list[Signature]:
    """Every entry whose pattern occurs in the line, in precedence order."""
    if not _any_entry().search(line):
        return []
    return [s for s in table() if s.pattern.search(line)]
