"""The checkpoint folder layout, its commit protocol and the pure decisions over it (no torch).

    <TANDEM_CHECKPOINT_DIR>/
      data/corpus-<key>.u16, .json     the token file every pool reads (data.py)
      step-000000010/                  one checkpoint: the state after 10 optimizer steps
        .metadata, __<rank>_0.distcp   torch.distributed.checkpoint (sharded, any world size)
        rng-rank<r>.pt                 per-rank RNG state (restored when the world size is unchanged)
        manifest.json                  written LAST by rank 0: a folder without it does not exist

      step-000000012.attempt-3.partial/  a save in progress, private to attempt 3; renamed to step-000000012
                                     once complete (the commit, fenced: fence.py)
      quarantine/step-000000006-<reason>/  set aside, never loaded, never counted in `keep` (recovery.py)
      fence/attempt-<n>.json           one per attempt: the newest one fences out every older writer

A checkpoint is complete when its manifest exists and every file it lists has the listed size (cheap:
scan, retention); it is intact when every file also has the checksum the manifest lists (verify.py,
read in full before a resume). A folder without a manifest is damaged; one whose files do not match
is corrupt. Any OSError but a missing file propagates: a transient storage error never makes a
checkpoint look broken.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import stat
import time
from collections.abc import Collection, Iterable, Sequence
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
# Training-config fields that may change between runs of one job without making its checkpoints another's:
# the run's length, and the recovery policy (`checkpoint.onUnreadable`), which shapes no tensor. Leaving the
# policy out also keeps every fingerprint written before the field existed.
_NOT_SHAPING_FIELDS = ("steps", "checkpoint")
# How a run is watched and reported, not what it trains: left out of the fingerprint since 2026-12-04 (a longer
# watchdog or another metrics port between attempts is the same training). Checkpoints written before still
# carry the fingerprint with them, which `config_fingerprints` keeps accepting.
_WATCH_FIELDS = ("watchdogSeconds", "metrics")
QUARANTINED_EVENT = "checkpoint_quarantined"
FORMAT = "tandem-dcp-v2"  # v2: per-file checksums and the manifest's own digest (verify.py)
LEGACY_FORMAT = "tandem-dcp-v1"  # sizes only: still resumed, unverified
DIGEST_FIELD = "manifestCrc32"  # the manifest's checksum of itself (every other field, canonical JSON; verify.py)
# The manifest's own fields: what a caller adds (the SDK's metadata, tandem-train's provenance) never replaces them.
MANIFEST_FIELDS = frozenset({"format", "step", "savedAt", "files", "checksum", "checksums", DIGEST_FIELD})
QUARANTINE = "quarantine"
REASON_FILE = "quarantine-reason.json"
_STEP_DIR = re.compile(r"^step-(\d{9})$")
_PARTIAL_DIR = re.compile(r"^step-(\d{9})\.attempt-(\d+)\.partial$")
_SLUG = re.compile(r"[^a-z0-9]+")

State = Literal["complete", "incomplete", "corrupt"]


# A checkpoint folder's step has nine digits: a larger (or negative) one would be written where no scan finds it.
MAX_STEP = 10**9 - 1


def check_step(step: int) -> int:
    if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= MAX_STEP:
        raise ValueError(f"a checkpoint's step is a whole number from 0 to {MAX_STEP}, not {step!r}")
    return step


def step_dir(root: str | Path, step: int) -> Path:
    return Path(root) / f"step-{check_step(step):09d}"


@dataclass(frozen=True)
class Entry:
    step: int
    path: Path
    state: State
    detail: str = ""
    manifest: dict[str, Any] | None = None


def is_step_dir(name: str) -> bool:
    """Is `name` a checkpoint folder's name of this layout (`step-<9 digits>`)?"""
    return bool(_STEP_DIR.match(name))


def partial_dir(root: str | Path, step: int, attempt: int) -> Path:
    """Where attempt `attempt` writes its save of `step` until the commit renames it to step_dir."""
    return Path(root) / f"step-{step:09d}.attempt-{attempt}.partial"


