"""bench/label_agreement.py, the second annotator's labels against the corpus's (issue 15): the agreement figures are
computed right, bad label files are refused by name, and the real second labels cover the corpus exactly. No
agreement or accuracy is asserted on the real corpus: the bench measures it."""

from __future__ import annotations

import io
from contextlib import redirect_stdout
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from bench_modules import bench_module


def _agreement() -> ModuleType:
    return bench_module("label_agreement")


def test_cohen_kappa_discounts_the_agreement_chance_alone_gives() -> None:
    kappa = _agreement().cohen_kappa
    # The textbook two-class case: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no: observed 0.7, by chance 0.5.
    pairs = [("user", "user")] * 20 + [("user", "oom")] * 5 + [("oom", "user")] * 10 + [("oom", "oom")] * 15
    assert kappa(pairs) == pytest.approx(0.4)
    assert kappa([("user", "user"), ("oom", "oom")]) == 1.0
    assert kappa([("user", "user")]) is None  # one class on both sides: chance agrees as much as they do
    assert kappa([]) is None


def test_agreed_keeps_the_texts_both_labelled_alike_and_as_second_swaps_the_class() -> None:
    agreement = _agreement()
    entries = [{"id": "a", "class": "user"}, {"id": "b", "class": "oom"}, {"id": "c", "class": "device"},
               {"id": "d", "class": "node"}]
    labels = {"a": {"id": "a", "class": "user", "confident": False}, "b": {"id": "b", "class": "unknown"},
              "c": {"id": "c", "class": "device", "confident": True}}
    assert [e["id"] for e in agreement.agreed(entries, labels)] == ["a", "c"]
    assert [e["id"] for e in agreement.agreed(entries, labels, sure=True)] == ["c"]
    assert agreement.as_second(entries, labels) == [{"id": "a", "class": "user"}, {"id": "b", "class": "unknown"},
                                                    {"id": "c", "class": "device"}]


@pytest.mark.parametrize(("labels", "error"), [
    ([{"id": "a", "class": "network"}], "a: class 'network' is not a fault class"),
    ([{"id": "a", "class": "user"}, {"id": "a", "class": "oom"}], "a is labelled twice"),
])
def test_a_bad_label_file_is_refused_naming_the_text(tmp_path: Path, labels: list[dict[str, str]],
                                                     error: str) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text(yaml.safe_dump(labels))
    with pytest.raises(ValueError, match=error):
        _agreement().load_second_labels(path)


def test_the_second_labels_cover_every_corpus_text_once() -> None:
    agreement = _agreement()
    corpus_ids = [e["id"] for e in agreement.bench.load_corpus()]
    assert sorted(agreement.load_second_labels()) == sorted(corpus_ids)


def test_the_bench_compares_the_annotators_on_every_part() -> None:
    out = io.StringIO()
    with redirect_stdout(out):
        assert _agreement().main([]) == 0
    text = out.getvalue()
    for part in ("dev", "heldout", "all"):
        assert f"\n## {part}: " in text
    assert text.count("annotators agree: ") == 3
    assert text.count("where they agree and the second was sure: ") == 3
