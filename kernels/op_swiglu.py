"""SwiGLU, silu(gate) * up: reference, Triton kernel (own backward), torch_npu binding."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from tandem.kernels import _npu, _triton
from tandem.kernels._dispatch import KernelOp

tl: Any = None  # bound to triton.language when a kernel first launches (see _triton.LazyKernel)


def reference(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return F.silu(gate) * up


# --- Triton ---------------------------------------------------------------------------------
# Two-dimensional (rows x columns) with a row stride per tensor, so that gate and up taken as
# the two halves of one fused projection (non-contiguous views) are read in place, not copied.


@_triton.kernel
def _forward_kernel(G, U, Y, stride_g, stride_u, stride_y, n_cols, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    g = tl.load(G + row * stride_g + cols, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + row * stride_u + cols, mask=mask, other=0.0).to(tl.float32)
    y = g * tl.sigmoid(g) * u
    tl.store(Y + row * stride_y + cols, y.to(Y.dtype.element_ty), mask=mask)


@_triton.kernel
def _backward_kernel(
    DY, G, U, DG, DU, stride_dy, stride_g, stride_u, stride_dg, stride_du, n_cols, BLOCK: tl.constexpr
):
    # Recomputes sigmoid(gate) instead of saving silu(gate): one tensor less kept for backward.
    row = tl.program_id(0)
    cols = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)
    mask = cols < n_cols
    dy = tl.load(DY + row * stride_dy + cols, mask=mask, other=0.0).to(tl.float32)
    g = tl.load(G + row * stride_g + cols, mask=mask, other=0.0).to(tl.float32)
    u = tl.load(U + row * stride_u + cols, mask=mask, other=0.0).to(tl.float32)
    sig = tl.sigmoid(g)
    silu = g * sig
    dg = dy * u * sig * (1.0 + g * (1.0 - sig))
    tl.store(DG + row * stride_dg + cols, dg.to(DG.dtype.element_ty), mask=mask)
    tl.store(DU + row * stride_du + cols, (dy * silu).to(DU.dtype.element_ty), mask=mask)


def _rows_2d(t: torch.Tensor) -> torch.Tensor:
    t2 = t.reshape(-1, t.shape[-1])
    return t2 if t2.stride(-1) == 1 else t2.contiguous()


def _grid(n_rows: int, n_cols: int) -> tuple[tuple[int, int], int]:
    block = min(1024, _triton.next_power_of_2(n_cols))
    return (n_rows, -(-n_cols // block)), block


class _SwiGLUFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
        g2, u2 = _rows_2d(gate), _rows_2d(up)
        n_rows, n_cols = g2.shape
        y = torch.empty((n_rows, n_cols), dtype=gate.dtype, device=gate.device)
        grid, block = _grid(n_rows, n_cols)
        _forward_kernel[grid](g2, u2, y, g2.stride(0), u2.stride(0), y.stride(0), n_cols, BLOCK=block)
        ctx.save_for_backward(g2, u2)
        ctx.shape = gate.shape
        return y.view(gate.shape)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        g2, u2 = ctx.saved_tensors
        dy2 = _rows_2d(dy)
        n_rows, n_cols = g2.shape
        dg = torch.empty((n_rows, n_cols), dtype=g2.dtype, device=g2.device)
        du = torch.empty_like(dg)
        grid, block = _grid(n_rows, n_cols)
        _backward_kernel[grid](
            dy2,
            g2,
            u2,
            dg,
            du,
            dy2.stride(0),
            g2.stride(0),
            u2.stride(0),
            dg.stride(0),
            du.stride(0),
            n_cols,
            BLOCK=block,
        )
        return dg.view(ctx.shape), du.view(ctx.shape)


def triton_swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return _SwiGLUFn.apply(gate, up)


def triton_check(gate: torch.Tensor, up: torch.Tensor) -> str | None:
    if gate.shape != up.shape or gate.dtype != up.dtype:
        return "gate and up differ in shape or dtype (the kernel does not broadcast)"
    if gate.numel() == 0 or gate.dim() == 0:
        return "empty or scalar input"
    if gate.numel() >= 2**31:
        return "more than 2^31 elements (the kernel indexes in int32)"
    return None


# --- torch_npu ------------------------------------------------------------------------------

# Ascend/op-plugin@7.1.0:docs/context/（beta）torch_npu-npu_swiglu.md  # noqa: RUF003
# ("(beta)" in full-width parentheses in the file name): input of 1 to 8 dims, even along dim, contiguous,
# not empty, float32, float16 or bfloat16.
NPU_DTYPES = (torch.float32, torch.float16, torch.bfloat16)


def npu_swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    # torch_npu.npu_swiglu(Tensor self, int dim=-1) -> Tensor
    # (Ascend/op-plugin@7.1.0:op_plugin/config/op_plugin_functions.yaml): self is split in halves along dim,
    # A (first half) the gate, B the up projection: out = silu(A) * B. Contiguous input only, so the halves are
    # concatenated here; the backward (npu_swiglu_backward) is registered by torch_npu.
    return _npu.torch_npu().npu_swiglu(torch.cat((gate, up), dim=-1), dim=-1)


def npu_check(gate: torch.Tensor, up: torch.Tensor) -> str | None:
    """Why npu_swiglu would refuse cat(gate, up), or None."""
    if gate.shape != up.shape or gate.dtype != up.dtype:
        return "gate and up differ in shape or dtype"
    if gate.numel() == 0 or not 1 <= gate.dim() <= 8:
        return "npu_swiglu takes non-empty 1 to 8 dim tensors"
    if gate.dtype not in NPU_DTYPES:
        return f"npu_swiglu does not take {gate.dtype}"
    return None


OP = KernelOp(
    name="swiglu",
    reference=reference,
    triton=triton_swiglu,
    triton_check=triton_check,
    npu=npu_swiglu,
    npu_check=npu_check,
    npu_requires=("npu_swiglu",),
)