def inspect(path: Path, step: int) -> Entry:
    """Sizes only (cheap). A missing manifest or file is damage; any other OSError propagates."""
    try:
        text = (path / MANIFEST).read_text()
    except FileNotFoundError:
        return Entry(step, path, "incomplete", "no manifest (the save never finished)")
    try:
        manifest = json.loads(text)
        files: dict[str, int] = manifest["files"]
        sizes = sorted(files.items())
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return Entry(step, path, "corrupt", f"unreadable manifest: {exc}")
    if manifest.get("step") != step or manifest.get("format") not in (FORMAT, LEGACY_FORMAT):
        return Entry(step, path, "corrupt", "manifest does not describe this folder")
    for name, size in sizes:
        try:
            actual = (path / name).stat().st_size
        except FileNotFoundError:
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
        if match and stat.S_ISDIR(child.stat().st_mode):  # an EIO here propagates: never "not a checkpoint"
            entries.append(inspect(child, int(match.group(1))))
    return sorted(entries, key=lambda e: e.step)


def scan_partials(root: str | Path) -> list[tuple[Path, int, int]]:
    """Saves in progress (or abandoned): (path, step, attempt)."""
    root = Path(root)
    found = []
    for child in root.iterdir() if root.is_dir() else []:
        match = _PARTIAL_DIR.match(child.name)
        if match:
            found.append((child, int(match.group(1)), int(match.group(2))))
    return sorted(found, key=lambda p: (p[1], p[2]))


@dataclass(frozen=True)
class Quarantined:
    step: int
    path: Path
    reason: str  # the slug: incomplete, corrupt, checksum, load-failed, loss, superseded

    @property
    def committed(self) -> bool:
        """Was once a checkpoint (had a manifest); an abandoned save was not."""
        return self.reason != "incomplete"


def scan_quarantine(root: str | Path) -> list[Quarantined]:
    folder = Path(root) / QUARANTINE
    found = []
    for child in folder.iterdir() if folder.is_dir() else []:
        match = re.match(r"^step-(\d{9})(?:\.attempt-\d+\.partial)?-([a-z0-9-]+?)(?:-\d+)?$", child.name)
        if match:
            found.append(Quarantined(int(match.group(1)), child, match.group(2)))
    return sorted(found, key=lambda q: q.step)


def move_to_quarantine(root: str | Path, path: Path, reason: str, detail: str, by: dict[str, Any]) -> Path:
    """Rename `path` into the quarantine folder with the reason in its name and in a reason file."""
    folder = Path(root) / QUARANTINE
    folder.mkdir(exist_ok=True)
    slug = _SLUG.sub("-", reason.lower()).strip("-") or "unknown"
    target = folder / f"{path.name}-{slug}"
    n = 2
    while target.exists():
        target, n = folder / f"{path.name}-{slug}-{n}", n + 1
    os.rename(path, target)
    _fsync_dir(Path(root))
    record = {"reason": slug, "detail": detail, "from": path.name, "at": time.time(), **by}
    with contextlib.suppress(OSError):  # the folder's name already says why
        (target / REASON_FILE).write_text(json.dumps(record, indent=1, sort_keys=True))
    return target


def choose_resume(entries: Sequence[Entry]) -> Entry | None:
    """The newest complete checkpoint; incomplete and corrupt ones are skipped."""
    complete = [e for e in entries if e.state == "complete"]
    return max(complete, key=lambda e: e.step) if complete else None


def plan_deletions(entries: Sequence[Entry], keep: int, protect: Iterable[int] = ()) -> list[Entry]:
    """Which complete checkpoints retention removes: those beyond the newest `keep`, oldest first.

    The newest complete checkpoint is never removed, whatever `keep` says, nor a step in `protect` (the
    save just committed). A broken (incomplete or corrupt) entry is never planned: it is set aside into
    the quarantine (recovery.py), whose own rule removes it later, never deleted on sight.
    """
    protected = set(protect)
    complete = sorted((e for e in entries if e.state == "complete"), key=lambda e: e.step, reverse=True)
    keep_steps = {e.step for e in complete[: max(1, keep)]}
    return [e for e in reversed(complete) if e.step not in protected and e.step not in keep_steps]


