"""RMSNorm over the last dim: reference, Triton kernel (own backward), torch_npu binding."""

from __future__ import annotations

import functools
from typing import Any

import torch

from tandem.kernels import _npu, _triton, capabilities
from tandem.kernels._dispatch import KernelOp

tl: Any = None  # bound to triton.language when a kernel first launches (see _triton.LazyKernel)


def reference(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """y = x / sqrt(mean(x^2) + eps) * weight, accumulated in float32, returned in x's dtype."""
    x32 = x.float()
    normed = x32 * torch.rsqrt(x32.pow(2).mean(dim=-1, keepdim=True) + eps)
    return (normed * weight.float()).to(x.dtype)


# --- Triton ---------------------------------------------------------------------------------


@_triton.kernel
def _forward_kernel(X, W, Y, RSTD, stride_x, stride_y, n_cols, eps, BLOCK: tl.constexpr):
    row = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    rstd = 1.0 / tl.sqrt(tl.sum(x * x, axis=0) / n_cols + eps)
    tl.store(RSTD + row, rstd)
    tl.store(Y + row * stride_y + cols, (x * rstd * w).to(Y.dtype.element_ty), mask=mask)


@_triton.kernel
def _backward_kernel(
    DY,
    X,
    W,
    RSTD,
    DX,
    DW,
    stride_dy,
    stride_x,
    stride_dx,
    n_rows,
    n_cols,
    rows_per_program,
    BLOCK: tl.constexpr,
):
    # Each program owns a run of rows and keeps its share of dW in registers: one partial row per
    # program instead of a [rows, cols] float32 buffer, summed by torch afterwards.
    pid = tl.program_id(0)
    cols = tl.arange(0, BLOCK)
    mask = cols < n_cols
    w = tl.load(W + cols, mask=mask, other=0.0).to(tl.float32)
    dw = tl.zeros((BLOCK,), dtype=tl.float32)
    start = pid * rows_per_program
    end = tl.minimum(start + rows_per_program, n_rows)
    for row in range(start, end):
        x = tl.load(X + row * stride_x + cols, mask=mask, other=0.0).to(tl.float32)
        dy = tl.load(DY + row * stride_dy + cols, mask=mask, other=0.0).to(tl.float32)
        rstd = tl.load(RSTD + row)
        xhat = x * rstd
        dyw = dy * w
        dx = rstd * (dyw - xhat * (tl.sum(dyw * xhat, axis=0) / n_cols))
        tl.store(DX + row * stride_dx + cols, dx.to(DX.dtype.element_ty), mask=mask)
        dw += dy * xhat
    tl.store(DW + pid * n_cols + cols, dw, mask=mask)


_MAX_BLOCK = 65536  # one row per program must fit in registers/shared memory


def _rows_2d(t: torch.Tensor) -> torch.Tensor:
    t2 = t.reshape(-1, t.shape[-1])
    return t2 if t2.stride(-1) == 1 else t2.contiguous()


@functools.cache
def _sm_count(index: int) -> int:
    return torch.cuda.get_device_properties(index).multi_processor_count


def _programs(device: torch.device, n_rows: int) -> int:
    if device.type == "cuda":
        # A few programs per SM: enough to fill the GPU, few enough that the dW partials stay small.
        return min(
            n_rows, 4 * _sm_count(device.index if device.index is not None else torch.cuda.current_device())
        )
    return min(n_rows, 4)  # the interpreter: few programs, each looping over its rows


class _RMSNormFn(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
        n_cols = x.shape[-1]
        x2 = _rows_2d(x)
        n_rows = x2.shape[0]
        y = torch.empty((n_rows, n_cols), dtype=x.dtype, device=x.device)
        rstd = torch.empty(n_rows, dtype=torch.float32, device=x.device)
        block = _triton.next_power_of_2(n_cols)
        _forward_kernel[(n_rows,)](
            x2,
            weight,
            y,
            rstd,
            x2.stride(0),
            y.stride(0),
            n_cols,
            eps,
            BLOCK=block,
            num_warps=_triton.num_warps_for(block),
        )
        ctx.save_for_backward(x2, weight, rstd)
        ctx.shape = x.shape
        return y.view(x.shape)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        x2, weight, rstd = ctx.saved_tensors
        n_rows, n_cols = x2.shape
        dy2 = _rows_2d(dy)
        dx = torch.empty((n_rows, n_cols), dtype=x2.dtype, device=x2.device)
        programs = _programs(x2.device, n_rows)
        rows_per_program = -(-n_rows // programs)
        programs = -(-n_rows // rows_per_program)
        dw_partial = torch.empty((programs, n_cols), dtype=torch.float32, device=x2.device)
        block = _triton.next_power_of_2(n_cols)
        _backward_kernel[(programs,)](
            dy2,
            x2,
            weight,
            rstd,
            dx,
            dw_partial,
            dy2.stride(0),
            x2.stride(0),
            dx.stride(0),
            n_rows,
            n_cols,
            rows_per_program,
            BLOCK=block,
            num_warps=_triton.num_warps_for(block),
        )
        return dx.view(ctx.shape), dw_partial.sum(0).to(weight.dtype), None


def triton_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    return _RMSNormFn.apply(x, weight, eps)


def triton_check(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> str | None:
    if x.numel() == 0:
        return "empty input"
    if weight.shape != (x.shape[-1],):
        return f"weight shape {tuple(weight.shape)} is not ({x.shape[-1]},)"
    if _triton.next_power_of_2(x.shape[-1]) > _MAX_BLOCK:
        return f"hidden size {x.shape[-1]} exceeds one row per program ({_MAX_BLOCK})"
    if x.numel() >= 2**31:
        return "more than 2^31 elements (the kernel indexes in int32)"
    return None


# --- torch_npu ------------------------------------------------------------------------------

# Ascend/op-plugin@7.1.0:docs/context/（beta）torch_npu-npu_rms_norm.md  # noqa: RUF003
# ("(beta)" in full-width parentheses in the file name): self float16, bfloat16 or float32 with 2 to 8 dims;
# gamma of self's dtype. The 7.2.0 page adds the per-product dtype table: the Atlas training series (ascend910)
# takes float16 and float32 only, no bfloat16.
NPU_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
NPU_DTYPES_910 = (torch.float16, torch.float32)


def npu_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    # torch_npu.npu_rms_norm(Tensor self, Tensor gamma, float epsilon=1e-06) -> (Tensor, Tensor)
    # (Ascend/op-plugin@7.1.0:op_plugin/config/op_plugin_functions.yaml): (y, rstd), rstd float32. The op
    # normalises over all of gamma's dims (rstd keeps self's leading dims, op_plugin/utils/KernelNpuOutputSize.cpp
    # rms_norm_npu_output_size), so gamma must be [hidden] for a last-dim norm; npu_check holds it to that.
    # The backward (npu_rms_norm_backward) is registered by torch_npu.
    y, _rstd = _npu.torch_npu().npu_rms_norm(x, weight.to(x.dtype), epsilon=eps)
    return y


def npu_check(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> str | None:
    """Why npu_rms_norm would refuse these or compute something else, or None."""
    allowed = NPU_DTYPES
    if capabilities.ASCEND910 in capabilities.possible(capabilities.chip_generation()):
        allowed = NPU_DTYPES_910
    if x.dtype not in allowed:
        return f"npu_rms_norm does not take {x.dtype} on this chip generation (takes {allowed})"
    if not 2 <= x.dim() <= 8:
        return f"npu_rms_norm takes 2 to 8 dims, got {x.dim()}"
    if weight.shape != (x.shape[-1],):
        # A broadcasting or multi-dim weight would change which dims the op normalises over.
        return f"weight shape {tuple(weight.shape)} is not ({x.shape[-1]},)"
    return None


OP = KernelOp(
    name="rms_norm",
    reference=reference,
    triton=triton_rms_norm,
    triton_check=triton_check,
    npu=npu_rms_norm,
    npu_check=npu_check,
    npu_requires=("npu_rms_norm",),
)
