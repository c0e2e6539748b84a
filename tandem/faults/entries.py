"""The checks every entry of a fault table passes (signatures.yaml, codes.yaml): it is a mapping, its required
fields are non-empty strings, it has no field the table does not know, its strength is strong or weak, its class
is a fault class and its source an https URL. A failed check names the entry and the field."""

from __future__ import annotations

from collections.abc import Iterable

from tandem.faults.taxonomy import FaultClass


def checked_class(raw: object, label: str, key: str, required: Iterable[str], optional: Iterable[str],
                  error: type[ValueError]) -> tuple[dict, str, FaultClass]:
    """(the entry, its name for messages, its class); raises `error` naming `label` ("entry 3") and the field."""
    if not isinstance(raw, dict):
        raise error(f"{label}: not a mapping")
    where = f"{label} ({raw.get(key, '?')})"
    required = tuple(required)
    for field in required:
        if not isinstance(raw.get(field), str) or not raw[field].strip():
            raise error(f"{where}: {field} is missing or not a string")
    unknown = set(raw) - {*required, *optional}
    if unknown:
        raise error(f"{where}: unknown fields {sorted(unknown)}")
    if raw["strength"] not in ("strong", "weak"):
        raise error(f"{where}: strength {raw['strength']!r} is not strong or weak")
    if not raw["source"].startswith("https://"):
        raise error(f"{where}: source {raw['source']!r} is not an https URL")
    try:
        return raw, where, FaultClass(raw["class"])
    except ValueError as problem:
        raise error(f"{where}: {problem}") from problem
