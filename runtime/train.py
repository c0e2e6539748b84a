"""The training loop of one rank: set-up, resume, step, checkpoint.

Pure decisions live in plan.py, ckpt_layout.py and faults.py; this module wires them to torch.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import structlog
import torch
import torch.distributed as dist
from torch.distributed.checkpoint.api import CheckpointException
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.nn.parallel import DistributedDataParallel

from tandem.runtime import ckpt_layout, recovery, verify
from tandem.runtime.checkpoint import Checkpointer
from tandem.runtime.config import Contract, TrainingConfig
from tandem.runtime.data import TokenFile, rank_samples
from tandem.runtime.device import DeviceLayer, load_device_layer
from tandem.runtime.faults import FaultError
from tandem.runtime.fence import Fence
from tandem.runtime.inject import Injector, parse_inject
from tandem.runtime.metrics import Metrics, step_stats
from tandem.runtime.model import Decoder, flops_per_token
from tandem.runtime.plan import BatchPlan, batch_plan, is_checkpoint_step, learning_rate
from tandem.runtime.watchdog import Watchdog, process_group_timeout

log = structlog.get_logger("tandem.train")
# Pods of one job start minutes apart (image pulls, scheduling): rendezvous waits longer than a step.
RENDEZVOUS_TIMEOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class Ranks:
    rank: int
    local_rank: int
    world: int
    local_world: int


@dataclass
class Progress:
    """What the worker's fault report needs to know, kept current by the loop."""

    step: int | None = None
    resumed_from: int | None = None
    resume_decided: bool = False  # resumed_from is known (None then means: trained from step 0)
    stop_requested: bool = False


def effective_backend(accelerator: str, backend: str) -> str:
    """A CPU can only run gloo; a pool that asks a CPU for hccl/nccl (a local stand-in) gets gloo."""
    return "gloo" if accelerator == "cpu" else backend


