"""`tandem.sdk.Checkpointer`: a script saves its model, optimizer and training state (the data position, a
scheduler, anything JSON can hold) in Tandem's own checkpoint layout (docs/design.md#the-sdk): sharded with
torch.distributed.checkpoint, so it loads at any world size; asynchronous (the host copy overlaps the next
forward/backward, the write runs in a thread); checksummed and committed atomically by rank 0; fenced against an
older attempt that still writes to the same volume; the newest N kept; a broken one set aside and the next newest
loaded. The built-in trainer (tandem-train) saves and loads through this same class.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

import torch
import torch.distributed as dist
from torch.distributed.checkpoint.api import CheckpointException

from tandem.runtime import ckpt_layout, recovery
from tandem.runtime.checkpoint import Checkpointer as _RuntimeCheckpointer
from tandem.runtime.config import OnUnreadable
from tandem.runtime.faults import FaultError
from tandem.runtime.fence import fence_from_env
from tandem.sdk import _checkpointers
from tandem.sdk.distributed import Context

NEWEST: Literal["newest"] = "newest"
# Checkpoint writes wait on storage, not on a peer: their collectives get their own, patient group.
WRITE_TIMEOUT = timedelta(minutes=30)
# What a user's metadata may not be called: the manifest's own fields, the state `save` records, and what the
# Checkpointer adds (the world size a checkpoint was written by, the attempt that fenced it).
_RESERVED = ckpt_layout.MANIFEST_FIELDS | {"state", "worldSize", "attempt"}


@dataclass(frozen=True)
class Loaded:
    """What `Checkpointer.load` restored."""

    step: int
    state: dict[str, Any]  # the training state saved with it (`save(..., state=...)`)
    manifest: dict[str, Any]  # everything recorded with it: worldSize, attempt, the `metadata` of the saver
    rng_restored: bool  # False when the world size changed: ranks then need a fresh, step-derived seed


class CheckpointRejected(Exception):
    """A checkpoint that failed to load, or that the script found implausible after loading (its first loss, say):
    pass it to `Checkpointer.reject` to set it aside and get the next newest."""

    def __init__(self, step: int, reason: str, detail: str) -> None:
        super().__init__(f"checkpoint {step} rejected ({reason}): {detail}")
        self.step, self.reason, self.detail = step, reason, detail


def transient(exc: CheckpointException) -> bool:
    """A load that failed on an I/O error (not a missing file) says nothing against the checkpoint."""
    failures = getattr(exc, "failures", {}) or {}
    errors = [f[0] if isinstance(f, tuple) else f for f in failures.values()]
    return any(isinstance(e, OSError) and not isinstance(e, FileNotFoundError) for e in errors)


def _state_of(manifest: dict[str, Any]) -> dict[str, Any]:
    if isinstance(manifest.get("state"), dict):
        return dict(manifest["state"])
    # Checkpoints of tandem-train before it saved through the SDK kept its state at the top of the manifest.
    return {key: manifest[key] for key in ("samplesConsumed", "loss") if key in manifest}


class Checkpointer:
    def __init__(self, ctx: Context, root: str | Path | None = None, keep: int | None = None, *,
                 metadata: dict[str, Any] | None = None, on_unreadable: OnUnreadable = "fail") -> None:
        """`root` defaults to the pod's TANDEM_CHECKPOINT_DIR, `keep` to TANDEM_CHECKPOINT_KEEP (3); `metadata`
        is recorded in every checkpoint's manifest (a corpus digest, the global batch); `on_unreadable` says what
        `load` does when checkpoints were committed but none is intact: `fail` (a storage fault) or `scratch`."""
        taken = sorted(set(metadata or {}) & _RESERVED)
        if taken:
            reserved = ", ".join(sorted(_RESERVED))
            raise ValueError(f"metadata key {taken[0]!r} is the manifest's own (reserved: {reserved}): "
                             "name it otherwise")
        folder = root or os.environ.get("TANDEM_CHECKPOINT_DIR")
        if not folder:
            raise ValueError("Checkpointer needs a folder: root=..., or TANDEM_CHECKPOINT_DIR (set in Tandem's pods)")
        self.ctx, self.root, self.on_unreadable = ctx, Path(folder), on_unreadable
        self.keep = keep or int(os.environ.get("TANDEM_CHECKPOINT_KEEP") or 3)
        self.fence = fence_from_env(self.root)
        # Writes run in a background thread: their collectives get a gloo group of their own.
        self._group = dist.new_group(backend="gloo", timeout=WRITE_TIMEOUT) if dist.is_initialized() else None
        extra = {**(metadata or {}), "worldSize": ctx.world_size, "attempt": self.fence.attempt}
        self._inner = _RuntimeCheckpointer(self.root, rank=ctx.rank, keep=self.keep, device=ctx.layer,
                                           process_group=self._group, manifest_extra=extra, fence=self.fence)
        _checkpointers.add(self)  # an injected fault (demos, tests) waits for its writes in flight

    @property
    def stall_seconds(self) -> float:
        """What the training loop waited for the latest save (its call and `wait_staged`)."""
        return self._inner.stall_seconds

    def save(self, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             state: dict[str, Any] | None = None, *, blocking: bool = False) -> None:
        """Start saving the state after optimizer step `step` (every rank calls it); `state` is the training
        state beside the tensors, e.g. {"sample": 1024} for the data position. Call `wait_staged()` before the
        next optimizer.step() (the copy must be taken first), `wait()` before the script ends."""
        ckpt_layout.check_step(step)  # before any copy or collective: a step no folder name can hold
        self._inner.save(step, model, optimizer, train={"state": state or {}}, rng=self.ctx.layer.rng_state(),
                         blocking=blocking)

    def wait_staged(self) -> float:
        return self._inner.wait_staged()

    def wait(self) -> None:
        self._inner.wait()

    def _agree(self, value: int | None) -> int | None:
        """Rank 0's value on every rank."""
        box = [value]
        if dist.is_initialized():
            dist.broadcast_object_list(box, src=0)
        return box[0]

    def _choose(self) -> int | None:
        chosen = recovery.choose(self.root, self.fence, self.on_unreadable) if self.ctx.rank == 0 else None
        return chosen.step if chosen else None

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             step: int | Literal["newest"] | None = NEWEST) -> Loaded | None:
        """Load a checkpoint into model and optimizer, whatever world size saved it; None for a fresh start.
        By default rank 0 verifies the newest (checksums), sets broken ones aside and every rank loads what it
        chose; a `step` (or None) chosen beforehand, by a supervisor that verified it, is taken as rank 0 gives it.
        Raises CheckpointRejected when the checkpoint does not load. The RNG state is restored when the world is
        the one that saved it."""
        chosen = self._agree(self._choose() if step == NEWEST else step)
        if chosen is None:
            return None
        entry = ckpt_layout.inspect(ckpt_layout.step_dir(self.root, chosen), chosen)
        if entry.state != "complete":
            raise FaultError("unknown", "CheckpointVanished", f"checkpoint {chosen} is {entry.state}: {entry.detail}")
        try:
            manifest = self._inner.load(entry, model, optimizer)
        except CheckpointException as exc:
            if transient(exc):
                raise
            raise CheckpointRejected(chosen, "load-failed", str(exc)[:500]) from exc
        rng = self._inner.load_rng(entry, self.ctx.world_size)
        if rng is not None:
            self.ctx.layer.set_rng_state(rng)
        return Loaded(chosen, _state_of(manifest), manifest, rng is not None)

    def reject(self, rejected: CheckpointRejected) -> int | None:
        """Set the rejected checkpoint aside (rank 0) and return the step of the next intact one, the same on
        every rank (None: none is left; `on_unreadable` decides whether that is a fault). Every rank calls it."""
        if self.ctx.rank == 0:
            path = ckpt_layout.step_dir(self.root, rejected.step)
            recovery.set_aside(self.root, path, rejected.step, rejected.reason, rejected.detail, self.fence)
        return self._agree(self._choose())
