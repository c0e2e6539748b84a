"""Which checkpoint to resume, what to set aside, what retention may delete (no torch).

Newest first: a checkpoint that is incomplete, corrupt (sizes), fails its checksums, fails to load or
whose first loss is implausible (verify.py) is renamed into `<root>/quarantine/` with the reason, and
the next newest is tried. Nothing is deleted on sight: any OSError but a missing file propagates (a
storage fault), so a transient EIO or a stale handle sets nothing aside. When checkpoints were
committed but none is left intact, the training config's `checkpoint.onUnreadable` decides: `fail`
(default) -> `storage`/`CheckpointUnreadable`; `scratch` -> train from step 0.

Retention deletes only complete checkpoints beyond the newest `keep` (never the newest, never a save
in progress: those are `.partial` folders private to their attempt, not checkpoints), and a
quarantined folder once max(keep, 2) kept complete checkpoints are newer than it, or when more than
QUARANTINE_KEEP are set aside (the oldest go first). Every rename and deletion is fenced (fence.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import structlog

from tandem.runtime import ckpt_layout, fence, verify
from tandem.runtime.config import OnUnreadable, TrainingConfig
from tandem.runtime.faults import checkpoint_unreadable

log = structlog.get_logger("tandem.checkpoint")
UNREADABLE_EVENT = "checkpoint_unreadable"  # no checkpoint loads and the policy is `scratch`
QUARANTINE_KEEP = 4  # at most this many quarantined folders are kept, the newest


def on_unreadable(training: TrainingConfig) -> OnUnreadable:
    """`checkpoint.onUnreadable` of the training config (default `fail`)."""
    return training.checkpoint.on_unreadable


def set_aside(root: Path, path: Path, step: int, reason: str, detail: str, guard: fence.Fence | None) -> Path:
    fence.check(guard, f"quarantine {path.name}")
    by = {"attempt": guard.attempt} if guard else {}
    target = ckpt_layout.move_to_quarantine(root, path, reason, detail, by)
    log.warning(ckpt_layout.QUARANTINED_EVENT, step=step, reason=reason, detail=detail, to=str(target))
    return target


def sweep_partials(root: Path, guard: fence.Fence | None) -> None:
    """At an attempt's start: every `.partial` save of this or an older attempt is abandoned."""
    mine = guard.attempt if guard else None
    for path, step, attempt in ckpt_layout.scan_partials(root):
        if mine is None or attempt <= mine:
            set_aside(root, path, step, "incomplete", f"a save of attempt {attempt} that never committed", guard)


def intact_problem(entry: ckpt_layout.Entry) -> str | None:
    """Why a complete-looking checkpoint is not intact (reads every byte); None when it is."""
    manifest = entry.manifest or {}
    if manifest.get("format") == ckpt_layout.LEGACY_FORMAT:
        log.warning("checkpoint_unverified", step=entry.step, detail="written before checksums: sizes only")
        return None
    return verify.content_problem(entry.path, manifest)


def select(root: Path, guard: fence.Fence | None) -> ckpt_layout.Entry | None:
    """The newest intact checkpoint; every broken one on the way (and any older broken one) is set aside."""
    chosen = None
    for entry in reversed(ckpt_layout.scan(root)):
        problem = entry.detail if entry.state != "complete" else None
        reason = "no-manifest" if entry.state == "incomplete" else entry.state  # a step folder was committed
        if problem is None and chosen is None:
            problem, reason = intact_problem(entry), "checksum"
        if problem is not None:
            set_aside(root, entry.path, entry.step, reason, problem, guard)
        elif chosen is None:
            chosen = entry
    return chosen


def lost_checkpoints(root: Path) -> list[int]:
    """Steps of committed checkpoints that were set aside (empty: nothing was ever lost)."""
    return [q.step for q in ckpt_layout.scan_quarantine(root) if q.committed]


def choose(root: Path, guard: fence.Fence | None, policy: OnUnreadable) -> ckpt_layout.Entry | None:
    """select(), then the policy when checkpoints existed but none is intact: `fail` raises
    storage/CheckpointUnreadable; `scratch` returns None (train from step 0) and says so."""
    chosen = select(root, guard)
    lost = lost_checkpoints(root) if chosen is None else []
    if lost:
        detail = f"{len(lost)} set aside in {root / ckpt_layout.QUARANTINE} (steps {lost})"
        if policy != "scratch":
            raise checkpoint_unreadable(f"{detail}; checkpoint.onUnreadable=fail")
        log.warning(
            UNREADABLE_EVENT,
            detail=detail,
            policy=policy,
            start_step=0,
            action="training from step 0 (checkpoint.onUnreadable=scratch)",
        )
    return chosen


def retain(root: Path, keep: int, guard: fence.Fence | None, protect: set[int] | None = None) -> None:
    """Delete complete checkpoints beyond `keep` and quarantined folders that are no longer needed.

    An OSError while listing skips the round: nothing is deleted on a guess.
    """
    try:
        entries = ckpt_layout.scan(root)
        quarantined = ckpt_layout.scan_quarantine(root)
    except OSError as exc:
        log.warning("retention_skipped", error=str(exc))
        return
    complete = [e for e in entries if e.state == "complete"]
    doomed = ckpt_layout.plan_deletions(complete, keep, protect=protect or set())
    for entry in doomed:
        fence.check(guard, f"delete checkpoint {entry.step}")
        log.info("checkpoint_removed", step=entry.step, state=entry.state, detail="beyond keep")
        ckpt_layout.remove(entry)
    kept = [e.step for e in complete if e not in doomed]
    for i, q in enumerate(quarantined):  # oldest first
        if sum(step > q.step for step in kept) >= max(keep, 2) or len(quarantined) - i > QUARANTINE_KEEP:
            fence.check(guard, f"delete quarantined {q.path.name}")
            log.info("quarantine_removed", step=q.step, reason=q.reason, path=str(q.path))
            shutil.rmtree(q.path, ignore_errors=True)


def commit(root: Path, partial: Path, step: int, guard: fence.Fence | None) -> Path:
    """Rename a finished save (manifest written) to its step folder; an existing one is set aside."""
    fence.check(guard, f"commit checkpoint {step}")
    final = ckpt_layout.step_dir(root, step)
    if final.exists():
        set_aside(root, final, step, "superseded", f"replaced by a new save of step {step}", guard)
    partial.rename(final)
    ckpt_layout._fsync_dir(root)
    return final
