"""Checkpoint benchmark: the training loop's stall per checkpoint, restore time and write bandwidth.

For each size of model+optimizer state (fp32 parameters + two AdamW moments), in one process and one
run, it measures against baselines taken in the same run:
  stall    ours (runtime Checkpointer: host copy overlapped with the next forward/backward), the same through
           tandem.sdk (a team's script), vs torch.save, vs torch.distributed.checkpoint.save (sync) and DCP async_save;
           and the whole step with a checkpoint against one without
  restore  ours (DCP load into the live model and optimizer) vs torch.load + load_state_dict
  write    bytes/s of our complete save vs a plain file copy of the same size (the disk's limit)

    .venv/bin/python bench/checkpoint.py --sizes 100MB 1GB [--repeats 3] [--dir /tmp/tandem-bench]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict

from tandem.runtime import logs
from tandem.runtime.checkpoint import Checkpointer
from tandem.runtime.ckpt_layout import inspect, step_dir
from tandem.runtime.device import load_device_layer
from tandem.sdk import init
from tandem.sdk.checkpoint import Checkpointer as SdkCheckpointer

UNITS = {"MB": 10**6, "GB": 10**9}


def parse_size(text: str) -> int:
    return int(float(text[:-2]) * UNITS[text[-2:].upper()])


def build(state_bytes: int, width: int = 2048) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """A stack of square layers whose parameters plus AdamW moments take about `state_bytes`."""
    params = state_bytes // 12  # fp32 weight + exp_avg + exp_avg_sq
    layers = max(1, round(params / (width * width)))
    torch.manual_seed(0)
    model = torch.nn.Sequential(*(torch.nn.Linear(width, width, bias=False) for _ in range(layers)))
    optim = torch.optim.AdamW(model.parameters(), lr=1e-4)
    train_step(model, optim)  # materialise the optimizer state
    return model, optim


def forward_backward(model: torch.nn.Module) -> None:
    x = torch.randn(8, model[0].in_features)
    model(x).square().mean().backward()


def train_step(model: torch.nn.Module, optim: torch.optim.Optimizer) -> None:
    forward_backward(model)
    optim.step()
    optim.zero_grad(set_to_none=True)


def state_nbytes(model: torch.nn.Module, optim: torch.optim.Optimizer) -> int:
    model_sd, optim_sd = get_state_dict(model, optim)
    tensors = list(model_sd.values()) + [t for s in optim_sd["state"].values() for t in s.values()]
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


def loop_stall(
    name: str,
    repeats: int,
    model: torch.nn.Module,
    optim: torch.optim.Optimizer,
    save: Callable[[int], None],
    before_optimizer_step: Callable[[], None] = lambda: None,
    finish: Callable[[], None] = lambda: None,
) -> float:
    """Median seconds the loop is blocked per checkpoint (save call + wait before the next step)."""
    stalls = []
    for i in range(repeats):
        t0 = time.perf_counter()
        save(i)
        stall = time.perf_counter() - t0
        forward_backward(model)  # the next step's compute: overlaps an asynchronous copy
        t1 = time.perf_counter()
        before_optimizer_step()
        stall += time.perf_counter() - t1
        optim.step()
        optim.zero_grad(set_to_none=True)
        finish()
        stalls.append(stall)
        print(f"  {name:<16} checkpoint {i + 1}/{repeats}: loop stalled {stall:.3f} s", flush=True)
    return statistics.median(stalls)


def run_steps(model: torch.nn.Module, optim: torch.optim.Optimizer, steps: int, every: int,
              save: Callable[[int], None] | None, before_optimizer_step: Callable[[], None] = lambda: None,
              finish: Callable[[], None] = lambda: None) -> float:
    """Wall seconds for `steps` training steps with a checkpoint after every `every`-th (none when `save` is None),
    the last write waited for: the whole cost, the background write's competition for the CPU included."""
    started = time.perf_counter()
    for step in range(1, steps + 1):
        forward_backward(model)
        before_optimizer_step()
        optim.step()
        optim.zero_grad(set_to_none=True)
        if save is not None and step % every == 0:
            save(step)
    finish()
    return time.perf_counter() - started


