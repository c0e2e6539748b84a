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


@pytest.mark.parametrize(("loader", "rows", "error"), [
    ("load_second_labels", [{"id": "a", "class": "network"}], "a: class 'network' is not a fault class"),
    ("load_second_labels", [{"id": "a", "class": "user"}, {"id": "a", "class": "oom"}], "a is labelled twice"),
    ("load_labels", [{"id": "a", "class": "network"}], "a: class 'network' is not a fault class"),
    ("load_log_only", [{"id": "a", "log_only": "yes"}], "a: log_only must be true or false"),
    ("load_log_only", [{"id": "a", "log_only": True}, {"id": "a", "log_only": False}], "a is given twice"),
])
def test_a_bad_label_or_shape_file_is_refused_naming_the_text(tmp_path: Path, loader: str,
                                                              rows: list[dict[str, object]], error: str) -> None:
    path = tmp_path / "labels.yaml"
    path.write_text(yaml.safe_dump(rows))
    with pytest.raises(ValueError, match=error):
        getattr(_agreement(), loader)(path)


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
    assert text.count("a third annotator, blind, on the ") == 3
    assert text.count("- against the majority label: accuracy ") == 3
    assert text.count("- texts that are only program output, the majority label: accuracy ") == 3


def test_the_majority_label_takes_two_of_three_and_leaves_out_a_three_way_split() -> None:
    agreement = _agreement()
    entries = [{"id": "agree", "class": "user"}, {"id": "first", "class": "oom"}, {"id": "second", "class": "device"},
               {"id": "split", "class": "node"}]
    second = {"agree": {"class": "user"}, "first": {"class": "unknown"}, "second": {"class": "unknown"},
              "split": {"class": "storage"}}
    third = {"first": {"class": "oom"}, "second": {"class": "unknown"}, "split": {"class": "user"}}
    assert agreement.by_majority(entries, second, third) == [
        {"id": "agree", "class": "user"}, {"id": "first", "class": "oom"}, {"id": "second", "class": "unknown"}]


def test_a_disagreement_without_a_third_label_is_refused_by_name() -> None:
    entries = [{"id": "a", "class": "user"}, {"id": "b", "class": "oom"}]
    with pytest.raises(ValueError, match="no third label for b"):
        _agreement().by_majority(entries, {"a": {"class": "user"}, "b": {"class": "unknown"}}, {})


def test_the_goal_line_names_each_term_of_the_goal_and_the_weakest_class() -> None:
    agreement, bench = _agreement(), _agreement().bench
    results = [bench.Result({"class": "user"}, "user", "r")] * 19 + [bench.Result({"class": "user"}, "unknown", "r")]
    results += [bench.Result({"class": "oom"}, "user", "r"), bench.Result({"class": "oom"}, "oom", "r")]
    line = agreement.goal_line("first label", bench.Evaluation(tuple(results)))
    assert line == ("- first label: accuracy 91% (20/22), user precision 95%, lowest recall 50% (oom): "
                    "meets 2 of 3 terms")


def test_the_third_labels_cover_exactly_the_texts_the_two_annotators_label_apart() -> None:
    agreement = _agreement()
    entries, second = agreement.bench.load_corpus(), agreement.load_second_labels()
    apart = sorted(e["id"] for e in entries if second[e["id"]]["class"] != e["class"])
    assert sorted(agreement.load_labels(agreement.THIRD_LABELS)) == apart


def test_every_corpus_text_has_its_shape() -> None:
    agreement = _agreement()
    assert sorted(agreement.load_log_only()) == sorted(e["id"] for e in agreement.bench.load_corpus())
