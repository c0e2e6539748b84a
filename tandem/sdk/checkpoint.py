"""`tandem.sdk.Checkpointer`: a team's script saves its model, optimizer and training state (the data position,
a scheduler, anything JSON can hold) in Tandem's own checkpoint layout (docs/design.md#the-sdk): sharded with
torch.distributed.checkpoint, so it loads at any world size; asynchronous (the host copy overlaps the next
forward/backward, the write runs in a thread); checksummed and committed atomically by rank 0; the newest N kept;
a broken one set aside and the next newest loaded. It is the runtime's own Checkpointer (tandem.runtime.checkpoint)
and verification (tandem.runtime.recovery), which the built-in trainer uses too."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from tandem.runtime import ckpt_layout, recovery
from tandem.runtime.checkpoint import Checkpointer as _RuntimeCheckpointer
from tandem.sdk.distributed import Context


class Checkpointer:
    def __init__(self, ctx: Context, root: str | Path | None = None, keep: int | None = None) -> None:
        folder = root or os.environ.get("TANDEM_CHECKPOINT_DIR")
        if not folder:
            raise ValueError("Checkpointer needs a folder: root=..., or TANDEM_CHECKPOINT_DIR (set in Tandem's pods)")
        self.ctx, self.root = ctx, Path(folder)
        self.keep = keep or int(os.environ.get("TANDEM_CHECKPOINT_KEEP") or 3)
        # Writes run in a background thread: their collectives get a gloo group of their own.
        group = dist.new_group(backend="gloo") if dist.is_initialized() else None
        self._inner = _RuntimeCheckpointer(
            self.root, rank=ctx.rank, keep=self.keep, device=ctx.layer, process_group=group,
            manifest_extra={"worldSize": ctx.world_size, "attempt": int(os.environ.get("TANDEM_ATTEMPT") or 0)})
        self._group = group

    def save(self, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             state: dict[str, Any] | None = None, *, blocking: bool = False) -> None:
        """Start saving the state after optimizer step `step` (every rank calls it); `state` is the training
        state beside the tensors, e.g. {"sample": 1024} for the data position. Call `wait_staged()` before the
        next optimizer.step() (the copy must be taken first), `wait()` before the script ends."""
        self._inner.save(step, model, optimizer, train={"state": state or {}}, rng=self.ctx.layer.rng_state(),
                         blocking=blocking)

    def wait_staged(self) -> float:
        return self._inner.wait_staged()

    def wait(self) -> None:
        self._inner.wait()

    def load(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[int, dict[str, Any]] | None:
        """Load the newest intact checkpoint into model and optimizer, whatever world size saved it, and return
        (its step, the state saved with it); None for a fresh start. Rank 0 verifies and chooses; every rank
        loads the same one. The RNG state is restored when the world is the one that saved it."""
        choice: list[int | None] = [None]
        if self.ctx.rank == 0:
            chosen = recovery.select(self.root, None)
            choice = [chosen.step if chosen else None]
        if self._group is not None:
            dist.broadcast_object_list(choice, src=0, group=self._group)
        step = choice[0]
        if step is None:
            return None
        entry = next(e for e in ckpt_layout.scan(self.root) if e.step == step)
        manifest = self._inner.load(entry, model, optimizer)
        rng = self._inner.load_rng(entry, self.ctx.world_size)
        if rng is not None:
            self.ctx.layer.set_rng_state(rng)
        return step, dict(manifest.get("state") or {})
