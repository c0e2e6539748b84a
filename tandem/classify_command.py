"""`tandem classify` (docs/design.md#command-line): why did a pod fail? Reads a log (a tail, a whole `kubectl logs`
output, or a directory of rank logs) or a Pod object, classifies it with the operator's own classifier and prints
one JSON object per verdict; `--explain` adds which source and which table entry decided and what else matched."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml

from tandem.faults.taxonomy import cause_rank
from tandem.operator.classification import Classification
from tandem.operator.classify import classify_log, classify_pod


def _read(path: str | None) -> str:
    return Path(path).read_text(errors="replace") if path not in (None, "-") else sys.stdin.read()


def _rank_logs(folder: Path) -> list[Path]:
    """The regular files of a folder of rank logs (not its sub-folders, not hidden files), by name."""
    return sorted(p for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def root_cause_of(verdicts: list[tuple[str, Classification]]) -> tuple[str, Classification]:
    """The attempt's fault among its ranks' logs: the best evidence (a named cause before unknown before a rank
    that waited for or lost a peer, tandem.faults.taxonomy.cause_rank), then the first file by name."""
    return min(verdicts, key=lambda v: cause_rank(v[1].fault_class, v[1].reason))


def classify_folder(folder: Path, explain: bool) -> dict[str, Any]:
    verdicts = [(p.name, classify_log(p.read_text(errors="replace"))) for p in _rank_logs(folder)]
    if not verdicts:
        raise ValueError(f"{folder}: no log files in it")
    name, found = root_cause_of(verdicts)
    out = {**found.to_json(explain), "file": name}
    if explain:
        out["files"] = {n: c.to_json() for n, c in verdicts}
    return out


def _pods(text: str) -> list[dict[str, Any]] | None:
    try:  # kubectl's -o json, or -o yaml
        obj = json.loads(text)
    except ValueError:
        try:
            obj = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
    pods = obj.get("items") if isinstance(obj, dict) and obj.get("kind") == "List" else [obj]
    if not isinstance(pods, list) or not pods or not all(isinstance(p, dict) for p in pods):
        return None
    return pods


def run(log: str | None, pod: str | None, explain: bool) -> int:
    if pod is None:
        if log not in (None, "-") and Path(log).is_dir():
            try:
                print(json.dumps(classify_folder(Path(log), explain)))
            except ValueError as error:
                print(f"tandem classify: {error}", file=sys.stderr)
                return 2
            return 0
        print(json.dumps(classify_log(_read(log)).to_json(explain)))
        return 0
    pods = _pods(_read(pod))
    if pods is None:
        print("tandem classify: expected a Pod as JSON or YAML (kubectl get pod NAME -o json)", file=sys.stderr)
        return 2
    for one in pods:
        print(json.dumps(classify_pod(one, None, []).to_json(explain)))
    return 0
