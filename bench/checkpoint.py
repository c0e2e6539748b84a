"""Checkpoint benchmark: the whole cost of a checkpoint to the training loop, how soon it is durable, restore, write.

For each size of model+optimizer state (fp32 parameters + two AdamW moments), in one process and one run, it
trains a stack of square layers with three ways to checkpoint, each against steps without checkpoints taken
right before it:
  ours            runtime/checkpoint.py's Checkpointer: the host copy runs behind the next forward/backward
                  (`wait_staged` before its optimizer step), the write, checksums and commit in a thread
  torch.save      model and optimizer state dicts to a file, fsync'd and renamed into place (blocking)
  dcp.async_save  torch.distributed.checkpoint.async_save (its default stager: a fresh host copy per checkpoint,
                  taken before it returns; the write in a thread)

Per method: `--repeats` intervals of `--interval` steps with a checkpoint at the start of each, each interval
after `--interval` steps without one, the methods taking turns interval by interval (after one warm-up interval
each, not measured). Each interval's time runs until its checkpoint is durable (what the next save would wait
for), so the background write's competition for the CPU is counted.
  without    median seconds of a training step without checkpoints
  with       mean seconds of a step across the intervals with checkpoints
  overhead   what one checkpoint costs, in steps: (with - without) * interval / without
  durable    seconds from the save call until the checkpoint is on storage and committed (ours: the thread's
             commit; torch.save: its blocking time; async_save: until its future resolves)
  stall      seconds the loop is blocked per checkpoint (save call + wait before the next optimizer step): the
             visible slice of the overhead only
Then one blocking save of ours against a plain fsync'd file copy of the same size (write bandwidth), and restore:
ours (DCP load into the live model and optimizer) against torch.load + load_state_dict.
Each size prints the ratios, then `RESULT <size> <json>` with every number.

    .venv/bin/python -P bench/checkpoint.py --sizes 100MB 1GB --repeats 3 [--interval 10] [--dir /tmp/tandem-bench]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import get_state_dict

from tandem.runtime import logs
from tandem.runtime.checkpoint import Checkpointer
from tandem.runtime.ckpt_layout import inspect, step_dir
from tandem.runtime.device import load_device_layer

UNITS = {"MB": 10**6, "GB": 10**9}
METHODS = ("ours", "torch.save", "dcp.async_save")


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


def train_step(model: torch.nn.Module, optim: torch.optim.Optimizer,
               before_optimizer_step: Callable[[], Any] = lambda: 0) -> None:
    forward_backward(model)
    before_optimizer_step()
    optim.step()
    optim.zero_grad(set_to_none=True)


def state_nbytes(model: torch.nn.Module, optim: torch.optim.Optimizer) -> int:
    model_sd, optim_sd = get_state_dict(model, optim)
    tensors = list(model_sd.values()) + [t for s in optim_sd["state"].values() for t in s.values()]
    return sum(t.numel() * t.element_size() for t in tensors if isinstance(t, torch.Tensor))


@dataclass
class Method:
    """One way to checkpoint, as a training loop drives it: one checkpoint in flight at a time."""

    name: str
    start: Callable[[int], None]  # start checkpoint `step`; returns when the loop may go on
    wait_durable: Callable[[], None] = lambda: None  # block until the pending checkpoint is durable
    durable: Callable[[], float] = lambda: 0.0  # of the latest durable one: seconds from its save call
    before_optimizer_step: Callable[[], Any] = lambda: 0  # what the next optimizer step must wait for
    pending: bool = False
    durables: list[float] = field(default_factory=list)

    def save(self, step: int) -> None:
        self.finish()
        self.start(step)
        self.pending = True

    def finish(self) -> None:
        if self.pending:
            self.wait_durable()
            self.durables.append(self.durable())
            self.pending = False


def ours(name: str, model: torch.nn.Module, optim: torch.optim.Optimizer, ckpt: Checkpointer) -> Method:
    rng = ckpt.device.rng_state()
    return Method(name, lambda n: ckpt.save(n, model, optim, train={"samplesConsumed": n}, rng=rng, blocking=False),
                  ckpt.wait, lambda: ckpt.durable_seconds, before_optimizer_step=ckpt.wait_staged)


def methods(model: torch.nn.Module, optim: torch.optim.Optimizer, root: Path, ckpt: Checkpointer) -> list[Method]:

    blocked = [0.0]

    def torch_save(n: int) -> None:
        started = time.perf_counter()
        torch.save({"model": model.state_dict(), "optim": optim.state_dict()}, root / "torch.pt.tmp")
        fd = os.open(root / "torch.pt.tmp", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(root / "torch.pt.tmp", root / "torch.pt")
        blocked[0] = time.perf_counter() - started

    futures: list[Future[Any]] = []
    called, done = [0.0], [0.0]

    def async_save(n: int) -> None:
        called[0] = time.perf_counter()
        model_sd, optim_sd = get_state_dict(model, optim)
        future = dcp.async_save({"model": model_sd, "optim": optim_sd}, checkpoint_id=str(root / f"dcp-{n % 2}"))
        assert isinstance(future, Future)
        future.add_done_callback(lambda _: done.__setitem__(0, time.perf_counter()))
        futures.append(future)

    return [
        ours("ours", model, optim, ckpt),
        Method("torch.save", torch_save, durable=lambda: blocked[0]),
        Method("dcp.async_save", async_save, lambda: futures.pop().result() and None, lambda: done[0] - called[0]),
    ]


def plain_steps(model: torch.nn.Module, optim: torch.optim.Optimizer, steps: int) -> list[float]:
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        train_step(model, optim)
        times.append(time.perf_counter() - t0)
    return times


def checkpointed_interval(method: Method, model: torch.nn.Module, optim: torch.optim.Optimizer, interval: int,
                          step: int) -> tuple[float, float]:
    """Seconds for a checkpoint and the `interval` steps after it, until it is durable; and the loop's stall."""
    t0 = time.perf_counter()
    method.save(step)
    stall = time.perf_counter() - t0
    forward_backward(model)  # the next step's compute: an asynchronous host copy runs behind it
    t1 = time.perf_counter()
    method.before_optimizer_step()
    stall += time.perf_counter() - t1
    optim.step()
    optim.zero_grad(set_to_none=True)
    for _ in range(interval - 1):
        train_step(model, optim, method.before_optimizer_step)
    method.finish()  # what is left of the write: the next save would wait for it
    return time.perf_counter() - t0, stall


