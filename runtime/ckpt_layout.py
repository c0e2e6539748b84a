"""The checkpoint folder layout, its commit protocol and the pure decisions over it (no torch).

    <TANDEM_CHECKPOINT_DIR>/
      data/corpus-<key>.u16, .json     the token file every pool reads (data.py)
      step-000000010/                  one checkpoint: the state after 10 optimizer steps
        .metadata, __<rank>_0.distcp   torch.distributed.checkpoint (sharded, any world size)
        rng-rank<r>.pt                 per-rank RNG state (restored when the world size is unchanged)
        manifest.json                  written LAST by rank 0: a folder without it does not exist

A checkpoint is complete when its manifest exists and every file it lists has the listed size; a
folder without a manifest is a save that never finished; one whose files do not match is corrupt.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

MANIFEST = "manifest.json"
# The log event rank 0 writes once a checkpoint is committed; the operator reads it from the log to follow
# status.lastCheckpoint while a run is healthy (the termination message only comes at the end).
COMMITTED_EVENT = "checkpoint_committed"
# Logged before an attempt resumes from a checkpoint another job (or another training config) wrote; the
# operator turns it into a Warning Event on the job.
FOREIGN_EVENT = "foreign_checkpoint"
# Training-config fields that may change between runs of one job without making its checkpoints another's.
_RUN_LENGTH_FIELDS = ("steps",)
FORMAT = "tandem-dcp-v1"
_STEP_DIR = re.compile(r"^step-(\d{9})$")

State = Literal["complete", "incomplete", "corrupt"]


def step_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"step-{step:09d}"


@dataclass(frozen=True)
class Entry:
    step: int
    path: Path
    state: State
    detail: str = ""
    manifest: dict[str, Any] | None = None


def inspect(path: Path, step: int) -> Entry:
    manifest_path = path / MANIFEST
    if not manifest_path.exists():
        return Entry(step, path, "incomplete", "no manifest (the save never finished)")
    try:
        manifest = json.loads(manifest_path.read_text())
        files: dict[str, int] = manifest["files"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return Entry(step, path, "corrupt", f"unreadable manifest: {exc}")
    if manifest.get("step") != step or manifest.get("format") != FORMAT:
        return Entry(step, path, "corrupt", "manifest does not describe this folder")
    for name, size in sorted(files.items()):
        try:
            actual = (path / name).stat().st_size
        except OSError:
            return Entry(step, path, "corrupt", f"{name} is missing")
        if actual != size:
            return Entry(step, path, "corrupt", f"{name} has {actual} bytes, the manifest says {size}")
    if ".metadata" not in files:
        return Entry(step, path, "corrupt", "no .metadata in the manifest")
    return Entry(step, path, "complete", manifest=manifest)


def scan(root: str | Path) -> list[Entry]:
    """Every checkpoint folder under `root`, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    entries = []
    for child in root.iterdir():
        match = _STEP_DIR.match(child.name)
        if match and child.is_dir():
            entries.append(inspect(child, int(match.group(1))))
    return sorted(entries, key=lambda e: e.step)


def choose_resume(entries: Sequence[Entry]) -> Entry | None:
    """The newest complete checkpoint; incomplete and corrupt ones are skipped."""
    complete = [e for e in entries if e.state == "complete"]
    return max(complete, key=lambda e: e.step) if complete else None


def plan_deletions(entries: Sequence[Entry], keep: int, protect: Iterable[int] = ()) -> list[Entry]:
    """Which folders to remove: broken ones, and complete ones beyond the newest `keep`.

    The newest complete checkpoint is never removed, whatever `keep` says, nor a step in `protect`
    (a save in progress).
    """
    protected = set(protect)
    complete = sorted((e for e in entries if e.state == "complete"), key=lambda e: e.step, reverse=True)
    keep_steps = {e.step for e in complete[: max(1, keep)]}
    return [e for e in entries if e.step not in protected and (e.state != "complete" or e.step not in keep_steps)]


