"""How far two careful annotators agree on the fault corpus's classes (issue 15), and what the classifier scores on
the texts where they do.

The corpus's `class` (tests/data/faults/corpus/*.yaml) is one annotator's call. A second annotator labelled every
text again (tests/data/faults/second_labels.yaml: {id, class, confident, why}) from the text, its source page and
the class definitions of docs/design.md#fault-classes alone: without the first label, its reason, the split, the
classifier or the table. Their agreement is the ceiling any classifier's accuracy can be read against: where two
careful people differ, a "miss" says as much about the label as about the classifier. Nothing here changes a
label or the classifier; it measures both.

For the development part, the held-out part and both together it prints the two annotators' agreement (and Cohen's
kappa), their confusion matrix, and the accuracy of `tandem classify --log` against the first label, against the
second, on the texts they agree on, and on those the second annotator was also sure of, with per-class precision
and recall there (issue 15's goal read on the texts whose class is not in doubt). Pure CPU; seconds.

    .venv/bin/python -P bench/label_agreement.py [--corpus DIR] [--labels FILE]
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
import classify as bench  # bench/ is no package

SECOND_LABELS = bench.CORPUS_DIR.parent / "second_labels.yaml"

Label = dict[str, Any]


def load_second_labels(path: Path = SECOND_LABELS) -> dict[str, Label]:
    """id -> the second annotator's label; a class outside the taxonomy or an id given twice is an error."""
    data = yaml.safe_load(path.read_text()) if path.is_file() else []
    labels: dict[str, Label] = {}
    for label in data or []:
        if label.get("class") not in bench.CLASSES:
            raise ValueError(f"{path}: {label.get('id')}: class {label.get('class')!r} is not a fault class")
        if label["id"] in labels:
            raise ValueError(f"{path}: {label['id']} is labelled twice")
        labels[str(label["id"])] = label
    return labels


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Agreement beyond what two annotators with these class frequencies would reach by chance."""
    if not pairs:
        return None
    observed = sum(a == b for a, b in pairs) / len(pairs)
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    chance = sum(first[c] * second[c] for c in first) / len(pairs) ** 2
    return None if chance == 1 else (observed - chance) / (1 - chance)


def agreed(entries: Sequence[bench.Entry], labels: Mapping[str, Label], *, sure: bool = False) -> list[bench.Entry]:
    """The entries whose two labels are the same class (and, with `sure`, the second annotator was confident)."""
    return [e for e in entries if e["id"] in labels and labels[e["id"]]["class"] == e.get("class")
            and (not sure or _sure(e, labels))]


def as_second(entries: Sequence[bench.Entry], labels: Mapping[str, Label]) -> list[bench.Entry]:
    """The entries with the second annotator's class in place of the first's."""
    return [{**e, "class": labels[e["id"]]["class"]} for e in entries if e["id"] in labels]


def _line(name: str, evaluation: bench.Evaluation) -> str:
    return f"- {name}: {bench._pct(evaluation.accuracy)} ({evaluation.correct}/{evaluation.size})"


def _sure(entry: bench.Entry, labels: Mapping[str, Label]) -> bool:
    return bool(labels[entry["id"]].get("confident", True))


def print_part(split: str, entries: Sequence[bench.Entry], labels: Mapping[str, Label],
               verdicts: Mapping[str, tuple[str, str]]) -> None:
    """One part's figures; `verdicts` (id -> ours' class and reason) is classified once for every part."""
    labelled = [e for e in entries if e["id"] in labels]

    def scored(chosen: Sequence[bench.Entry]) -> bench.Evaluation:
        return bench.Evaluation(tuple(bench.Result(e, *verdicts[e["id"]]) for e in chosen))

    # The second annotator scored like a classifier against the first: its accuracy is their agreement.
    annotators = bench.Evaluation(tuple(bench.Result(e, labels[e["id"]]["class"], "second label") for e in labelled))
    sure = bench.Evaluation(tuple(r for r in annotators.results if _sure(r.entry, labels)))
    kappa = cohen_kappa([(r.expected, r.got) for r in annotators.results])
    print(f"\n## {split}: {len(labelled)} of {len(entries)} texts labelled twice "
          f"({sure.size} with a confident second label)\n")
    print(f"annotators agree: {bench._pct(annotators.accuracy)} ({annotators.correct}/{annotators.size}), "
          f"Cohen's kappa {'-' if kappa is None else f'{kappa:.2f}'}")
    print(f"annotators agree where the second was sure: {bench._pct(sure.accuracy)} ({sure.correct}/{sure.size})")
    bench.print_matrix("the two annotators", annotators,
                       "rows the first label, columns the second; recall: the share of a first label the second "
                       "shares, precision: the reverse")
    both_sure = scored(agreed(labelled, labels, sure=True))
    print("\nours (tandem classify --log):\n")
    print(_line("against the first label", scored(labelled)))
    print(_line("against the second label", scored(as_second(labelled, labels))))
    print(_line("where the two labels agree", scored(agreed(labelled, labels))))
    print(_line("where they agree and the second was sure", both_sure))
    print("\nper class where they agree and the second was sure\n")
    print(bench._row(["class", "texts", "precision", "recall"]))
    print(bench._row(["---"] * 4))
    counts = Counter(r.expected for r in both_sure.results)
    for cls in bench.CLASSES:
        print(bench._row([cls, counts[cls], bench._pct(both_sure.precision(cls)), bench._pct(both_sure.recall(cls))]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=bench.CORPUS_DIR, help="folder of *.yaml (default: %(default)s)")
    parser.add_argument("--labels", type=Path, default=SECOND_LABELS, help="second labels (default: %(default)s)")
    args = parser.parse_args(argv)
    entries, labels = bench.load_corpus(args.corpus), load_second_labels(args.labels)
    if not entries or not labels:
        print(f"nothing to compare: {len(entries)} corpus texts, {len(labels)} second labels", file=sys.stderr)
        return 1
    unknown_ids = sorted(set(labels) - {e["id"] for e in entries})
    if unknown_ids:
        print(f"second labels for texts not in the corpus: {', '.join(unknown_ids)}", file=sys.stderr)
        return 1
    print(f"# Two annotators on the fault corpus: {len(labels)} second labels for {len(entries)} texts")
    verdicts = {r.entry["id"]: (r.got, r.reason) for r in bench.evaluate(entries).results}
    for split in (*bench.SPLITS, "all"):
        print_part(split, bench.in_split(entries, split), labels, verdicts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