def measure(methods: list[Method], model: torch.nn.Module, optim: torch.optim.Optimizer, interval: int,
            intervals: int) -> dict[str, dict[str, float]]:
    """Each method's numbers over `intervals` intervals of `interval` steps with a checkpoint at the start of each,
    each after `interval` steps without one; the methods take turns, interval by interval, so that all of them see
    the same machine (other load, page cache, the allocator's state: a fresh host copy freed by one changes how fast
    the next steps of every method allocate)."""
    step = 0
    for method in methods:  # warm-up: one-time allocations, threads, folders
        step += 1
        checkpointed_interval(method, model, optim, interval, step)
        method.durables.clear()
    plain: dict[str, list[float]] = {method.name: [] for method in methods}
    spans: dict[str, list[float]] = {method.name: [] for method in methods}
    stalls: dict[str, list[float]] = {method.name: [] for method in methods}
    for _ in range(intervals):
        for method in methods:
            step += 1
            plain[method.name] += plain_steps(model, optim, interval)
            span, stall = checkpointed_interval(method, model, optim, interval, step)
            spans[method.name].append(span)
            stalls[method.name].append(stall)
    out = {}
    for method in methods:
        without, with_ = statistics.median(plain[method.name]), sum(spans[method.name]) / (intervals * interval)
        out[method.name] = {
            "without": without, "without_mean": statistics.mean(plain[method.name]), "with": with_,
            "overhead_steps": (with_ - without) * interval / without, "durable": statistics.median(method.durables),
            "stall": statistics.median(stalls[method.name])}
        print(f"  {method.name:<15} step {without:.4f} s without, {with_:.4f} s with a checkpoint every {interval} "
              f"steps: {out[method.name]['overhead_steps']:+.2f} steps per checkpoint, durable after "
              f"{out[method.name]['durable']:.3f} s (loop stalled {out[method.name]['stall']:.4f} s)", flush=True)
    return out


