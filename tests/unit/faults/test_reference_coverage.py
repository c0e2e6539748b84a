"""Entries taken from the components' own sources rather than from any text of the corpus (issue 15, item 2): each
case in tests/data/faults/reference_lines.yaml is one real line as the component prints it, where it was seen, and
the whole decision it must give."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tandem.faults.reading import read_log
from tandem.faults.signatures import table

LINES = Path(__file__).parents[2] / "data" / "faults" / "reference_lines.yaml"
CASES: list[dict[str, Any]] = [case for family in yaml.safe_load(LINES.read_text()) for case in family["cases"]]


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_the_components_own_words(case: dict[str, Any]) -> None:
    reading = read_log(case["line"])
    assert reading is not None and reading.entry is not None, case["seen_at"]
    expected = case["expected"]
    assert (reading.fault_class.value, reading.reason, reading.rule, reading.entry.signature.id) == (
        expected["class"], expected["reason"], expected["rule"], expected["entry"]), case["seen_at"]


def test_every_case_names_an_entry_of_the_table_and_ids_are_unique() -> None:
    ids = {signature.id for signature in table()}
    assert not [c["expected"]["entry"] for c in CASES if c["expected"]["entry"] not in ids]
    assert len({c["id"] for c in CASES}) == len(CASES)
