"""The checks every entry of a fault table passes (signatures.yaml, codes.yaml): it is a mapping, its required
fields are non-empty strings, it has no field the table does not know, its strength is strong or weak, its class
is a fault class and its source an https URL. A failed check names the entry and the field. A shipped table is
loaded once, and so is its failure (`LoadedOnce`)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import update_wrapper
from typing import Generic, TypeVar

from tandem.faults.taxonomy import FaultClass

T = TypeVar("T")


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


class LoadedOnce(Generic[T]):
    """A shipped table's loader, run once: later calls return the table, or raise its error again at once.

    `functools.cache` keeps only what returns, so a table that fails to load (a duplicate id, a bad pattern) was
    parsed again on every call: classifying one log re-read the whole table for each of its lines, minutes before
    the error surfaced. The error is raised as a fresh copy, chained to the first, so its traceback does not grow."""

    def __init__(self, load: Callable[[], T]) -> None:
        self._load = load
        self._outcome: tuple[T | None, ValueError | None] | None = None
        update_wrapper(self, load)

    def __call__(self) -> T:
        if self._outcome is None:
            try:
                self._outcome = (self._load(), None)
            except ValueError as error:
                self._outcome = (None, error)
        value, error = self._outcome
        if error is not None:
            raise type(error)(*error.args) from error
        return value  # type: ignore[return-value]

    def cache_clear(self) -> None:
        """Forget the outcome (tests that load a table of their own)."""
        self._outcome = None
