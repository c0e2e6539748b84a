"""A plain PyTorch DDP training script on tandem.sdk (examples/byo/sdk-ddp.yaml runs it): it resumes from its
newest checkpoint at whatever world size this attempt has, keeps the global batch, continues with the same samples,
and tells tandem-run its progress. It prints `step N loss L samples A-B`. Replace the model and the data with your
own."""

from __future__ import annotations

import os
import sys

import torch
import torch.distributed as dist

import tandem.sdk as sdk
from tandem.sdk.checkpoint import Checkpointer

# Sequences per optimizer step, per forward/backward at most, optimizer steps, steps between checkpoints, width.
GLOBAL_BATCH, MICRO_BATCH, STEPS, SAVE_EVERY, WIDTH = (int(os.environ.get(name, default)) for name, default in (
    ("GLOBAL_BATCH", 256), ("MICRO_BATCH", 8), ("STEPS", 10_000), ("SAVE_EVERY", 200), ("WIDTH", 1024)))


def samples(first: int, count: int) -> torch.Tensor:
    """Samples first..first+count-1 of a deterministic stream (your dataset, indexed by position): a sample depends
    on its position only, so a step takes the same samples on any world size."""
    return torch.stack([torch.randn(WIDTH, generator=torch.Generator().manual_seed(i))
                        for i in range(first, first + count)])


def main() -> None:
    ctx = sdk.init()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(WIDTH, 4 * WIDTH), torch.nn.GELU(), torch.nn.Linear(4 * WIDTH, WIDTH))
    model = model.to(ctx.device)
    if ctx.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    checkpoints = Checkpointer(ctx, keep=3)
    loaded = checkpoints.load(model, optimizer)
    step, state = (loaded.step, loaded.state) if loaded else (0, {"sample": 0})
    plan = sdk.batch_plan(GLOBAL_BATCH, micro_batch=MICRO_BATCH)  # the same global batch on any world size
    if ctx.rank == 0:
        print(f"resumed at step {step} sample {state['sample']} world {ctx.world_size} "
              f"plan {plan.micro_batch}x{plan.accumulation}", flush=True)
    while step < STEPS:
        step += 1
        total = torch.zeros((), device=ctx.device)
        for micro in range(plan.accumulation):
            first = state["sample"] + (micro * ctx.world_size + ctx.rank) * plan.micro_batch
            x = samples(first, plan.micro_batch).to(ctx.device)
            loss = (model(x) - x).pow(2).mean() / plan.accumulation
            loss.backward()
            total += loss.detach()
        checkpoints.wait_staged()  # the previous save's copy is taken before the weights change
        optimizer.step()
        optimizer.zero_grad()
        if dist.is_initialized():
            dist.all_reduce(total)
        if ctx.rank == 0:
            print(f"step {step} loss {total.item() / ctx.world_size:.6f} samples {state['sample']}-"
                  f"{state['sample'] + GLOBAL_BATCH - 1}", flush=True)
        state = {"sample": state["sample"] + GLOBAL_BATCH}  # the data position: global, so any world continues it
        sdk.progress(step, loss=total.item() / ctx.world_size)
        if step % SAVE_EVERY == 0 or step == STEPS:
            checkpoints.save(step, model, optimizer, state)
    checkpoints.wait()
    if dist.is_initialized():
        dist.destroy_process_group()
    # End the process here, before the model's destructors run: PyTorch can deadlock when the DDP model drops its
    # last reference to a gloo process group (the destructor joins gloo's thread with the GIL held while that thread
    # waits for the GIL to free a finished collective's tensors; pytorch/pytorch#190489). The checkpoint is on disk.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
