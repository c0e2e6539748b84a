"""The prefilter (tandem.faults.prefilter) only spares searches: the text it requires of a pattern occurs in every
match, and `matching` finds exactly what searching every pattern finds, on every line of the corpus and of the
log-tail tests, in any letter case, and on lines that are not ASCII."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tandem.faults import signatures
from tandem.faults.prefilter import Prefilter, required

DATA = Path(__file__).resolve().parents[2] / "data"


@pytest.mark.parametrize(("pattern", "needles"), [
    (r"Getting socket times out", {"getting socket times out"}),  # lowercase: the patterns ignore case
    (r"NCCL error.*unhandled system error", {"unhandled system error"}),  # the longest run of the sequence
    (r"\bEI0006\b", {"ei0006"}),
    # One of the branches' texts (the parser moves their common prefix "connect" out of the branch; the branches'
    # remainders are the more selective).
    (r"(?:connection refused|connect\(\) failed)", {"ion refused", "() failed"}),
    (r"socket (?:timeout|timed out) in rank \d+", {"socket time"}),
    (r"(?:abc|d)x", None),  # a branch with a single character requires too little
    (r"(?:foo)?barbaz", {"barbaz"}),  # an optional group requires nothing
    (r"(?:retry )+limit", {"retry "}),  # a group repeated at least once requires its text
    (r"[a-z]+ failed", {" failed"}),
    (r"a.b.c", None),  # no run of three literal characters
    (r"(?=unused)", None),
    (r"déjà vu", {" vu"}),  # a cased letter that is not ASCII is never required (case folding differs there)
    # Letters with no case (CJK, fullwidth brackets) fold to nothing else: they are required text, so a pattern
    # whose every branch needs them is never searched on an ASCII line (MindCluster's Chinese fault names).
    (r"(?:故障名称|Fault Name)\s*\|", {"故障名称", "fault name"}),
    (r"NPU光模块不在位", {"npu光模块不在位"}),
    (r"ab|cd|efgh", None),
])
def test_the_required_text(pattern: str, needles: set[str] | None) -> None:
    found = required(re.compile(pattern, re.IGNORECASE))
    assert (set(found) if found is not None else None) == needles


def test_candidates_are_the_patterns_whose_text_occurs_and_every_pattern_on_a_line_that_is_not_ascii() -> None:
    patterns = [re.compile(p, re.IGNORECASE) for p in (r"socket timeout", r"a.b", r"RDMA (?:init|setup)")]
    prefilter = Prefilter(patterns)
    assert prefilter.candidates("HCCL: Socket Timeout after 120s") == [0, 1]
    assert prefilter.candidates("rdma SETUP failed") == [1, 2]
    assert prefilter.candidates("nothing here") == [1]
    # `s` also matches the long s under re.IGNORECASE, which lowercasing does not fold: such a line is searched
    # with every pattern.
    long_s = "\N{LATIN SMALL LETTER LONG S}ocket timeout"
    assert patterns[0].search(long_s) and prefilter.candidates(long_s) == [0, 1, 2]


def _lines() -> list[str]:
    """Every distinct line of the corpus and of the log-tail tests."""
    lines: list[str] = []
    for path in sorted((DATA / "faults").rglob("*.yaml")):
        for entry in yaml.safe_load(path.read_text()) or []:
            if isinstance(entry, dict) and isinstance(entry.get("text"), str):
                lines += entry["text"].splitlines()
    return list(dict.fromkeys(lines))


def test_matching_finds_what_searching_every_entry_finds() -> None:
    lines = _lines()
    assert len(lines) > 2500  # the corpus and the log tails: thousands of real lines
    # A search of every entry costs about 3 ms a line: every sixth line is compared, in turn as written, in capitals
    # and with every letter's case swapped.
    variants = [(line, line.upper(), line.swapcase())[n % 3] for n, line in enumerate(lines[::6])]
    found = [(signatures.matching(line), signatures.matching_every_entry(line)) for line in variants]
    assert [line for line, (ours, every) in zip(variants, found, strict=True) if ours != every] == []
    assert sum(bool(ours) for ours, _ in found) > 100  # the comparison covers real matches
