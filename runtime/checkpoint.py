"""Sharded, reshardable, asynchronous checkpoints with torch.distributed.checkpoint (DCP).

Why not DCP's own `async_save`: it copies the state to host memory *before* it returns, so the loop
stalls for the whole copy. Parameters and optimizer state only change at the optimizer step, so here
the copy runs in a background thread while the next forward/backward runs, and the loop waits for it
only right before that step's `optimizer.step()` (`wait_staged`). The host buffers of that copy are
allocated once and reused by every later checkpoint whose tensors have the same names, shapes, dtypes
and placement (a fresh allocation pays its page faults again on every copy); they are pinned when the
state lives on an accelerator, and a save waits for the previous write before it overwrites them.
The write to storage follows in the same thread, on a dedicated gloo process group so it never
interleaves with the training collectives. Every rank writes into a folder private to its attempt
(`step-N.attempt-A.partial`) and checksums the files it wrote (verify.py) in that thread; rank 0
gathers the checksums, writes the manifest last (ckpt_layout.write_manifest) and commits by renaming
the folder to `step-N`, fenced (recovery.commit).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import structlog
import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed._state_dict_utils import _copy_state_dict, _create_cpu_state_dict
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

from tandem.runtime import ckpt_layout, recovery, verify
from tandem.runtime.device import DeviceLayer
from tandem.runtime.fence import Fence, fenced_error

log = structlog.get_logger("tandem.checkpoint")


def _staging_layout(obj: Any) -> Any:
    """What host buffers staged for the state dict `obj` must match to take its next copy: the same keys, and
    tensors of the same shape, dtype and device (for a DTensor: the same local shard, placements and mesh)."""
    if isinstance(obj, torch.Tensor):
        local = getattr(obj, "_local_tensor", obj)  # a DTensor's shard on this rank
        mesh = getattr(obj, "device_mesh", None)
        return (
            type(obj),
            tuple(obj.shape),
            obj.dtype,
            obj.device.type,
            tuple(local.shape),
            repr(getattr(obj, "placements", None)),
            mesh,
        )
    if isinstance(obj, dict):
        return {key: _staging_layout(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_staging_layout(value) for value in obj]
    return type(obj)  # values are taken from the state itself, not from the buffers


def _on_accelerator(obj: Any) -> bool:
    if isinstance(obj, torch.Tensor):
        return obj.device.type != "cpu"
    if isinstance(obj, dict):
        return any(_on_accelerator(value) for value in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(_on_accelerator(value) for value in obj)
    return False


class Checkpointer:
    def __init__(
        self,
        root: str | Path,
        *,
        rank: int,
        keep: int,
        device: DeviceLayer,
        process_group: dist.ProcessGroup | None,
        manifest_extra: dict[str, Any],
        fence: Fence | None = None,
    ) -> None:
        self.root = Path(root)
        self.rank = rank
        self.keep = keep
        self.device = device
        self.pg = process_group
        self.manifest_extra = manifest_extra
        self.fence = fence
        self.attempt = fence.attempt if fence else int(manifest_extra.get("attempt", 0))
        self._buffers: dict[str, Any] | None = None  # the host copy's tensors, reused while the layout holds
        self._layout: Any = None
        self._thread: threading.Thread | None = None
        self._staged = threading.Event()
        self._error: BaseException | None = None
        self.stall_seconds = 0.0  # of the latest checkpoint: what the training loop waited for it
        self.copy_seconds = 0.0  # of the latest checkpoint: the host copy, overlapped with compute
        self.durable_seconds = 0.0  # of the latest committed checkpoint: from its save call until committed
        self.saved_steps: list[int] = []

    # -- saving ---------------------------------------------------------------------------------
    def save(
        self,
        step: int,
        model: torch.nn.Module,
        optim: torch.optim.Optimizer,
        *,
        train: dict[str, Any],
        rng: dict[str, Any],
        blocking: bool,
    ) -> None:
        """Start saving the state after `step`; with `blocking` return only once it is committed."""
        started = time.perf_counter()
        self.wait()  # the staging buffers are reused: the previous write must be done
        model_sd, optim_sd = get_state_dict(model, optim)
        state = {"model": model_sd, "optim": optim_sd}
        buffers = self._staging_buffers(state)  # after the wait: no write reads them any more
        self._staged = threading.Event()
        self._error = None
        self._thread = threading.Thread(
            target=self._write,
            args=(step, state, buffers, dict(train), rng, started),
            name=f"checkpoint-{step}",
            daemon=True,
        )
        self._thread.start()
        self.stall_seconds = time.perf_counter() - started
        if blocking:
            self.wait()
            self.stall_seconds = time.perf_counter() - started

    def wait_staged(self) -> float:
        """Block until the host copy of the pending checkpoint is taken; call before optimizer.step()."""
        if self._thread is None or self._staged.is_set():
            return 0.0
        started = time.perf_counter()
        self._staged.wait()
        waited = time.perf_counter() - started
        self.stall_seconds += waited
        self._raise_error()
        return waited

    def wait(self) -> None:
        """Block until the pending checkpoint is committed (or raise what went wrong)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def _write(
        self,
        step: int,
        state: dict[str, Any],
        buffers: dict[str, Any],
        train: dict[str, Any],
        rng: dict[str, Any],
        started: float,
    ) -> None:
        try:
            copy_started = time.perf_counter()
            staged = _copy_state_dict(state, buffers)
            self.device.synchronize()
            copy_seconds = self.copy_seconds = time.perf_counter() - copy_started
            self._staged.set()
            if self.fence is not None:
                self.fence.check(f"write checkpoint {step}")
            path = ckpt_layout.partial_dir(self.root, step, self.attempt)
            path.mkdir(parents=True, exist_ok=True)
            tmp = path / f"rng-rank{self.rank}.pt.tmp"
            torch.save(rng, tmp)
            os.replace(tmp, path / f"rng-rank{self.rank}.pt")
            write_started = time.perf_counter()
            dcp.save(staged, checkpoint_id=str(path), process_group=self.pg)
            # DCP's coordinator (rank 0) writes .metadata only after every rank's shards are written,
            # so once save() returns on rank 0 the whole checkpoint is on storage.
            checksums = self._gather_checksums(path)
            if self.rank == 0:
                self._commit(step, path, train, checksums, copy_seconds, write_started)
            self.saved_steps.append(step)
            self.durable_seconds = time.perf_counter() - started
        except BaseException as exc:  # surfaced to the training loop at its next wait
            self._error = self._explain(exc)
            self._staged.set()

    def _staging_buffers(self, state: dict[str, Any]) -> dict[str, Any]:
        """Host tensors to copy `state` into: those of the previous checkpoint when every tensor still has the
        same name, shape, dtype and placement, fresh ones otherwise (the first checkpoint; a model cast to
        another dtype; an optimizer over other parameters). Only once the previous write is done."""
        layout = _staging_layout(state)
        if self._buffers is None or layout != self._layout:
            self._buffers = None  # the old ones go before the new ones are allocated
            pin = self.device.accelerator != "cpu" and _on_accelerator(state)  # pinned: only for a D2H copy
            self._buffers, self._layout = _create_cpu_state_dict(state, pin_memory=pin), layout
        return self._buffers

    def _own_checksums(self, path: Path) -> dict[str, str]:
        """Checksums of the files this rank wrote (its shards, its RNG state), read back in this thread."""
        names = [p.name for p in path.iterdir() if not p.name.endswith(".tmp")]
        mine = [n for n in names if n.startswith(f"__{self.rank}_") or n == f"rng-rank{self.rank}.pt"]
        return {name: verify.file_checksum(path / name) for name in mine}

    def _gather_checksums(self, path: Path) -> dict[str, str]:
        mine = self._own_checksums(path)
        if self.pg is None or not dist.is_initialized():
            return mine
        gathered: list[dict[str, str] | None] = [None] * dist.get_world_size(self.pg)
        dist.all_gather_object(gathered, mine, group=self.pg)
        return {name: crc for part in gathered if part for name, crc in part.items()}

    def _commit(
        self,
        step: int,
        path: Path,
        train: dict[str, Any],
        checksums: dict[str, str],
        copy_s: float,
        write_started: float,
    ) -> None:
        manifest = ckpt_layout.write_manifest(path, step, {**self.manifest_extra, **train}, checksums)
        final = recovery.commit(self.root, path, step, self.fence)
        recovery.retain(self.root, self.keep, self.fence, protect={step})
        log.info(
            ckpt_layout.COMMITTED_EVENT,
            step=step,
            path=str(final),
            bytes=sum(manifest["files"].values()),
            copy_seconds=round(copy_s, 4),
            write_seconds=round(time.perf_counter() - write_started, 4),
        )

    def _explain(self, exc: BaseException) -> BaseException:
        """A save that failed because a newer attempt took the volume (its folder set aside) is Fenced."""
        if self.fence is None or getattr(exc, "reason", None) == "Fenced":
            return exc
        try:
            newer = self.fence.newer()
        except OSError:
            return exc
        if newer is None:
            return exc
        return fenced_error(f"checkpoint save failed ({type(exc).__name__}) after {newer[1]}; this attempt stops")

    # -- loading --------------------------------------------------------------------------------
    def load(self, entry: ckpt_layout.Entry, model: torch.nn.Module, optim: torch.optim.Optimizer) -> dict[str, Any]:
        """Load `entry` into model and optimizer, whatever world size or device saved it."""
        model_sd, optim_sd = get_state_dict(model, optim)
        state = {"model": model_sd, "optim": optim_sd}
        dcp.load(state, checkpoint_id=str(entry.path), process_group=self.pg)
        set_state_dict(model, optim, model_state_dict=state["model"], optim_state_dict=state["optim"])
        assert entry.manifest is not None
        return entry.manifest

    def load_rng(self, entry: ckpt_layout.Entry, world: int) -> dict[str, Any] | None:
        """This rank's RNG state, when the world is the one that saved it (otherwise ranks differ)."""
        manifest = entry.manifest or {}
        path = entry.path / f"rng-rank{self.rank}.pt"
        if manifest.get("worldSize") != world or not path.exists():
            return None
        return torch.load(path, weights_only=False)
