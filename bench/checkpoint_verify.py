"""What checkpoint verification costs: the checksums on save, the full verification on load.

For each size of model+optimizer state (fp32 weights + two AdamW moments), in one process and one run:
  save   a complete blocking save of the runtime's Checkpointer with checksums (ours) against the same
         save with the checksum function replaced by a constant (baseline), alternated, median of N
  load   verification of every file of the checkpoint (recovery.intact_problem: reads every byte) against
         the DCP load into the live model and optimizer that follows it, median of N
Files are in the page cache when verified (just written), as they are on a node that saved them; a
cold read from network storage costs the volume's read bandwidth on top (the DCP load pays it too).

    .venv/bin/python bench/checkpoint_verify.py --sizes 100MB 1GB [--repeats 3] [--dir /tmp]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from tandem.runtime import ckpt_layout, recovery, verify
from tandem.runtime.checkpoint import Checkpointer
from tandem.runtime.device import load_device_layer

sys.path.insert(0, str(Path(__file__).resolve().parent))  # PYTHONSAFEPATH: bench/ is not on the path
from checkpoint import build, parse_size, setup, state_nbytes  # bench/checkpoint.py


def timed_save(ckpt: Checkpointer, step: int, model: torch.nn.Module, optim: torch.optim.Optimizer) -> float:
    started = time.perf_counter()
    ckpt.save(step, model, optim, train={"samplesConsumed": 0, "loss": 1.0}, rng={}, blocking=True)
    return time.perf_counter() - started


def bench_size(size: int, repeats: int, root: Path) -> dict[str, float]:
    model, optim = build(size)
    device = load_device_layer("cpu", "gloo", 0, 1)
    ckpt = Checkpointer(root, rank=0, keep=2, device=device, process_group=None, manifest_extra={"worldSize": 1})
    real = verify.file_checksum
    ours, base, loads, checks = [], [], [], []
    step = 0
    for _ in range(repeats):
        step += 1
        ours.append(timed_save(ckpt, step, model, optim))
        verify.file_checksum = lambda path: "00000000"  # type: ignore[assignment]
        try:
            step += 1
            base.append(timed_save(ckpt, step, model, optim))
        finally:
            verify.file_checksum = real  # type: ignore[assignment]
        entry = ckpt_layout.inspect(ckpt_layout.step_dir(root, step - 1), step - 1)
        t0 = time.perf_counter()
        assert recovery.intact_problem(entry) is None
        checks.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        ckpt.load(entry, model, optim)
        loads.append(time.perf_counter() - t0)
    m = statistics.median
    out = {"bytes": state_nbytes(model, optim), "save": m(ours), "save_base": m(base), "verify": m(checks),
           "load": m(loads)}  # fmt: skip
    out["written"] = sum(p.stat().st_size for p in ckpt_layout.step_dir(root, step - 1).iterdir())
    return out


def report(size: str, r: dict[str, float]) -> None:
    save_share = (r["save"] - r["save_base"]) / r["save"]
    load_share = r["verify"] / (r["verify"] + r["load"])
    print(
        f"RESULT {size}: state {r['bytes'] / 1e6:.0f} MB, {r['written'] / 1e6:.0f} MB on disk | save with checksums "
        f"{r['save']:.3f} s vs without {r['save_base']:.3f} s ({r['save'] / r['save_base']:.2f}x; checksums "
        f"{100 * save_share:.1f}% of the save) | load: verify {r['verify']:.3f} s "
        f"({r['written'] / r['verify'] / 1e9:.1f} GB/s) + DCP load {r['load']:.3f} s "
        f"(verification {100 * load_share:.1f}% of the load)",
        flush=True,
    )


def main() -> None:
    args = setup(__doc__, ["100MB", "1GB"])
    for size in args.sizes:
        with tempfile.TemporaryDirectory(dir=args.dir, prefix="tandem-verify-") as tmp:
            report(size, bench_size(parse_size(size), args.repeats, Path(tmp)))


if __name__ == "__main__":
    main()
