"""A plain PyTorch DDP training script on tandem.sdk (examples/byo/sdk-ddp.yaml runs it): it resumes from its
newest checkpoint at whatever world size this attempt has, keeps the global batch, continues with the same samples,
and tells tandem-run its progress. Replace the model and the data with your own."""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

import tandem.sdk as sdk
from tandem.sdk.checkpoint import Checkpointer

# Sequences per optimizer step, per forward/backward at most, optimizer steps, steps between checkpoints.
GLOBAL_BATCH, MICRO_BATCH, STEPS, SAVE_EVERY = (int(os.environ.get(name, default)) for name, default in (
    ("GLOBAL_BATCH", 256), ("MICRO_BATCH", 8), ("STEPS", 10_000), ("SAVE_EVERY", 200)))


def batch(sample: int, rank: int, size: int) -> torch.Tensor:
    """The `size` samples of this rank from position `sample` of a deterministic stream (your dataset here)."""
    generator = torch.Generator().manual_seed(sample * 1_000_003 + rank)
    return torch.randn(size, 1024, generator=generator)


def main() -> None:
    ctx = sdk.init()
    model = torch.nn.Sequential(torch.nn.Linear(1024, 4096), torch.nn.GELU(), torch.nn.Linear(4096, 1024))
    model = model.to(ctx.device)
    if ctx.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    checkpoints = Checkpointer(ctx, keep=3)
    loaded = checkpoints.load(model, optimizer)
    step, state = (loaded.step, loaded.state) if loaded else (0, {"sample": 0})
    plan = sdk.batch_plan(GLOBAL_BATCH, micro_batch=MICRO_BATCH)  # the same global batch on any world size
    while step < STEPS:
        step += 1
        for micro in range(plan.accumulation):
            start = state["sample"] + (micro * ctx.world_size + ctx.rank) * plan.micro_batch
            x = batch(start, ctx.rank, plan.micro_batch).to(ctx.device)
            (model(x) - x).pow(2).mean().div(plan.accumulation).backward()
        checkpoints.wait_staged()  # the previous save's copy is taken before the weights change
        optimizer.step()
        optimizer.zero_grad()
        state = {"sample": state["sample"] + GLOBAL_BATCH}  # the data position: global, so any world continues it
        sdk.progress(step)
        if step % SAVE_EVERY == 0 or step == STEPS:
            checkpoints.save(step, model, optimizer, state)
    checkpoints.wait()
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