def parallelize(model: Decoder, mode: str, device: DeviceLayer, world: int) -> torch.nn.Module:
    model.to(device.device)
    if mode == "ddp":
        ids = None if device.accelerator == "cpu" else [device.local_rank]
        return DistributedDataParallel(model, device_ids=ids)
    mesh = init_device_mesh(device.device_type, (world,))
    for layer in model.layers:
        fully_shard(layer, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


@contextlib.contextmanager
def gradient_sync(model: torch.nn.Module, enabled: bool) -> Iterator[None]:
    """Reduce gradients only on the last micro-batch of an accumulation."""
    if isinstance(model, FSDPModule):
        model.set_requires_gradient_sync(enabled)
        yield
    elif isinstance(model, DistributedDataParallel) and not enabled:
        with model.no_sync():
            yield
    else:
        yield


class CheckpointRejected(Exception):
    """The checkpoint this attempt resumed from failed to load, or its first loss was implausible."""

    def __init__(self, step: int, reason: str, detail: str) -> None:
        super().__init__(f"checkpoint {step} rejected ({reason}): {detail}")
        self.step, self.reason, self.detail = step, reason, detail


def transient(exc: CheckpointException) -> bool:
    """A load that failed on an I/O error (not a missing file) says nothing against the checkpoint."""
    failures = getattr(exc, "failures", {}) or {}
    errors = [f[0] if isinstance(f, tuple) else f for f in failures.values()]
    return any(isinstance(e, OSError) and not isinstance(e, FileNotFoundError) for e in errors)


def rank_seed(seed: int, step: int, rank: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}/{step}/{rank}".encode()).digest()[:8], "little")


class Trainer:
    def __init__(
        self,
        contract: Contract,
        ranks: Ranks,
        token_file: Path,
        progress: Progress,
        watchdog: Watchdog,
        attempt_token: str = "",
    ) -> None:
        self.c = contract
        self.cfg: TrainingConfig = contract.training
        self.ranks = ranks
        self.progress = progress
        self.watchdog = watchdog
        self.device = load_device_layer(
            contract.accelerator,
            contract.backend,
            ranks.local_rank,
            ranks.local_world,
            mixed_precision=self.cfg.mixed_precision,
        )
        self.device.setup()
        self.plan: BatchPlan = batch_plan(self.cfg.global_batch, ranks.world, self.cfg.micro_batch)
        self.data = TokenFile(token_file, self.cfg.seq_len, self.cfg.seed, self.cfg.data.shuffle)
        self.injector = Injector(
            parse_inject(contract.fault_inject),
            ranks.rank,
            ranks.local_rank,
            contract.attempt,
            contract.backend,
            contract.accelerator,
        )
        self.metrics = Metrics()
        self.fence = Fence(contract.checkpoint_dir, contract.attempt, attempt_token, contract.job_uid)

    # -- set-up ---------------------------------------------------------------------------------
    def init_distributed(self) -> dist.ProcessGroup:
        store = dist.TCPStore(
            self.c.master_addr,
            self.c.master_port,
            self.ranks.world,
            is_master=self.ranks.rank == 0,
            timeout=RENDEZVOUS_TIMEOUT,
        )
        timeout = process_group_timeout(self.cfg.watchdog_seconds)
        dist.init_process_group(
            effective_backend(self.c.accelerator, self.c.backend),
            store=store,
            rank=self.ranks.rank,
            world_size=self.ranks.world,
            timeout=timeout,
        )
        # Checkpoint writes run in a background thread: their collectives get a group of their own.
        return dist.new_group(backend="gloo", timeout=max(timeout, timedelta(minutes=30)))

    def agree_on_resume(self, proposal: int | None) -> int | None:
        """Rank 0's launcher decides; every rank follows, even if another node's listing differed."""
        box = [proposal]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    # -- the run --------------------------------------------------------------------------------
    def run(self, resume_step: int | None) -> None:
        cfg, ranks = self.cfg, self.ranks
        ckpt_pg = self.init_distributed()
        self.watchdog.beat("init", 0)
        resume_step = self.agree_on_resume(resume_step)
        if cfg.metrics.port and ranks.local_rank == 0:
            try:
                self.metrics.serve(cfg.metrics.port)
            except OSError as exc:  # e.g. two pods sharing a host (`tandem local`): train without the endpoint
                log.warning("metrics_port_unavailable", port=cfg.metrics.port, error=str(exc))

        ckpt = Checkpointer(
            self.c.checkpoint_dir,
            rank=ranks.rank,
            keep=self.c.checkpoint_keep,
            device=self.device,
            process_group=ckpt_pg,
            manifest_extra={
                "worldSize": ranks.world,
                "globalBatch": cfg.global_batch,
                "seqLen": cfg.seq_len,
                "corpusSha256": self.data.sha256,
                "attempt": self.c.attempt,
                "pool": self.c.pool,
                "accelerator": self.c.accelerator,
                **self.c.provenance(),
            },
            fence=self.fence,
        )
        while True:  # a rejected checkpoint: set it aside, rebuild from scratch, load the next newest
            model, optim = self.build()
            try:
                start_step, first_sample, saved_loss = self.resume(ckpt, model, optim, resume_step)
                self.train(model, optim, ckpt, start_step, first_sample, saved_loss)
                return
            except CheckpointRejected as rejected:
                del model, optim
                resume_step = self.fall_back(rejected)

    def build(self) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        cfg = self.cfg
        self.device.seed(cfg.seed)  # identical initial weights on every rank and every world size
        model = parallelize(Decoder(cfg.model_size), cfg.parallel, self.device, self.ranks.world)
        optim = torch.optim.AdamW(
            model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay, foreach=True
        )
        return model, optim

    def fall_back(self, rejected: CheckpointRejected) -> int | None:
        """Rank 0 sets the rejected checkpoint aside and picks the next intact one; every rank follows."""
        box: list[int | None] = [None]
        self.watchdog.pause()  # re-verifying reads the next checkpoint in full
        if self.ranks.rank == 0:
            root = Path(self.c.checkpoint_dir)
            path = ckpt_layout.step_dir(root, rejected.step)
            recovery.set_aside(root, path, rejected.step, rejected.reason, rejected.detail, self.fence)
            chosen = recovery.choose(root, self.fence, recovery.on_unreadable(self.cfg))
            box = [chosen.step if chosen else None]
        dist.broadcast_object_list(box, src=0)
        self.watchdog.beat("init", 0)
        return box[0]

    def train(
        self,
        model: torch.nn.Module,
        optim: torch.optim.Optimizer,
        ckpt: Checkpointer,
        start_step: int,
        first_sample: int,
        saved_loss: float | None,
    ) -> None:
        cfg, ranks = self.cfg, self.ranks
        self.progress.step = start_step  # a job resumed at or past its last step has nothing left to do
        log.info(
            "training_start",
            start_step=start_step,
            steps=cfg.steps,
            world=ranks.world,
            micro_batch=self.plan.micro_batch,
            accumulation=self.plan.accumulation,
            global_batch=cfg.global_batch,
            resumed_from=self.progress.resumed_from,
            parallel=cfg.parallel,
        )
        flops = flops_per_token(cfg.model_size, cfg.seq_len)
        peak = cfg.metrics.peak_tflops * 1e12 if cfg.metrics.peak_tflops else self.device.peak_flops
        for step in range(start_step + 1, cfg.steps + 1):
            self.progress.step = step
            started = time.perf_counter()
            loss, stop = self.train_step(model, optim, ckpt, step, start_step, first_sample)
            if step == start_step + 1 and start_step > 0:  # before anything of this state is saved
                problem = verify.loss_problem(loss, saved_loss)
                if problem:
                    raise CheckpointRejected(start_step, "loss", problem)
            stop_now = stop or step == cfg.steps
            if stop or is_checkpoint_step(step, self.c.checkpoint_interval, cfg.steps):
                samples = first_sample + (step - start_step) * cfg.global_batch
                # Waiting on a slow volume is not a hung collective (the checkpoint group has its own
                # timeout): the watchdog is disarmed until the save call returns.
                self.watchdog.pause()
                ckpt.save(
                    step,
                    model,
                    optim,
                    train={"samplesConsumed": samples, "loss": loss},
                    rng=self.device.rng_state(),
                    blocking=stop_now,
                )
                self.watchdog.beat("step_done", step)
                self.metrics.checkpoints.inc()
            stats = step_stats(
                step=step,
                loss=loss,
                tokens=cfg.global_batch * cfg.seq_len,
                seconds=time.perf_counter() - started,
                flops_per_token=flops,
                world=ranks.world,
                peak_flops=peak,
                stall=ckpt.stall_seconds,
            )
            self.metrics.observe(stats)
            if ranks.rank == 0 and (step % cfg.metrics.log_every_steps == 0 or stop_now):
                log.info(
                    "step",
                    step=step,
                    loss=repr(stats.loss),
                    tokens_per_s=round(stats.tokens_per_second, 1),
                    mfu=None if stats.mfu is None else round(stats.mfu, 4),
                    checkpoint_stall_s=round(stats.checkpoint_stall_seconds, 4),
                    lr=f"{optim.param_groups[0]['lr']:.6g}",
                    **self.device.memory_stats(),
                )
            if stop:
                raise FaultError("node", "Terminated", f"SIGTERM: stopped after step {step}, checkpoint saved")
        self.watchdog.pause()
        ckpt.wait()
        dist.barrier()
        dist.destroy_process_group()

    def resume(
        self, ckpt: Checkpointer, model: torch.nn.Module, optim: torch.optim.Optimizer, step: int | None
    ) -> tuple[int, int, float | None]:
        self.progress.resumed_from, self.progress.resume_decided = step, True
        if step is None:
            return 0, 0, None
        entry = ckpt_layout.inspect(ckpt_layout.step_dir(self.c.checkpoint_dir, step), step)
        if entry.state != "complete":
            raise FaultError("unknown", "CheckpointVanished", f"checkpoint {step} is {entry.state}: {entry.detail}")
        try:
            manifest = ckpt.load(entry, model, optim)
        except CheckpointException as exc:
            if transient(exc):
                raise
            raise CheckpointRejected(step, "load-failed", str(exc)[:500]) from exc
        if manifest.get("globalBatch") != self.cfg.global_batch or manifest.get("seqLen") != self.cfg.seq_len:
            log.warning(
                "resume_batch_changed",
                saved_global_batch=manifest.get("globalBatch"),
                global_batch=self.cfg.global_batch,
                saved_seq_len=manifest.get("seqLen"),
            )
        if manifest.get("corpusSha256") not in (None, self.data.sha256):
            log.warning("resume_corpus_changed", saved=manifest.get("corpusSha256"), now=self.data.sha256)
        rng = ckpt.load_rng(entry, self.ranks.world)
        if rng is not None:
            self.device.set_rng_state(rng)
        else:
            self.device.seed(rank_seed(self.cfg.seed, step, self.ranks.rank))
        log.info(
            "resumed",
            step=step,
            saved_world=manifest.get("worldSize"),
            world=self.ranks.world,
            samples_consumed=manifest["samplesConsumed"],
            rng_restored=rng is not None,
        )
        saved_loss = manifest.get("loss")
        return step, int(manifest["samplesConsumed"]), float(saved_loss) if saved_loss is not None else None

    def train_step(
        self,
        model: torch.nn.Module,
        optim: torch.optim.Optimizer,
        ckpt: Checkpointer,
        step: int,
        start_step: int,
        first_sample: int,
    ) -> tuple[float, bool]:
        cfg, plan, dev = self.cfg, self.plan, self.device
        self.watchdog.beat("compute", step)
        self.injector.compute(step)
        lr = learning_rate(
            step, lr=cfg.lr, warmup_steps=cfg.warmup_steps, total_steps=cfg.steps, min_lr_ratio=cfg.min_lr_ratio
        )
        for group in optim.param_groups:
            group["lr"] = lr
        samples = rank_samples(step, cfg.global_batch, self.ranks.world, self.ranks.rank, first_sample, start_step)
        loss_sum = torch.zeros((), device=dev.device)
        for micro in range(plan.accumulation):
            inputs, targets = self.data.batch(samples[micro * plan.micro_batch : (micro + 1) * plan.micro_batch])
            x = torch.from_numpy(inputs).to(dev.device, non_blocking=True)
            y = torch.from_numpy(targets).to(dev.device, non_blocking=True)
            with gradient_sync(model, micro == plan.accumulation - 1), dev.autocast():
                loss = model(x, y)
            (loss / plan.accumulation).backward()
            loss_sum += loss.detach().float()
        self.watchdog.beat("collective", step)
        self.injector.collective(step)
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        ckpt.wait_staged()  # the host copy of a pending checkpoint must finish before weights change
        optim.step()
        optim.zero_grad(set_to_none=True)
        reduced = torch.stack(
            [loss_sum / plan.accumulation, torch.tensor(float(self.progress.stop_requested), device=dev.device)]
        )
        dist.all_reduce(reduced)  # also agrees on a SIGTERM stop, so every rank saves the same step
        self.watchdog.beat("step_done", step)
        return float(reduced[0]) / self.ranks.world, bool(reduced[1] > 0)
