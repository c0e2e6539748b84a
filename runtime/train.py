"""The built-in trainer's loop for one rank: set-up, resume, step, checkpoint.

It is a client of the public SDK (tandem.sdk) like any team's script: `sdk.init` binds the device and joins the
process group, `sdk.batch_plan` keeps the global batch on any world size, `sdk.checkpoint.Checkpointer` saves,
loads, verifies and sets aside, `sdk.progress` reports each step. What is its own is the model, the data, the
learning-rate schedule, the loss check after a resume and the in-process hang watch (worker.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import structlog
import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, fully_shard
from torch.nn.parallel import DistributedDataParallel

import tandem.sdk as sdk
from tandem.runtime import verify
from tandem.runtime.config import Contract, TrainingConfig
from tandem.runtime.data import TokenFile, rank_samples
from tandem.runtime.device import DeviceLayer
from tandem.runtime.faults import FaultError
from tandem.runtime.inject import Injector, parse_inject
from tandem.runtime.metrics import Metrics, step_stats
from tandem.runtime.model import Decoder, flops_per_token
from tandem.runtime.plan import BatchPlan, is_checkpoint_step, learning_rate
from tandem.runtime.watchdog import Watchdog
from tandem.sdk.checkpoint import Checkpointer, CheckpointRejected, Loaded
from tandem.sdk.distributed import Context

log = structlog.get_logger("tandem.train")


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
    ) -> None:
        self.c = contract
        self.cfg: TrainingConfig = contract.training
        self.ranks = ranks
        self.progress = progress
        self.watchdog = watchdog
        self.plan: BatchPlan = sdk.batch_plan(self.cfg.global_batch, self.cfg.micro_batch, ranks.world)
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
        self.ctx: Context | None = None
        self.device: DeviceLayer | None = None

    # -- the run --------------------------------------------------------------------------------
    def run(self, resume_step: int | None) -> None:
        """Train from `resume_step`, the checkpoint rank 0's launcher chose and verified (None: step 0); every
        rank follows rank 0's choice, even if another node's listing differed."""
        cfg, ranks = self.cfg, self.ranks
        self.ctx = sdk.init(mixed_precision=cfg.mixed_precision, timeout_seconds=cfg.watchdog_seconds)
        self.device = self.ctx.layer
        self.watchdog.beat("init", 0)
        if cfg.metrics.port and ranks.local_rank == 0:
            try:
                self.metrics.serve(cfg.metrics.port)
            except OSError as exc:  # e.g. two pods sharing a host (`tandem local`): train without the endpoint
                log.warning("metrics_port_unavailable", port=cfg.metrics.port, error=str(exc))

        ckpt = Checkpointer(
            self.ctx,
            self.c.checkpoint_dir,
            keep=self.c.checkpoint_keep,
            metadata={
                "globalBatch": cfg.global_batch,
                "seqLen": cfg.seq_len,
                "corpusSha256": self.data.sha256,
                "pool": self.c.pool,
                "accelerator": self.c.accelerator,
                **self.c.provenance(),
            },
            on_unreadable=cfg.checkpoint.on_unreadable,
        )
        while True:  # a rejected checkpoint: set it aside, rebuild from scratch, load the next newest
            # Loading a big checkpoint from a slow volume is not a hung collective, any more than saving one: the
            # watchdog is disarmed until the load returns (the checkpoint group's own timeout bounds it, as a save).
            self.watchdog.pause()
            model, optim = self.build()
            try:
                start_step, first_sample, saved_loss = self.resume(ckpt, model, optim, resume_step)
                self.watchdog.beat("init", 0)
                self.train(model, optim, ckpt, start_step, first_sample, saved_loss)
                return
            except CheckpointRejected as rejected:
                del model, optim
                self.watchdog.pause()  # re-verifying reads the next checkpoint in full
                resume_step = ckpt.reject(rejected)

    def build(self) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        cfg = self.cfg
        assert self.device is not None
        self.device.seed(cfg.seed)  # identical initial weights on every rank and every world size
        model = parallelize(Decoder(cfg.model_size), cfg.parallel, self.device, self.ranks.world)
        optim = torch.optim.AdamW(
            model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=cfg.weight_decay, foreach=True
        )
        return model, optim

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
                ckpt.save(step, model, optim, state={"samplesConsumed": samples, "loss": loss}, blocking=stop_now)
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
            sdk.progress(step, loss=stats.loss, tokens_per_second=stats.tokens_per_second)
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
        """Load rank 0's choice; return (start step, samples consumed, the loss saved with it)."""
        assert self.device is not None
        loaded = ckpt.load(model, optim, step=step)
        self.progress.resumed_from, self.progress.resume_decided = loaded.step if loaded else None, True
        if loaded is None:
            return 0, 0, None
        self.warn_on_changes(loaded)
        if not loaded.rng_restored:  # another world size: ranks draw fresh, step-derived streams
            self.device.seed(rank_seed(self.cfg.seed, loaded.step, self.ranks.rank))
        samples, saved_loss = int(loaded.state["samplesConsumed"]), loaded.state.get("loss")
        log.info(
            "resumed",
            step=loaded.step,
            saved_world=loaded.manifest.get("worldSize"),
            world=self.ranks.world,
            samples_consumed=samples,
            rng_restored=loaded.rng_restored,
        )
        return loaded.step, samples, float(saved_loss) if saved_loss is not None else None

    def warn_on_changes(self, loaded: Loaded) -> None:
        manifest = loaded.manifest
        if manifest.get("globalBatch") != self.cfg.global_batch or manifest.get("seqLen") != self.cfg.seq_len:
            log.warning(
                "resume_batch_changed",
                saved_global_batch=manifest.get("globalBatch"),
                global_batch=self.cfg.global_batch,
                saved_seq_len=manifest.get("seqLen"),
            )
        if manifest.get("corpusSha256") not in (None, self.data.sha256):
            log.warning("resume_corpus_changed", saved=manifest.get("corpusSha256"), now=self.data.sha256)

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
        assert dev is not None
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
