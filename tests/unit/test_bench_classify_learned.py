"""bench/classify_learned.py, the learned classifiers measured against the signature table (issue 15): the models
learn what a corpus teaches, and the fallback only ever replaces the table's `unknown`. No accuracy is asserted on
the real corpus: the bench measures it."""

from __future__ import annotations

from types import ModuleType

import pytest
from bench_modules import bench_module


def _learned() -> ModuleType:
    return bench_module("classify_learned")


def _entry(n: int, cls: str, text: str) -> dict[str, str]:
    return {"id": f"{cls}-{n}", "class": cls, "text": text}


# Two classes that share no word: any model that learns at all tells them apart.
TOY = [
    *(_entry(n, "interconnect", f"NCCL WARN NET/IB : Got completion with error {n} remote peer retry exceeded")
      for n in range(6)),
    *(_entry(n, "user", f"ValueError: shape mismatch for tensor {n}, expected input of size") for n in range(6)),
]


@pytest.mark.parametrize("fit", ["fit_naive_bayes", "fit_logistic"])
def test_a_model_learns_what_the_corpus_teaches(fit: str) -> None:
    model = getattr(_learned(), fit)(TOY)
    assert model("NCCL WARN NET/IB : Got completion with error 12, retry exceeded")[0] == "interconnect"
    assert model("ValueError: shape mismatch, expected input of size 3")[0] == "user"
    cls, sure = model("remote peer retry exceeded")
    assert cls == "interconnect" and 0.5 < sure <= 1.0


def test_the_fallback_replaces_only_an_unknown_and_only_when_sure() -> None:
    with_fallback = _learned().with_fallback
    assert [
        with_fallback("device", ("user", 0.99), 0.5),
        with_fallback("unknown", ("user", 0.99), 0.5),
        with_fallback("unknown", ("user", 0.4), 0.5),
        with_fallback("unknown", ("user", 0.99), None),
    ] == ["device", "user", "unknown", "unknown"]


def test_the_score_counts_the_costly_mistakes_of_the_fallback() -> None:
    learned = _learned()
    entries = [_entry(0, "oom", ""), _entry(1, "unknown", ""), _entry(2, "unknown", ""), _entry(3, "device", "")]
    table = {"oom-0": "unknown", "unknown-1": "unknown", "unknown-2": "unknown", "device-3": "device"}
    model = {"oom-0": ("oom", 0.9), "unknown-1": ("user", 0.8), "unknown-2": ("device", 0.6),
             "device-3": ("user", 0.99)}
    score = learned.score(entries, table, model)
    assert (score["table"], score["alone"]) == (0.75, 0.25)
    # >= 0.5: three unknowns change, one rightly (the oom); one becomes a false user, one a false device.
    assert score[0.5] == (0.5, 1, 3, 1, 1)
    assert score[0.7] == (0.75, 1, 2, 1, 0)
    assert score[0.9] == (1.0, 1, 1, 0, 0)
