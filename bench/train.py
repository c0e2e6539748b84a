"""Training throughput: tokens/s (and MFU where the device has a known peak) of the runtime's model.

In one run, for each model: the runtime's decoder (ops through `tandem.kernels`) against the same
architecture and weights in plain PyTorch (torch.nn.functional ops, full logits + cross-entropy),
one optimizer step at a time with a progress line per step; then (CPU) the test model end to end
through the real `tandem-train` launcher (data loader, FSDP2 over gloo, metrics) at 1 and 2 ranks.

    .venv/bin/python bench/train.py [--models test 100m] [--device cpu|cuda] [--steps 5] [--no-e2e]
On a GPU: --device cuda --models 1b (bf16 autocast).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F

from tandem.kernels import reference
from tandem.kernels.op_attention import sdpa_attention
from tandem.runtime import ops
from tandem.runtime.config import PRESETS
from tandem.runtime.model import Decoder, flops_per_token, parameter_count

SHAPES = {"test": (8, 64), "100m": (2, 128), "1b": (8, 2048)}  # (batch, seq_len) per step
PEAK = {"cuda": 989e12}


# Where tandem.kernels' own plain-torch definitions are the same math, the baseline uses them; its
# rms_norm and cross-entropy stay torch.nn.functional's (full logits), which the references are not.
PLAIN = {
    "rms_norm": lambda x, w, eps: F.rms_norm(x, (x.shape[-1],), w, eps),
    "swiglu": reference.swiglu,
    "apply_rope": reference.apply_rope,
    "attention": sdpa_attention,  # causal by default, GQA when kv heads are fewer
    "linear_cross_entropy": lambda h, w, t: F.cross_entropy((h @ w.t()).float(), t),
}


@contextlib.contextmanager
def plain_pytorch() -> Iterator[None]:
    """The same model object with every op swapped for plain torch (the baseline)."""
    saved = {name: getattr(ops, name) for name in PLAIN}
    for name, fn in PLAIN.items():
        setattr(ops, name, fn)
    try:
        yield
    finally:
        for name, fn in saved.items():
            setattr(ops, name, fn)


def one_step(model: Decoder, optim: torch.optim.Optimizer, tokens: torch.Tensor, device: str) -> tuple[float, float]:
    dtype = torch.bfloat16 if device == "cuda" else None
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    with torch.autocast(device, dtype=dtype, enabled=dtype is not None):
        loss = model(tokens[:, :-1], tokens[:, 1:])
    loss.backward()
    optim.step()
    optim.zero_grad(set_to_none=True)
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - t0, loss.item()


def measure(name: str, size: Any, batch: int, seq: int, steps: int, device: str) -> tuple[float, float]:
    """Median tokens/s of ours and of plain PyTorch, steps interleaved so that noise from other
    processes on the machine hits both alike; each variant trains its own copy of the same weights."""
    torch.manual_seed(0)
    models = {"runtime (kernels)": Decoder(size).to(device)}
    models["plain PyTorch"] = Decoder(size).to(device)
    models["plain PyTorch"].load_state_dict(models["runtime (kernels)"].state_dict())
    optims = {k: torch.optim.AdamW(m.parameters(), lr=1e-4) for k, m in models.items()}
    tokens = torch.randint(0, size.vocab, (batch, seq + 1), device=device)
    times: dict[str, list[float]] = {k: [] for k in models}
    for step in range(steps + 1):  # step 0 warms up (allocator, kernels)
        for label, model in models.items():
            context = plain_pytorch() if label == "plain PyTorch" else contextlib.nullcontext()
            with context:
                seconds, loss = one_step(model, optims[label], tokens, device)
            if step:
                times[label].append(seconds)
            print(f"  {name:<5} {label:<18} step {step}/{steps}: {batch * seq / seconds:9.1f} tokens/s "
                  f"loss {loss:.4f}{' (warm-up)' if not step else ''}", flush=True)  # fmt: skip
    return tuple(batch * seq / statistics.median(times[k]) for k in models)  # type: ignore[return-value]


def bench_model(name: str, steps: int, device: str) -> dict[str, Any]:
    size = PRESETS[name]
    batch, seq = SHAPES[name]
    print(f"== {name}: {parameter_count(size) / 1e6:.1f} M params, batch {batch} x seq {seq} on {device}", flush=True)
    # The test model's steps take milliseconds: many more of them, or the noise of the machine decides.
    ours, plain = measure(name, size, batch, seq, steps * 10 if name == "test" else steps, device)
    out = {"model": name, "params": parameter_count(size), "ours": ours, "plain": plain}
    if device in PEAK:
        fpt = flops_per_token(size, seq)
        out["mfu_ours"], out["mfu_plain"] = ours * fpt / PEAK[device], plain * fpt / PEAK[device]
    mfu = f" | MFU {out['mfu_ours']:.3f} vs {out['mfu_plain']:.3f}" if "mfu_ours" in out else ""
    print(f"RESULT {name}: runtime {ours:.1f} tokens/s vs plain PyTorch {plain:.1f} tokens/s "
          f"({ours / plain:.2f}x){mfu}", flush=True)  # fmt: skip
    return out


def _free_port() -> int:
    """A port free on localhost now, for the launcher's rendezvous (closed before the launcher binds it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def end_to_end(world: int, steps: int) -> float:
    """tokens/s of the test model through the real launcher (median over the logged steps)."""
    with tempfile.TemporaryDirectory(prefix="tandem-bench-e2e-") as tmp:
        port = _free_port()
        training = {"steps": steps, "globalBatch": 8, "seqLen": 64, "data": {"maxBytes": 1_000_000},
                    "metrics": {"port": 0, "logEverySteps": 1}}  # fmt: skip
        env = {
            **os.environ, "TANDEM_DEVICES_PER_NODE": str(world), "TANDEM_CHECKPOINT_DIR": tmp,
            "TANDEM_CHECKPOINT_INTERVAL_STEPS": str(steps), "MASTER_PORT": str(port),
            "TANDEM_TERMINATION_LOG": f"{tmp}/termination", "TANDEM_TRAINING_CONFIG": json.dumps(training),
        }  # fmt: skip
        proc = subprocess.run([sys.executable, "-m", "tandem.runtime.launcher"], env=env, capture_output=True,
                              text=True, timeout=600)  # fmt: skip
        rates = [float(m) for m in re.findall(r"event='step' step=\d+ loss='[^']*' tokens_per_s=([\d.]+)", proc.stdout)]
        assert proc.returncode == 0 and rates, proc.stdout[-2000:] + proc.stderr[-2000:]
        rate = statistics.median(rates[1:] or rates)
        print(f"  tandem-train test model, {world} rank(s): {len(rates)} steps, median {rate:.0f} tokens/s",
              flush=True)  # fmt: skip
        return rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["test", "100m"], choices=sorted(PRESETS))
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--no-e2e", action="store_true")
    args = parser.parse_args()
    if args.device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
        print("note: CPU run; MFU needs a device with a known peak (use --device cuda on a GPU)")
    for name in args.models:
        bench_model(name, args.steps, args.device)
    if not args.no_e2e and args.device == "cpu":
        e2e = {world: end_to_end(world, 30) for world in (1, 2)}
        print(f"RESULT e2e test model: tandem-train {e2e[1]:.0f} tokens/s at 1 rank, {e2e[2]:.0f} at 2 ranks "
              f"(2 ranks / 1 rank = {e2e[2] / e2e[1]:.2f}x on {os.cpu_count()} cores)", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