def bench_size(size: int, repeats: int, interval: int, root: Path) -> dict[str, Any]:
    model, optim = build(size)
    nbytes = state_nbytes(model, optim)
    params = sum(p.numel() for p in model.parameters())
    print(f"== state {nbytes / 1e6:.0f} MB ({params / 1e6:.1f} M params)", flush=True)
    out: dict[str, Any] = {"bytes": nbytes, "interval": interval, "checkpoints": repeats}
    device = load_device_layer("cpu", "gloo", 0, 1)
    ckpt = Checkpointer(root / "ours", rank=0, keep=2, device=device, process_group=None,
                        manifest_extra={"worldSize": 1})
    out.update(measure(methods(model, optim, root, ckpt), model, optim, interval, repeats))
    out["ours"]["copy"] = ckpt.copy_seconds  # the host copy that ran behind a forward/backward
    windows = []
    for _ in range(3):
        t0 = time.perf_counter()
        forward_backward(model)
        windows.append(time.perf_counter() - t0)
    optim.zero_grad(set_to_none=True)
    out["fwd_bwd"] = statistics.median(windows)

    # Write bandwidth: one complete blocking save of ours (copy + write + checksums + commit) vs a file copy.
    step = 10**6
    t0 = time.perf_counter()
    ckpt.save(step, model, optim, train={"samplesConsumed": 0}, rng=device.rng_state(), blocking=True)
    ours_write = time.perf_counter() - t0
    written = sum(f.stat().st_size for f in step_dir(root / "ours", step).iterdir())
    t0 = time.perf_counter()
    shutil.copyfile(root / "torch.pt", root / "copy.pt")
    with open(root / "copy.pt", "rb+") as f:
        os.fsync(f.fileno())
    copy_seconds = time.perf_counter() - t0
    out["write_MBps"] = {"ours": written / ours_write / 1e6,
                         "file_copy": (root / "copy.pt").stat().st_size / copy_seconds / 1e6}

    # Restore: DCP into the live objects (any world size) against torch.load + load_state_dict.
    t0 = time.perf_counter()
    ckpt.load(inspect(step_dir(root / "ours", step), step), model, optim)
    restore_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    saved = torch.load(root / "torch.pt", weights_only=True)
    model.load_state_dict(saved["model"])
    optim.load_state_dict(saved["optim"])
    out["restore"] = {"ours": restore_ours, "torch.load": time.perf_counter() - t0}
    return out


def mem_available() -> int:
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable"))


def times(value: float, ours: float) -> str:
    return f"{value / ours:.1f}x ours" if ours > 0 else "ours <= 0"


def report(size: str, r: dict[str, Any]) -> None:
    ours = r["ours"]
    parts = [f"ours {ours['overhead_steps']:+.2f} steps, durable after {ours['durable']:.3f} s"]
    for name in METHODS[1:]:
        m = r[name]
        parts.append(f"{name} {m['overhead_steps']:+.2f} steps ({times(m['overhead_steps'], ours['overhead_steps'])})"
                     f", durable after {m['durable']:.3f} s ({times(m['durable'], ours['durable'])})")
    print(f"{size}: state {r['bytes'] / 1e6:.0f} MB, a step {ours['without']:.4f} s; what one checkpoint every "
          f"{r['interval']} steps costs: " + "; ".join(parts), flush=True)
    stalls = ", ".join(f"{name} {r[name]['stall']:.4f} s" for name in METHODS)
    restore, write = r["restore"], r["write_MBps"]
    print(f"{size}: loop stall per checkpoint (a slice of the cost only): {stalls} (our host copy "
          f"{ours['copy']:.3f} s ran behind a {r['fwd_bwd']:.3f} s forward/backward) | restore: ours "
          f"{restore['ours']:.3f} s vs torch.load {restore['torch.load']:.3f} s "
          f"({restore['ours'] / restore['torch.load']:.2f}x) | write {write['ours']:.0f} MB/s vs file copy "
          f"{write['file_copy']:.0f} MB/s ({write['ours'] / write['file_copy']:.2f}x of the disk)", flush=True)
    print(f"RESULT {size} {json.dumps(r, sort_keys=True)}", flush=True)


def setup(doc: str | None, sizes: list[str],
          configure: Callable[[argparse.ArgumentParser], None] = lambda parser: None) -> argparse.Namespace:
    """The checkpoint benchmarks' common command line (--sizes, --repeats, --dir) and process set-up."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=sizes)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary folder)")
    configure(parser)
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 1)
    warnings.filterwarnings("ignore", message="torch.distributed is disabled")
    logs.configure()
    return args


def main() -> None:
    args = setup(__doc__, ["100MB", "1GB", "4GB"],
                 lambda parser: parser.add_argument("--interval", type=int, default=10, help="steps per checkpoint"))
    for size in args.sizes:
        nbytes = parse_size(size)
        available = mem_available()
        # state + our staging copy + async_save's staging copy + torch.load's copy, with headroom
        if 5 * nbytes > available:
            print(f"SKIP {size}: needs ~{5 * nbytes / 1e9:.0f} GB of memory, {available / 1e9:.0f} GB available")
            continue
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="tandem-bench-") as tmp:
            report(size, bench_size(nbytes, args.repeats, args.interval, Path(tmp)))


if __name__ == "__main__":
    main()
