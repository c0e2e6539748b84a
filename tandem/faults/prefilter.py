"""What text a pattern cannot match without: a cheap test that spares most regular-expression searches.

The signature table has some 500 phrase patterns; searching each on every line that carries evidence cost about
2 ms a line, and one alternation of them all cost more (Python's `re` tries every alternative at every position).
Most patterns contain literal text that any match must include ("getting socket times out", "nccl"). `required`
reads it from the parsed pattern: a set of lowercase strings, one of which occurs in every text the pattern matches.
A line that contains none of them is not searched.

The test is exact only on ASCII text: under re.IGNORECASE, `k` also matches the Kelvin sign and `s` the long s, which
lowercasing does not fold. `Prefilter` therefore searches every pattern on a line that is not ASCII. Characters with
no case (CJK) are required text like ASCII: an ASCII line cannot hold them, so a pattern that needs them is not
searched there."""

from __future__ import annotations

import re
import re._constants as sre  # the parser's op codes (Python 3.11's home of sre_constants)
import re._parser as sre_parse
from collections import defaultdict
from collections.abc import Iterable, Sequence

MIN_LENGTH = 3  # shorter literals occur nearly everywhere: no use as a filter

_Ops = Iterable[tuple[object, object]]


def required(pattern: re.Pattern[str]) -> frozenset[str] | None:
    """Lowercase strings, one of which every match of `pattern` contains; None when no such set with strings of
    MIN_LENGTH or more is found (the pattern is then always searched)."""
    try:
        parsed = sre_parse.parse(pattern.pattern, pattern.flags)
    except (re.error, RecursionError):
        return None
    found = _of_sequence(parsed)
    return found if found and min(map(len, found)) >= MIN_LENGTH else None


class Prefilter:
    """The patterns of a table that may match a line, found with one substring test per distinct required string
    (about 1,000 for the shipped table) rather than one search per pattern."""

    def __init__(self, patterns: Sequence[re.Pattern[str]]) -> None:
        owners: defaultdict[str, list[int]] = defaultdict(list)
        always = []
        for position, pattern in enumerate(patterns):
            needles = required(pattern)
            if needles is None:
                always.append(position)
            for needle in needles or ():
                owners[needle].append(position)
        self._size = len(patterns)
        self._always = frozenset(always)
        self._owners = tuple((needle, tuple(positions)) for needle, positions in owners.items())

    def candidates(self, line: str) -> list[int]:
        """The positions, in order, of the patterns that may match `line`: every one for a line that is not ASCII."""
        if not line.isascii():
            return list(range(self._size))
        lowered = line.lower()
        found = {p for needle, positions in self._owners if needle in lowered for p in positions}
        return sorted(found | self._always)


def _folds_plainly(char: str) -> bool:
    """Whether lowercasing is all IGNORECASE does to this character: ASCII, or a character with no case at all (CJK,
    fullwidth brackets), which no other character folds to. A cased letter beyond ASCII (é, the long s) may fold to
    a letter lowercasing does not give, so it is never required."""
    return char.isascii() or (char.lower() == char == char.upper() and char.casefold() == char)


def _best(candidates: list[frozenset[str]]) -> frozenset[str] | None:
    """The most selective alternative set: the one whose shortest string is longest."""
    usable = [c for c in candidates if c]
    return max(usable, key=lambda c: (min(map(len, c)), -len(c))) if usable else None


def _of_sequence(ops: _Ops) -> frozenset[str] | None:
    """A sequence matches only if each of its items does: any item's set, or any run of literal characters, will do."""
    candidates: list[frozenset[str]] = []
    run: list[str] = []

    def close_run() -> None:
        if run:
            candidates.append(frozenset({"".join(run)}))
            run.clear()

    for op, av in ops:
        if op is sre.LITERAL and isinstance(av, int) and _folds_plainly(chr(av)):
            run.append(chr(av).lower())
            continue
        close_run()
        inner = _of_item(op, av)
        if inner:
            candidates.append(inner)
    close_run()
    return _best(candidates)


def _of_item(op: object, av: object) -> frozenset[str] | None:
    if op is sre.SUBPATTERN and isinstance(av, tuple):  # a group: (group, add flags, del flags, its sequence)
        return _of_sequence(av[3])
    if op is sre.BRANCH and isinstance(av, tuple):  # a|b|c: one branch matched, so one of their sets occurs
        sets = [_of_sequence(branch) for branch in av[1]]
        if any(s is None for s in sets):
            return None
        return frozenset().union(*sets)  # type: ignore[arg-type]
    if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT) and isinstance(av, tuple) and av[0] >= 1:
        return _of_sequence(av[2])  # repeated at least once: its text occurs
    if op is sre.ATOMIC_GROUP:
        return _of_sequence(av)  # type: ignore[arg-type]
    return None  # a class, any character, an anchor, a lookaround, a back reference: nothing required