def newest_complete_step(root: str | Path) -> int | None:
    chosen = choose_resume(scan(root))
    return chosen.step if chosen else None


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some network filesystems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


def write_manifest(path: Path, step: int, extra: dict[str, Any]) -> dict[str, Any]:
    """Commit a checkpoint: list its files with their sizes, then write the manifest atomically, last."""
    files = {}
    for child in sorted(path.iterdir()):
        if child.is_file() and child.name != MANIFEST and not child.name.endswith(".tmp"):
            with open(child, "rb") as f:
                os.fsync(f.fileno())
            files[child.name] = child.stat().st_size
    manifest = {"format": FORMAT, "step": step, "savedAt": time.time(), **extra, "files": files}
    tmp = path / f"{MANIFEST}.tmp"
    with open(tmp, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path / MANIFEST)
    _fsync_dir(path)
    return manifest


def remove(entry: Entry) -> None:
    # The manifest goes first, so an interrupted removal leaves an incomplete folder, never a
    # "complete" one with files missing.
    with contextlib.suppress(FileNotFoundError):
        (entry.path / MANIFEST).unlink()
    shutil.rmtree(entry.path, ignore_errors=True)


_KV = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"|\S+)")


def _log_records(text: str, event: str) -> list[dict[str, Any]]:
    """The runtime's log records of one event, oldest first, in either of its formats (runtime/logs.py):
    key=value (the default; strings quoted as Python's repr) or JSON lines (TANDEM_LOG_FORMAT=json)."""
    records = []
    for line in text.splitlines():
        if event not in line:
            continue
        line = line.strip()
        if line.startswith("{"):
            try:
                record = json.loads(line)
            except ValueError:
                continue
        else:
            record = {key: value[1:-1] if value[:1] in "'\"" else value for key, value in _KV.findall(line)}
        if isinstance(record, dict) and record.get("event") == event:
            records.append(record)
    return records


def _step(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        step = int(value)
    except (TypeError, ValueError):
        return None
    return step if step >= 0 else None


def committed_in_log(text: str) -> int | None:
    """The newest committed checkpoint step a runtime log reports."""
    steps = [s for s in (_step(r.get("step")) for r in _log_records(text, COMMITTED_EVENT)) if s is not None]
    return max(steps) if steps else None


def config_fingerprint(training: dict[str, Any]) -> str:
    """What a checkpoint records of the training config that wrote it (the run's length aside)."""
    shaping = {k: v for k, v in sorted(training.items()) if k not in _RUN_LENGTH_FIELDS}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def provenance(job: str, job_uid: str, fingerprint: str) -> dict[str, str]:
    """The manifest fields that say which job, and which training config, wrote a checkpoint."""
    return {"job": job, "jobUid": job_uid, "trainingConfigSha256": fingerprint}


def foreign_because(manifest: dict[str, Any] | None, job: str, job_uid: str, fingerprint: str) -> list[str]:
    """Why a checkpoint about to be resumed is not this job's own (empty: it is, or it does not say)."""
    if not manifest:
        return []
    reasons = []
    written_by, uid = manifest.get("job"), manifest.get("jobUid")
    if written_by and written_by != job:
        reasons.append(f"written by job {written_by}")
    elif uid and job_uid and uid != job_uid:
        reasons.append(f"written by an earlier job {written_by} (uid {uid})")
    recorded = manifest.get("trainingConfigSha256")
    if recorded and recorded != fingerprint:
        reasons.append("written with another training config")
    return reasons


def foreign_in_log(text: str) -> str | None:
    """The last foreign-checkpoint notice a runtime log holds, as one sentence; None when there is none."""
    records = _log_records(text, FOREIGN_EVENT)
    if not records:
        return None
    return f"resumes from checkpoint step {records[-1].get('step')}: {records[-1].get('reasons')}"