def newest_complete_step(root: str | Path) -> int | None:
    try:
        chosen = choose_resume(scan(root))
    except OSError:
        return None  # only reported in the termination message; the storage fault speaks for itself
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


def write_manifest(
    path: Path, step: int, extra: dict[str, Any], checksums: dict[str, str] | None = None
) -> dict[str, Any]:
    """List a save's files with sizes and checksums (those in `checksums` were taken by the ranks that
    wrote them; the rest are computed here), then write the manifest atomically, last."""
    from tandem.runtime import verify  # here: the operator imports this module and needs none of it

    files: dict[str, int] = {}
    sums: dict[str, str] = {}
    for child in sorted(path.iterdir()):
        if child.is_file() and child.name != MANIFEST and not child.name.endswith(".tmp"):
            with open(child, "rb") as f:
                os.fsync(f.fileno())
            files[child.name] = child.stat().st_size
            sums[child.name] = (checksums or {}).get(child.name) or verify.file_checksum(child)
    manifest = {**extra, "format": FORMAT, "step": step, "savedAt": time.time(), "files": files,
                "checksum": verify.ALGORITHM, "checksums": sums}
    manifest[verify.DIGEST_FIELD] = verify.manifest_digest(manifest)
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


def _sha256_without(training: dict[str, Any], left_out: tuple[str, ...]) -> str:
    shaping = {k: v for k, v in sorted(training.items()) if k not in left_out}
    return hashlib.sha256(json.dumps(shaping, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def config_fingerprint(training: dict[str, Any]) -> str:
    """What a checkpoint records of the training config that wrote it (the run's length, the recovery policy and
    how the run is watched aside)."""
    return _sha256_without(training, _NOT_SHAPING_FIELDS + _WATCH_FIELDS)


def config_fingerprints(training: dict[str, Any]) -> tuple[str, str]:
    """The fingerprints a checkpoint of this config may have recorded: today's, then the one from before the watch
    settings were left out."""
    return config_fingerprint(training), _sha256_without(training, _NOT_SHAPING_FIELDS)


def provenance(job: str, job_uid: str, fingerprint: str) -> dict[str, str]:
    """The manifest fields that say which job, and which training config, wrote a checkpoint."""
    return {"job": job, "jobUid": job_uid, "trainingConfigSha256": fingerprint}


def foreign_because(manifest: dict[str, Any] | None, job: str, job_uid: str,
                    fingerprints: Collection[str]) -> list[str]:
    """Why a checkpoint about to be resumed is not this job's own (empty: it is, or it does not say).
    `fingerprints`: those of this job's training config (config_fingerprints)."""
    if not manifest:
        return []
    reasons = []
    written_by, uid = manifest.get("job"), manifest.get("jobUid")
    if written_by and written_by != job:
        reasons.append(f"written by job {written_by}")
    elif uid and job_uid and uid != job_uid:
        reasons.append(f"written by an earlier job {written_by} (uid {uid})")
    recorded = manifest.get("trainingConfigSha256")
    if recorded and recorded not in fingerprints:
        reasons.append("written with another training config")
    return reasons


def foreign_in_log(text: str) -> str | None:
    """The last foreign-checkpoint notice a runtime log holds, as one sentence; None when there is none."""
    records = _log_records(text, FOREIGN_EVENT)
    if not records:
        return None
    return f"resumes from checkpoint step {records[-1].get('step')}: {records[-1].get('reasons')}"


def quarantined_in_log(text: str) -> tuple[str, ...]:
    """The checkpoints a runtime log says were set aside, oldest first, each as "step N (reason)"."""
    return tuple(f"step {r.get('step')} ({r.get('reason')})" for r in _log_records(text, QUARANTINED_EVENT))
