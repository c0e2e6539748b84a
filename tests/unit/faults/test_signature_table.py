"""The signature table (tandem/faults/signatures.yaml) is data a newcomer edits: it loads, every entry is complete
and cites an https source, a malformed entry is refused naming the entry and the field, and the shared module
stays free of torch and the Kubernetes client (both images import it)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tandem.faults.signatures import SignatureTableError, matching, parse_table, table
from tandem.faults.taxonomy import FaultClass

GOOD = """
- id: disk-full
  class: storage
  reason: DiskFull
  vendor: generic
  strength: strong
  pattern: 'No space left on device'
  source: https://man7.org/linux/man-pages/man3/errno.3.html
"""


def test_the_shipped_table_loads_with_every_class_and_vendor() -> None:
    entries = table()
    assert len(entries) >= 60
    assert {s.fault_class for s in entries} == set(FaultClass)
    assert {s.vendor for s in entries} == {"ascend", "nvidia", "kubernetes", "generic"}
    assert all(s.source.startswith("https://") for s in entries)
    assert [s.order for s in entries] == list(range(len(entries)))
    assert len({s.id for s in entries}) == len(entries)


@pytest.mark.parametrize(("change", "names"), [
    (("class: storage", "class: disk"), "entry 0 (disk-full): 'disk' is not a valid FaultClass"),
    (("strength: strong", "strength: loud"), "entry 0 (disk-full): strength 'loud'"),
    (("vendor: generic", "vendor: intel"), "entry 0 (disk-full): vendor 'intel'"),
    (("source: https://", "source: http://"), "entry 0 (disk-full): source"),
    (("'No space left on device'", "'(unclosed'"), "entry 0 (disk-full): missing )"),
    (("  reason: DiskFull\n", ""), "entry 0 (disk-full): reason is missing"),
    (("  vendor: generic\n", "  vendor: generic\n  colour: red\n"), "unknown fields ['colour']"),
    (("  vendor: generic\n", "  vendor: generic\n  context: '(save'\n"), "entry 0 (disk-full): missing )"),
    (("  vendor: generic\n", "  vendor: generic\n  context: 3\n"), "entry 0 (disk-full): context is not a string"),
    (("  vendor: generic\n", "  vendor: generic\n  report: 'yes'\n"), "entry 0 (disk-full): report is not true or"),
    (("strength: strong", "strength: weak\n  report: true"), "entry 0 (disk-full): a report is strong"),
])
def test_a_malformed_entry_is_refused_naming_the_entry_and_the_field(change: tuple[str, str], names: str) -> None:
    assert len(parse_table(GOOD)) == 1
    with pytest.raises(SignatureTableError) as error:
        parse_table(GOOD.replace(*change))
    assert names in str(error.value)


def test_ids_are_unique() -> None:
    with pytest.raises(SignatureTableError, match="ids used more than once: \\['disk-full'\\]"):
        parse_table(GOOD + GOOD)


def test_matching_keeps_the_tables_order() -> None:
    line = "RuntimeError: NPU out of memory. Tried to allocate 2.00 GiB; EI0006 Getting socket times out"
    ids = [s.id for s in matching(line)]
    assert ids[0] == "device-oom" and "hccl-socket-timeout" in ids
    assert [s.order for s in matching(line)] == sorted(s.order for s in matching(line))
    assert matching("epoch 3 loss 1.23") == []


def test_the_shared_module_imports_neither_torch_nor_a_kubernetes_client() -> None:
    code = ("import sys, tandem.faults, tandem.faults.precedence; tandem.faults.read_log('x');"
            "print('\\n'.join(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    loaded = set(out.split())
    assert not {m for m in loaded if m.split(".")[0] in ("torch", "kubernetes", "kopf", "pydantic")}
    assert not any(m.startswith(("tandem.operator", "tandem.runtime")) for m in loaded)


def test_a_broken_shipped_table_is_read_once_and_every_later_call_fails_at_once(monkeypatch) -> None:
    # A table that fails to load used to be parsed again on every call (a failed call is not cached), so one
    # duplicate id made a classification of a long log re-read 1,300 entries per line: minutes, not an error.
    from tandem.faults import reading, signatures

    parsed: list[str] = []

    def broken(text: str, codes: object = ()) -> tuple:
        parsed.append(text)
        return parse_table(GOOD + GOOD)

    def clear() -> None:
        for loader in (signatures.table, signatures._phrases, signatures._by_code, signatures._prefilter,
                       signatures._reports):
            loader.cache_clear()

    monkeypatch.setattr(signatures, "parse_table", broken)
    clear()
    try:
        for _ in range(3):
            with pytest.raises(SignatureTableError, match="ids used more than once"):
                reading.read_log("ERROR: first line\nERROR: second line\nTraceback (most recent call last):\n")
        assert len(parsed) == 1
    finally:
        monkeypatch.undo()
        clear()
    assert table()[0].id
