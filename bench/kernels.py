"""Kernel benchmark: ours vs the eager reference vs torch.compile of the reference, per op.

For each op, forward and forward+backward: median time and peak memory, printed as ratios against
the baselines measured in the same run, and the achieved bandwidth (memory-bound ops) or
arithmetic rate (the fused cross-entropy and attention) against the device's measured copy
bandwidth / matmul rate. Llama-8B-like shapes on a GPU; reduced shapes on a CPU (there "ours" is
the plain-torch path the dispatcher picks for CPU tensors).

    python bench/kernels.py [--device cuda|cpu] [--quick] [--ops rms_norm,swiglu] [--no-compile]
    python bench/kernels.py --interpret-check     # Triton kernels under TRITON_INTERPRET=1 vs reference
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch

from tandem.kernels.testing import PeakMemory, relative_error, use_triton_interpreter


@dataclass(frozen=True)
class Shapes:
    batch: int
    seq: int
    dim: int
    heads: int
    kv_heads: int
    ffn: int
    vocab: int

    @property
    def tokens(self) -> int:
        return self.batch * self.seq

    @property
    def head_dim(self) -> int:
        return self.dim // self.heads


LLAMA_8B = Shapes(batch=2, seq=4096, dim=4096, heads=32, kv_heads=8, ffn=14336, vocab=128256)
CPU = Shapes(batch=1, seq=512, dim=512, heads=8, kv_heads=2, ffn=1792, vocab=8192)
QUICK = Shapes(batch=1, seq=128, dim=128, heads=4, kv_heads=2, ffn=384, vocab=1024)


@dataclass
class Case:
    """One op at one size: how to build inputs, the three callables, and the work it must do."""

    op: str
    make: Callable[[], list[torch.Tensor]]  # fresh leaves (those that train require grad)
    ours: Callable[..., torch.Tensor]
    reference: Callable[..., torch.Tensor]
    bytes_fwd: int  # fewest bytes a forward must move: inputs read once, outputs written once
    bytes_bwd: int
    flops_fwd: float = 0.0  # matmul-bound ops: judged by arithmetic rate instead of bytes
    flops_bwd: float = 0.0
    results: dict[str, Any] = field(default_factory=dict)


def cases(s: Shapes, device: torch.device, dtype: torch.dtype) -> list[Case]:
    from tandem import kernels as K
    from tandem.kernels import reference as R

    es = torch.tensor([], dtype=dtype).element_size()
    n, d, f, v, hd = s.tokens, s.dim, s.ffn, s.vocab, s.head_dim

    def t(*shape: int, grad: bool = True, scale: float = 1.0) -> torch.Tensor:
        return (torch.randn(shape, device=device, dtype=torch.float32) * scale).to(dtype).requires_grad_(grad)

    def tables() -> tuple[torch.Tensor, torch.Tensor]:
        inv = 1.0 / (10000 ** (torch.arange(0, hd, 2, device=device).float() / hd))
        ang = torch.outer(torch.arange(s.seq, device=device).float(), inv)
        emb = torch.cat((ang, ang), -1)
        return emb.cos(), emb.sin()

    cos, sin = tables()
    target = torch.randint(0, v, (n,), device=device)
    q_numel = n * s.heads * hd
    kv_numel = n * s.kv_heads * hd
    attn_flops = 4 * s.batch * s.heads * s.seq * s.seq * hd / 2  # causal: half the score matrix
    return [
        Case(
            "rms_norm",
            lambda: [t(n, d), t(d)],
            K.rms_norm,
            R.rms_norm,
            (2 * n * d + d) * es,
            (3 * n * d + d) * es,
        ),
        Case("swiglu", lambda: [t(n, f), t(n, f)], K.swiglu, R.swiglu, 3 * n * f * es, 5 * n * f * es),
        Case(
            "apply_rope",
            lambda: [t(s.batch, s.seq, s.heads, hd)],
            lambda x: K.apply_rope(x, cos, sin),
            lambda x: R.apply_rope(x, cos, sin),
            2 * q_numel * es,
            2 * q_numel * es,
        ),
        Case(
            "fused_linear_cross_entropy",
            lambda: [t(n, d, scale=d**-0.25), t(v, d, scale=d**-0.25)],
            lambda h, w: K.fused_linear_cross_entropy(h, w, target),
            lambda h, w: R.fused_linear_cross_entropy(h, w, target),
            (n * d + v * d) * es,
            (n * d + v * d) * es,
            flops_fwd=2.0 * n * d * v,
            flops_bwd=4.0 * n * d * v,
        ),
        Case(
            "attention",
            lambda: [
                t(s.batch, s.seq, s.heads, hd),
                t(s.batch, s.seq, s.kv_heads, hd),
                t(s.batch, s.seq, s.kv_heads, hd),
            ],
            K.attention,
            R.attention,
            (2 * q_numel + 2 * kv_numel) * es,
            (3 * q_numel + 4 * kv_numel) * es,
            flops_fwd=attn_flops,
            flops_bwd=2.5 * attn_flops,
        ),
    ]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def run_once(fn: Callable[..., torch.Tensor], leaves: list[torch.Tensor], backward: bool) -> torch.Tensor:
    """One call of fn (and its backward): its output, which timing callers ignore."""
    for leaf in leaves:
        leaf.grad = None
    out = fn(*leaves)
    if backward:
        out.backward(torch.ones_like(out))
    return out


def timings_ms(
    fn: Callable[..., torch.Tensor],
    leaves: list[torch.Tensor],
    backward: bool,
    device: torch.device,
    repeat: int,
    warmup: int = 2,
) -> tuple[float, float]:
    """(median, min) of ``repeat`` timed runs: on a shared machine the minimum is the steadier one."""
    for _ in range(warmup):
        run_once(fn, leaves, backward)
    sync(device)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        run_once(fn, leaves, backward)
        sync(device)
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), min(times)


def median_ms(
    fn: Callable[..., torch.Tensor],
    leaves: list[torch.Tensor],
    backward: bool,
    device: torch.device,
    repeat: int,
) -> float:
    return timings_ms(fn, leaves, backward, device, repeat)[0]


def peak_bytes(
    fn: Callable[..., torch.Tensor],
    leaves: list[torch.Tensor],
    backward: bool,
    device: torch.device,
    compiled: bool,
) -> float | None:
    """Peak bytes allocated above what existed before the call (None where it cannot be counted)."""
    run_once(fn, leaves, backward)  # leaves' .grad exist before counting, for every implementation alike
    if device.type == "cuda":
        sync(device)
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        run_once(fn, leaves, backward)
        sync(device)
        return float(torch.cuda.max_memory_allocated(device) - base)
    if compiled:
        return None  # inductor's CPU code allocates below the dispatcher, where the meter cannot see
    with PeakMemory() as meter:
        run_once(fn, leaves, backward)
    return float(meter.peak)


def copy_bandwidth(device: torch.device) -> float:
    """Bytes per second of a large device copy, counting bytes read plus bytes written."""
    numel = (256 if device.type == "cuda" else 32) * 2**20 // 4
    src, dst = torch.randn(numel, device=device), torch.empty(numel, device=device)
    ms = median_ms(lambda a: dst.copy_(a), [src], False, device, repeat=10)
    return 2 * numel * 4 / (ms / 1e3)


def matmul_rate(device: torch.device, dtype: torch.dtype) -> float:
    size = 8192 if device.type == "cuda" else 1024
    a, b = torch.randn(size, size, device=device).to(dtype), torch.randn(size, size, device=device).to(dtype)
    ms = median_ms(lambda x: x @ b, [a], False, device, repeat=5)
    return 2 * size**3 / (ms / 1e3)


def bench(args: argparse.Namespace) -> list[dict[str, Any]]:
    device = torch.device(args.device)
    if device.type == "cpu":
        torch.set_num_threads(args.threads)
    dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
    shapes = QUICK if args.quick else (LLAMA_8B if device.type == "cuda" else CPU)
    torch.manual_seed(0)
    copy_bw, mm_rate = copy_bandwidth(device), matmul_rate(device, dtype)
    print(
        f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'cpu'}), "
        f"{dtype}, {shapes}, copy {copy_bw / 1e9:.1f} GB/s, matmul {mm_rate / 1e12:.2f} TFLOP/s",
        flush=True,
    )
    selected = [c for c in cases(shapes, device, dtype) if not args.ops or c.op in args.ops.split(",")]
    impls = ["ours", "eager"] + ([] if args.no_compile else ["compiled"])
    total, done, rows = len(selected) * 2 * len(impls), 0, []
    for case in selected:
        compiled_ref = torch.compile(case.reference, dynamic=False)
        for backward in (False, True):
            row: dict[str, Any] = {"op": case.op, "pass": "fwd+bwd" if backward else "fwd"}
            for impl in impls:
                done += 1
                fn = {"ours": case.ours, "eager": case.reference, "compiled": compiled_ref}[impl]
                leaves = case.make()
                ms, fastest = timings_ms(fn, leaves, backward, device, args.repeat)
                mem = peak_bytes(fn, leaves, backward, device, impl == "compiled")
                row[f"{impl}_ms"], row[f"{impl}_min_ms"] = ms, fastest
                row[f"{impl}_peak_mb"] = None if mem is None else mem / 2**20
                mem_text = "n/a" if mem is None else f"{mem / 2**20:.1f} MiB"
                print(
                    f"[{done}/{total}] {case.op} {row['pass']} {impl}: median {ms:.3f} ms"
                    f" (min {fastest:.3f}), peak {mem_text}",
                    flush=True,
                )
                del leaves
            work_bytes = case.bytes_fwd + (case.bytes_bwd if backward else 0)
            flops = case.flops_fwd + (case.flops_bwd if backward else 0)
            seconds = row["ours_ms"] / 1e3
            row["ours_vs_ceiling"] = (
                (flops / seconds / mm_rate) if flops else (work_bytes / seconds / copy_bw)
            )
            row["ceiling"] = "matmul" if flops else "copy"
            rows.append(row)
    return rows


def ratio(a: float | None, b: float | None) -> str:
    return "n/a" if a is None or b in (None, 0) else f"{a / b:.2f}"


def print_table(rows: list[dict[str, Any]]) -> None:
    header = ["op", "pass", "ours ms", "t/eager", "t/compiled", "mem/eager", "mem/compiled", "of ceiling"]
    print(
        "\n"
        + "  ".join(f"{h:>12}" if i > 1 else f"{h:<27}"[: 27 if i == 0 else 8] for i, h in enumerate(header))
    )
    for r in rows:
        cells = [
            f"{r['ours_ms']:.3f}",
            ratio(r["ours_ms"], r["eager_ms"]),
            ratio(r["ours_ms"], r.get("compiled_ms")),
            ratio(r["ours_peak_mb"], r["eager_peak_mb"]),
            ratio(r["ours_peak_mb"], r.get("compiled_peak_mb")),
            f"{r['ours_vs_ceiling']:.1%} {r['ceiling']}",
        ]
        print(f"{r['op']:<27}  {r['pass']:<8}  " + "  ".join(f"{c:>12}" for c in cells))


def interpret_check() -> list[dict[str, Any]]:
    """Each Triton kernel under the interpreter against the reference: relative errors, fwd and grads."""
    import os

    use_triton_interpreter()
    os.environ["TANDEM_KERNELS"] = "triton"
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        for case in cases(QUICK_INTERP, torch.device("cpu"), dtype):
            if case.op == "attention":
                continue  # no Triton kernel of ours: SDPA is the CUDA path
            torch.manual_seed(0)
            leaves = case.make()
            out = run_once(case.ours, leaves, True)
            got = [out.detach()] + [leaf.grad.clone() for leaf in leaves]
            wide = [leaf.detach().double().requires_grad_() for leaf in leaves]
            out = run_once(case.reference, wide, True)
            want = [out.detach()] + [leaf.grad for leaf in wide]
            errors = [relative_error(a.double(), b.double()) for a, b in zip(got, want, strict=True)]
            finite = all(bool(torch.isfinite(a).all()) for a in got)
            rows.append(
                {
                    "op": case.op,
                    "dtype": str(dtype).removeprefix("torch."),
                    "fwd": errors[0],
                    "grads": max(errors[1:]),
                    "finite": finite,
                }
            )
            print(
                f"{case.op:<27} {rows[-1]['dtype']:<9} fwd {errors[0]:.2e}  grads {max(errors[1:]):.2e}"
                f"  {'finite' if finite else 'NON-FINITE'}",
                flush=True,
            )
    return rows


QUICK_INTERP = Shapes(batch=2, seq=16, dim=96, heads=4, kv_heads=2, ffn=160, vocab=1000)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--quick", action="store_true", help="smallest shapes")
    parser.add_argument("--ops", default="", help="comma-separated op names (default: all)")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument(
        "--threads", type=int, default=1, help="CPU threads (1: shared cores make OpenMP barriers stall)"
    )
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile of the reference")
    parser.add_argument("--interpret-check", action="store_true")
    parser.add_argument("--json", default="", help="also write the results here")
    args = parser.parse_args(argv)
    rows = interpret_check() if args.interpret_check else bench(args)
    if not args.interpret_check:
        print_table(rows)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
