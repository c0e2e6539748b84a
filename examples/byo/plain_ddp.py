"""A plain PyTorch DDP script that uses nothing of Tandem (examples/byo/plain-torchrun.yaml runs it with torchrun
under tandem-run, which restarts it). What it does for itself, in a few lines any script can have:

- it resumes from TANDEM_RESUME_PATH, the newest complete `step-<n>/` folder tandem-run found (torchtitan's layout:
  torch.distributed.checkpoint with its `.metadata`, which DCP writes last);
- it derives gradient accumulation from WORLD_SIZE, so the global batch stays the same on a pool of another size;
- it saves the data position with the weights, and its data is a function of the sample's position only, so the
  next step takes the same samples whatever the world size;
- it prints `step N loss L samples A-B`, the line tandem-run's progress watch reads.

Replace the model and `samples` with your own.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict
from torch.nn.parallel import DistributedDataParallel

# Sequences per optimizer step, per forward/backward at most, optimizer steps, steps between checkpoints, width.
GLOBAL_BATCH, MICRO_BATCH, STEPS, SAVE_EVERY, WIDTH = (int(os.environ.get(name, default)) for name, default in (
    ("GLOBAL_BATCH", 256), ("MICRO_BATCH", 8), ("STEPS", 10_000), ("SAVE_EVERY", 200), ("WIDTH", 1024)))


def samples(first: int, count: int) -> torch.Tensor:
    """Samples first..first+count-1 of a deterministic stream (your dataset, indexed by position)."""
    return torch.stack([torch.randn(WIDTH, generator=torch.Generator().manual_seed(i))
                        for i in range(first, first + count)])


def device_of(local_rank: int) -> torch.device:
    for kind in ("cuda", "npu"):  # torch.npu exists once torch_npu is imported (autoloaded in Ascend images)
        module = getattr(torch, kind, None)
        if module is not None and module.is_available():
            module.set_device(local_rank)
            return torch.device(kind, local_rank)
    return torch.device("cpu")


def state_of(model: torch.nn.Module, optimizer: torch.optim.Optimizer, sample: int) -> dict[str, object]:
    model_state, optimizer_state = get_state_dict(model, optimizer)
    return {"model": model_state, "optimizer": optimizer_state, "data": {"sample": torch.tensor(sample)}}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--checkpoint-folder", type=Path, default=Path(os.environ.get("TANDEM_CHECKPOINT_DIR", ".")))
    folder = parser.parse_args().checkpoint_folder
    rank, world, local_rank = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_RANK"])
    device = device_of(local_rank)
    dist.init_process_group()  # gloo on a CPU, nccl on GPUs, hccl on NPUs
    torch.manual_seed(0)
    model = DistributedDataParallel(torch.nn.Sequential(
        torch.nn.Linear(WIDTH, 4 * WIDTH), torch.nn.GELU(), torch.nn.Linear(4 * WIDTH, WIDTH)).to(device))
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-4)
    step, sample = 0, 0
    if os.environ.get("TANDEM_RESUME_PATH"):  # the newest complete checkpoint, at whatever world size saved it
        state = state_of(model, optimizer, 0)
        dcp.load(state, checkpoint_id=os.environ["TANDEM_RESUME_PATH"])
        set_state_dict(model, optimizer, model_state_dict=state["model"], optim_state_dict=state["optimizer"])
        step, sample = int(os.environ["TANDEM_RESUME_STEP"]), int(state["data"]["sample"])
    micro = min(MICRO_BATCH, GLOBAL_BATCH // world)
    if GLOBAL_BATCH % (world * micro):
        raise SystemExit(f"GLOBAL_BATCH={GLOBAL_BATCH} needs a multiple of {world} ranks x {micro} sequences")
    accumulation = GLOBAL_BATCH // (world * micro)
    if rank == 0:
        print(f"resumed at step {step} sample {sample} world {world} plan {micro}x{accumulation}", flush=True)
    while step < STEPS:
        step += 1
        total = torch.zeros((), device=device)
        for k in range(accumulation):  # this rank's share of the step's samples, the same set on any world
            x = samples(sample + (k * world + rank) * micro, micro).to(device)
            with model.no_sync() if k < accumulation - 1 else contextlib.nullcontext():  # reduce once a step
                loss = (model(x) - x).pow(2).mean() / accumulation
                loss.backward()
            total += loss.detach()
        optimizer.step()
        optimizer.zero_grad()
        dist.all_reduce(total)
        if rank == 0:
            print(f"step {step} loss {total.item() / world:.6f} samples {sample}-{sample + GLOBAL_BATCH - 1}",
                  flush=True)
        sample += GLOBAL_BATCH
        if step % SAVE_EVERY == 0 or step == STEPS:
            dcp.save(state_of(model, optimizer, sample), checkpoint_id=str(folder / f"step-{step}"))
    dist.destroy_process_group()
    # End the process here, before the model's destructors run: PyTorch can deadlock when the DDP model drops its
    # last reference to a gloo process group (the destructor joins gloo's thread with the GIL held while that thread
    # waits for the GIL to free a finished collective's tensors; pytorch/pytorch#190489). The checkpoint is on disk.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
