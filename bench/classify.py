"""Fault classification on real public error texts (issue 15): how often `tandem classify --log` names the class a
careful SRE would give, against a naive keyword matcher measured in the same run.

The corpus is every tests/data/faults/corpus/*.yaml: a list of entries {id, vendor, family, class, reason, why,
source, split, text, ambiguous?}. Each `text` is classified as a log by `classify_log`, the very function
`tandem classify --log` calls (the shared table of tandem/faults), and by `keyword_class`, the baseline below.
Only the development part is tuned on: `--explain-misses` lists its misses and never the held-out part's.
For the development part, the held-out part and both together it prints the corpus size per class and per
vendor, a confusion matrix for each classifier (rows: the expected class, columns: the predicted one),
per-class precision and recall, overall accuracy and the ratio of the two accuracies. Pure CPU, no torch;
runs in seconds.

    .venv/bin/python -P bench/classify.py [--corpus DIR] [--explain-misses] [--table-speed]

`--table-speed` also times the signature table alone on every line of the corpus: each entry searched on each line
against the prefiltered search `tandem classify` uses (tandem/faults/prefilter.py), with the same entries found.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from tandem.faults import signatures
from tandem.operator.classify import classify_log

CORPUS_DIR = Path(__file__).resolve().parents[1] / "tests" / "data" / "faults" / "corpus"
CLASSES = ("interconnect", "device", "node", "oom", "storage", "user", "unknown")
VENDORS = ("ascend", "nvidia", "generic")
SPLITS = ("dev", "heldout")
FIELDS = ("id", "vendor", "family", "class", "reason", "why", "source", "split", "text")

Entry = dict[str, Any]
# A classifier: text -> (class, reason).
Classifier = Callable[[str], tuple[str, str]]

# The naive baseline that issue 15 compares against: the keywords anyone would grep for first, matched anywhere in
# the text, case-insensitively, the first row that matches wins. Deliberately not tuned on the corpus.
KEYWORDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (cls, re.compile(pattern, re.IGNORECASE))
    for cls, pattern in [
        ("oom", r"out of memory|\bOOM"),
        ("storage", r"No space left|Disk quota exceeded|Read-only file system"),
        ("device", r"\bXid\b|\bECC\b"),
        ("node", r"\bEvicted\b|\bNotReady\b"),
        ("interconnect", r"NCCL|HCCL|timeout|timed out"),
        ("user", r"Error|Exception"),
    ]
)


def ours(text: str) -> tuple[str, str]:
    """What `tandem classify --log` says of the text."""
    found = classify_log(text)
    return found.fault_class.value, found.reason


def keyword_class(text: str) -> tuple[str, str]:
    """The baseline: the class of the first keyword row that matches, else unknown."""
    for cls, pattern in KEYWORDS:
        match = pattern.search(text)
        if match:
            return cls, f"keyword {match.group(0)!r}"
    return "unknown", "no keyword"


CLASSIFIERS: dict[str, Classifier] = {"ours": ours, "baseline": keyword_class}


# --- the corpus --------------------------------------------------------------------------------------------------

def _entries(data: Any) -> list[Entry]:
    if isinstance(data, dict):
        data = data.get("entries")
    if data is None:
        return []
    if not isinstance(data, list) or not all(isinstance(e, dict) for e in data):
        raise ValueError("a corpus file holds a list of entries (mappings)")
    return data


def corpus_files(directory: Path = CORPUS_DIR) -> list[Path]:
    return sorted(directory.glob("*.yaml")) if directory.is_dir() else []


def load_corpus(directory: Path = CORPUS_DIR) -> list[Entry]:
    """Every entry of every *.yaml in the folder, in file order; each gains `file` (the file's name)."""
    entries = []
    for path in corpus_files(directory):
        for entry in _entries(yaml.safe_load(path.read_text())):
            entries.append({**entry, "file": path.name})
    return entries


def in_split(entries: Iterable[Entry], split: str) -> list[Entry]:
    """The entries of one part; "all" is both."""
    return [e for e in entries if split == "all" or e.get("split") == split]


# --- the figures -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Result:
    entry: Entry
    got: str
    reason: str

    @property
    def expected(self) -> str:
        return str(self.entry.get("class"))

    @property
    def hit(self) -> bool:
        return self.got == self.expected


@dataclass(frozen=True)
class Evaluation:
    results: tuple[Result, ...]

    @property
    def size(self) -> int:
        return len(self.results)

    @property
    def correct(self) -> int:
        return sum(r.hit for r in self.results)

    @property
    def accuracy(self) -> float | None:
        return self.correct / self.size if self.size else None

    @property
    def matrix(self) -> dict[str, Counter[str]]:
        return confusion(self.results)

    @property
    def misses(self) -> list[Result]:
        return [r for r in self.results if not r.hit]

    def where(self, key: str, value: str) -> Evaluation:
        """The results of the entries whose `key` is `value`."""
        return Evaluation(tuple(r for r in self.results if str(r.entry.get(key)) == value))

    def unambiguous(self) -> Evaluation:
        return Evaluation(tuple(r for r in self.results if not r.entry.get("ambiguous")))

    def precision(self, cls: str) -> float | None:
        predicted = [r for r in self.results if r.got == cls]
        return sum(r.hit for r in predicted) / len(predicted) if predicted else None

    def recall(self, cls: str) -> float | None:
        expected = [r for r in self.results if r.expected == cls]
        return sum(r.hit for r in expected) / len(expected) if expected else None


def evaluate(entries: Sequence[Entry], classifier: Classifier = ours) -> Evaluation:
    """Classify every entry's text."""
    return Evaluation(tuple(Result(e, *classifier(str(e.get("text") or ""))) for e in entries))


def confusion(results: Iterable[Result]) -> dict[str, Counter[str]]:
    """expected class -> predicted class -> count."""
    matrix: dict[str, Counter[str]] = {}
    for result in results:
        matrix.setdefault(result.expected, Counter())[result.got] += 1
    return matrix


# --- printing ----------------------------------------------------------------------------------------------------

def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def _row(cells: Iterable[object]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def _classes(evaluation: Evaluation) -> list[str]:
    """The taxonomy's classes, and any other a corpus entry or a classifier names (a typo shows up)."""
    seen = {r.expected for r in evaluation.results} | {r.got for r in evaluation.results}
    return [*CLASSES, *sorted(seen - set(CLASSES))]


def _counts(entries: Sequence[Entry], key: str, order: Sequence[str]) -> str:
    counts = Counter(str(e.get(key)) for e in entries)
    names = [*order, *sorted(set(counts) - set(order))]
    return ", ".join(f"{name} {counts[name]}" for name in names)


def print_matrix(name: str, evaluation: Evaluation, axes: str = "rows expected, columns predicted") -> None:
    classes, matrix = _classes(evaluation), evaluation.matrix
    print(f"\n{name}: confusion ({axes})\n")
    print(_row(["expected \\ predicted", *classes, "recall"]))
    print(_row(["---"] * (len(classes) + 2)))
    for cls in classes:
        counts = matrix.get(cls, Counter())
        print(_row([cls, *(counts[c] or "." for c in classes), _pct(evaluation.recall(cls))]))
    print(_row(["precision", *(_pct(evaluation.precision(c)) for c in classes), ""]))


def print_per_class(entries: Sequence[Entry], evaluations: dict[str, Evaluation]) -> None:
    counts = Counter(str(e.get("class")) for e in entries)
    names = list(evaluations)
    print("\nper class\n")
    print(_row(["class", "texts", *(f"{n} {m}" for n in names for m in ("precision", "recall"))]))
    print(_row(["---"] * (2 + 2 * len(names))))
    for cls in _classes(next(iter(evaluations.values()))):
        cells = [f(cls) for n in names for f in (evaluations[n].precision, evaluations[n].recall)]
        print(_row([cls, counts[cls], *(_pct(c) for c in cells)]))


def print_by_group(key: str, order: Sequence[str], evaluations: dict[str, Evaluation]) -> None:
    """Accuracy of each classifier per vendor (or per family)."""
    first = next(iter(evaluations.values()))
    groups = Counter(str(r.entry.get(key)) for r in first.results)
    print(f"\naccuracy per {key}\n")
    print(_row([key, "texts", *evaluations]))
    print(_row(["---"] * (2 + len(evaluations))))
    for group in [*(g for g in order if g in groups), *sorted(set(groups) - set(order))]:
        parts = [e.where(key, group) for e in evaluations.values()]
        print(_row([group, groups[group], *(f"{_pct(p.accuracy)} ({p.correct}/{p.size})" for p in parts)]))


def _accuracy_line(name: str, evaluation: Evaluation) -> str:
    clear = evaluation.unambiguous()
    line = f"{name}: accuracy {_pct(evaluation.accuracy)} ({evaluation.correct}/{evaluation.size})"
    if clear.size != evaluation.size:
        line += f", without the ambiguous texts {_pct(clear.accuracy)} ({clear.correct}/{clear.size})"
    return line


def print_split(split: str, entries: Sequence[Entry]) -> dict[str, Evaluation]:
    ambiguous = sum(bool(e.get("ambiguous")) for e in entries)
    print(f"\n## {split}: {len(entries)} texts ({ambiguous} marked ambiguous)\n")
    print(f"by class:  {_counts(entries, 'class', CLASSES)}")
    print(f"by vendor: {_counts(entries, 'vendor', VENDORS)}")
    evaluations = {name: evaluate(entries, classify) for name, classify in CLASSIFIERS.items()}
    for name, evaluation in evaluations.items():
        print_matrix(name, evaluation)
    print_per_class(entries, evaluations)
    print_by_group("vendor", VENDORS, evaluations)
    print()
    for name, evaluation in evaluations.items():
        print(_accuracy_line(name, evaluation))
    ours_acc, base_acc = evaluations["ours"].accuracy, evaluations["baseline"].accuracy
    ratio = f"{ours_acc / base_acc:.2f}" if ours_acc is not None and base_acc else "-"
    print(f"ours / baseline accuracy: {ratio}")
    return evaluations


def print_misses(split: str, evaluation: Evaluation) -> None:
    print(f"\n### {split}: the misses of ours ({len(evaluation.misses)})\n")
    for miss in evaluation.misses:
        entry = miss.entry
        print(f"- {entry.get('id')}: expected {miss.expected} ({entry.get('reason')}), got {miss.got} "
              f"({miss.reason}){' [ambiguous]' if entry.get('ambiguous') else ''}  {entry.get('source')}")


def print_speed(lines: int) -> None:
    """How long a whole `kubectl logs` output takes: `lines` lines of training progress around the corpus's texts,
    read by both classifiers in the same run (the cost of `tandem classify --log` on a big log)."""
    progress = "\n".join(f"[INFO] step {n} loss 1.{n % 97:02d} tokens/s 51234 lr 3.0e-04" for n in range(lines))
    text = progress + "\nEI0006: [PID: 1] Getting socket times out. Reason: Remote Rank did not send the data in time"
    print(f"\n## speed: one log of {lines + 1} lines ({len(text) / 1e6:.1f} MB)\n")
    timings = {}
    for name, classify in CLASSIFIERS.items():
        start = time.perf_counter()
        verdict = classify(text)
        timings[name] = time.perf_counter() - start
        print(f"{name}: {timings[name]:.2f} s ({lines / timings[name] / 1e3:.0f}k lines/s) -> {verdict[0]}")
    print(f"ours / baseline time: {timings['ours'] / timings['baseline']:.1f}")


def print_table_speed(entries: list[dict[str, Any]]) -> None:
    """The signature table on every line of the corpus's texts: each entry searched on each line (the reference),
    and searched only where the text its pattern requires occurs (tandem.faults.prefilter), in the same run."""
    lines = [line for entry in entries for line in str(entry["text"]).splitlines()]
    print(f"\n## speed: the signature table on the corpus's {len(lines)} lines\n")
    timings, found = {}, {}
    for name, match in (("every entry", signatures.matching_every_entry), ("prefiltered", signatures.matching)):
        start = time.perf_counter()
        found[name] = [match(line) for line in lines]
        timings[name] = time.perf_counter() - start
        print(f"{name}: {timings[name]:.2f} s ({timings[name] / len(lines) * 1e3:.2f} ms a line)")
    same = found["every entry"] == found["prefiltered"]
    print(f"every entry / prefiltered time: {timings['every entry'] / timings['prefiltered']:.1f}; the same entries "
          f"on every line: {same}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR, help="folder of *.yaml (default: %(default)s)")
    parser.add_argument("--explain-misses", action="store_true",
                        help="list every development text ours got wrong (never the held-out part's: only the "
                             "development part is tuned on)")
    parser.add_argument("--speed-lines", type=int, default=200_000,
                        help="lines of the big log timed at the end (0: skip; default: %(default)s)")
    parser.add_argument("--table-speed", action="store_true",
                        help="also time the signature table on every line of the corpus, prefiltered and not")
    args = parser.parse_args(argv)
    entries = load_corpus(args.corpus)
    if not entries:
        print(f"no corpus entries under {args.corpus}", file=sys.stderr)
        return 1
    files = ", ".join(f"{p.name} ({sum(e['file'] == p.name for e in entries)})" for p in corpus_files(args.corpus))
    print(f"# Fault classification: {len(entries)} texts from {files}")
    print("ours = tandem classify --log (tandem.operator.classify.classify_log); baseline = keywords (KEYWORDS)")
    for split in (*SPLITS, "all"):
        evaluations = print_split(split, in_split(entries, split))
        if args.explain_misses and split == "dev":
            print_by_group("family", (), evaluations)
            print_misses(split, evaluations["ours"])
    if args.speed_lines > 0:
        print_speed(args.speed_lines)
    if args.table_speed:
        print_table_speed(entries)
    return 0


if __name__ == "__main__":
    sys.exit(main())