def bench_size(size: int, repeats: int, root: Path) -> dict[str, float]:
    model, optim = build(size)
    nbytes = state_nbytes(model, optim)
    print(
        f"== state {nbytes / 1e6:.0f} MB ({sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params)", flush=True
    )
    out: dict[str, float] = {"bytes": nbytes}

    def torch_save(i: int) -> None:
        torch.save({"model": model.state_dict(), "optim": optim.state_dict()}, root / "torch.pt")

    out["torch.save"] = loop_stall("torch.save", repeats, model, optim, torch_save)

    def dcp_sync(i: int) -> None:
        model_sd, optim_sd = get_state_dict(model, optim)
        dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(root / f"dcp-{i}"))

    out["dcp.save"] = loop_stall("dcp.save", repeats, model, optim, dcp_sync)

    pending: list = []

    def dcp_async(i: int) -> None:
        model_sd, optim_sd = get_state_dict(model, optim)
        pending.append(dcp.async_save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(root / f"adcp-{i}")))

    def async_wait() -> None:
        while pending:
            pending.pop().result()  # the write finishes before the next checkpoint in every method

    out["dcp.async_save"] = loop_stall("dcp.async_save", repeats, model, optim, dcp_async, finish=async_wait)

    device = load_device_layer("cpu", "gloo", 0, 1)
    ckpt = Checkpointer(
        root / "ours", rank=0, keep=2, device=device, process_group=None, manifest_extra={"worldSize": 1}
    )
    copies: list[float] = []
    out["ours"] = loop_stall(
        "ours", repeats, model, optim,
        lambda i: ckpt.save(i + 1, model, optim, train={"samplesConsumed": 0}, rng=device.rng_state(),
                            blocking=False),
        before_optimizer_step=ckpt.wait_staged, finish=lambda: (ckpt.wait(), copies.append(ckpt.copy_seconds)),
    )  # fmt: skip
    out["ours_copy"] = statistics.median(copies)

    # The same Checkpointer as a team's script reaches it (tandem.sdk.checkpoint, with its data position).
    sdk = SdkCheckpointer(init({"TANDEM_ACCELERATOR": "cpu"}), root / "sdk", keep=2)
    out["sdk"] = loop_stall(
        "sdk", repeats, model, optim, lambda i: sdk.save(i + 1, model, optim, {"sample": 256 * (i + 1)}),
        before_optimizer_step=sdk.wait_staged, finish=sdk.wait,
    )
    # Whole cost over 20 steps with a checkpoint every 5th, against the same 20 steps without one.
    out["steps_plain"] = run_steps(model, optim, 20, 5, None)
    out["steps_sdk"] = run_steps(model, optim, 20, 5, lambda n: sdk.save(1000 + n, model, optim, {"sample": n}),
                                 before_optimizer_step=sdk.wait_staged, finish=sdk.wait)
    out["steps_torch.save"] = run_steps(model, optim, 20, 5, lambda n: torch_save(n))
    out["steps_dcp.async_save"] = run_steps(model, optim, 20, 5, lambda n: dcp_async(100 + n), finish=async_wait)
    windows = []
    for _ in range(3):
        t0 = time.perf_counter()
        forward_backward(model)
        windows.append(time.perf_counter() - t0)
    optim.zero_grad(set_to_none=True)
    out["fwd_bwd"] = statistics.median(windows)

    # Write bandwidth: one complete save of ours (copy + write + manifest) against a plain file copy.
    t0 = time.perf_counter()
    ckpt.save(100, model, optim, train={"samplesConsumed": 0}, rng=device.rng_state(), blocking=True)
    ours_write = time.perf_counter() - t0
    written = sum(f.stat().st_size for f in step_dir(root / "ours", 100).iterdir())
    t0 = time.perf_counter()
    shutil.copyfile(root / "torch.pt", root / "copy.pt")
    with open(root / "copy.pt", "rb+") as f:
        os.fsync(f.fileno())
    copy_seconds = time.perf_counter() - t0
    out["ours_MBps"] = written / ours_write / 1e6
    out["copy_MBps"] = (root / "copy.pt").stat().st_size / copy_seconds / 1e6

    # Restore: DCP into the live objects (any world size) against torch.load + load_state_dict.
    t0 = time.perf_counter()
    ckpt.load(inspect(step_dir(root / "ours", 100), 100), model, optim)
    out["restore_ours"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    saved = torch.load(root / "torch.pt", weights_only=True)
    model.load_state_dict(saved["model"])
    optim.load_state_dict(saved["optim"])
    out["restore_torch.load"] = time.perf_counter() - t0
    del saved
    print(f"  restore: ours {out['restore_ours']:.3f} s, torch.load {out['restore_torch.load']:.3f} s", flush=True)
    return out


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable"))


def report(size: str, r: dict[str, float]) -> None:
    ours = r["ours"]
    print(
        f"RESULT {size}: state {r['bytes'] / 1e6:.0f} MB | loop stall per checkpoint: ours {ours:.3f} s, "
        f"torch.save {r['torch.save']:.3f} s ({r['torch.save'] / ours:.1f}x ours), "
        f"dcp.save {r['dcp.save']:.3f} s ({r['dcp.save'] / ours:.1f}x), "
        f"dcp.async_save {r['dcp.async_save']:.3f} s ({r['dcp.async_save'] / ours:.1f}x), "
        f"tandem.sdk {r['sdk']:.3f} s ({r['sdk'] / ours:.1f}x) "
        f"(our host copy {r['ours_copy']:.3f} s ran behind a {r['fwd_bwd']:.3f} s forward/backward) "
        f"| restore: ours {r['restore_ours']:.3f} s vs torch.load {r['restore_torch.load']:.3f} s "
        f"({r['restore_ours'] / r['restore_torch.load']:.2f}x) "
        f"| write {r['ours_MBps']:.0f} MB/s vs file copy {r['copy_MBps']:.0f} MB/s "
        f"({r['ours_MBps'] / r['copy_MBps']:.2f}x of the disk)",
        flush=True,
    )
    plain = r["steps_plain"]
    costs = ", ".join(f"{name} {r[f'steps_{name}']:.2f} s ({r[f'steps_{name}'] / plain:.2f}x)"
                      for name in ("sdk", "torch.save", "dcp.async_save"))
    print(f"RESULT {size}: 20 steps with a checkpoint every 5th vs without ({plain:.2f} s): {costs}", flush=True)


def setup(doc: str | None, sizes: list[str]) -> argparse.Namespace:
    """The checkpoint benchmarks' common command line (--sizes, --repeats, --dir) and process set-up."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=sizes)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    warnings.filterwarnings("ignore", message="torch.distributed is disabled")
    logs.configure()
    return args


def main() -> None:
    args = setup(__doc__, ["100MB", "1GB", "4GB"])
    for size in args.sizes:
        nbytes = parse_size(size)
        available = mem_available()
        # state + our staging copy + async_save's staging copy + torch.load's copy, with headroom
        if 5 * nbytes > available:
            print(f"SKIP {size}: needs ~{5 * nbytes / 1e9:.0f} GB of memory, {available / 1e9:.0f} GB available")
            continue
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="tandem-bench-") as tmp:
            report(size, bench_size(nbytes, args.repeats, Path(tmp)))


if __name__ == "__main__":
    main()
