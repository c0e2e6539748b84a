"""Rotary position embedding, rotate-half layout: reference, Triton kernel (own backward), torch_npu.

x is [batch, seq, heads, head_dim]; cos and sin are tables [positions, head_dim]. Token s of
sequence b takes row ``position_offset + s`` (an int for every sequence, or a [batch] tensor
of per-sequence offsets, e.g. when decoding after a cache or packing continued documents).
"""

from __future__ import annotations

from typing import Any

import torch

from tandem.kernels import _npu, _triton, capabilities
from tandem.kernels._dispatch import KernelOp

tl: Any = None  # bound to triton.language when a kernel first launches (see _triton.LazyKernel)

Offset = int | torch.Tensor


def validate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, position_offset: Offset = 0) -> None:
    """Errors every implementation shares: a wrong table silently broadcasts in some of them."""
    if x.dim() != 4:
        raise ValueError(f"x must be [batch, seq, heads, head_dim], got shape {tuple(x.shape)}")
    batch, seq, _, dim = x.shape
    if dim % 2:
        raise ValueError(f"head_dim must be even for rotate-half RoPE, got {dim}")
    if cos.shape != sin.shape or cos.dim() != 2 or cos.shape[1] != dim:
        raise ValueError(
            f"cos/sin must both be [positions, {dim}], got {tuple(cos.shape)} and {tuple(sin.shape)}"
        )
    if isinstance(position_offset, torch.Tensor):
        if position_offset.shape != (batch,):
            raise ValueError(
                f"position_offset tensor must be [batch]={batch}, got {tuple(position_offset.shape)}"
            )
        return  # per-sequence bounds would need a device sync; indexing fails loudly instead
    if position_offset < 0 or position_offset + seq > cos.shape[0]:
        raise ValueError(
            f"positions {position_offset}..{position_offset + seq - 1} outside a {cos.shape[0]}-row table"
        )


def _rows(table: torch.Tensor, x: torch.Tensor, position_offset: Offset) -> torch.Tensor:
    """The table rows for each token, shaped to broadcast against x: [1 or batch, seq, 1, dim]."""
    seq = x.shape[1]
    if isinstance(position_offset, torch.Tensor):
        positions = position_offset.to(table.device, torch.long)[:, None] + torch.arange(
            seq, device=table.device
        )
        return table[positions][:, :, None, :]
    return table[position_offset : position_offset + seq][None, :, None, :]


def reference(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, position_offset: Offset = 0
) -> torch.Tensor:
    half = x.shape[-1] // 2
    rotated = torch.cat((-x[..., half:], x[..., :half]), dim=-1)
    c = _rows(cos, x, position_offset).to(x.dtype)
    s = _rows(sin, x, position_offset).to(x.dtype)
    return x * c + rotated * s


# --- Triton ---------------------------------------------------------------------------------


@_triton.kernel
def _rope_kernel(
    X,
    COS,
    SIN,
    OFFSETS,
    Y,
    seq,
    n_heads,
    half,
    stride_xb,
    stride_xs,
    stride_xh,
    stride_yb,
    stride_ys,
    stride_yh,
    stride_table,
    BACKWARD: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    # One program per token, all heads at once: the cos/sin row is loaded once per token.
    pid = tl.program_id(0)
    b = pid // seq
    s = pid % seq
    pos = tl.load(OFFSETS + b) + s
    d = tl.arange(0, BLOCK_D)
    h = tl.arange(0, BLOCK_H)
    d_mask = d < half
    mask = (h[:, None] < n_heads) & d_mask[None, :]
    c1 = tl.load(COS + pos * stride_table + d, mask=d_mask, other=0.0).to(tl.float32)[None, :]
    c2 = tl.load(COS + pos * stride_table + half + d, mask=d_mask, other=0.0).to(tl.float32)[None, :]
    s1 = tl.load(SIN + pos * stride_table + d, mask=d_mask, other=0.0).to(tl.float32)[None, :]
    s2 = tl.load(SIN + pos * stride_table + half + d, mask=d_mask, other=0.0).to(tl.float32)[None, :]
    x_ptr = X + b * stride_xb + s * stride_xs + h[:, None] * stride_xh + d[None, :]
    x1 = tl.load(x_ptr, mask=mask, other=0.0).to(tl.float32)
    x2 = tl.load(x_ptr + half, mask=mask, other=0.0).to(tl.float32)
    if BACKWARD:
        # The transpose of y1 = x1*c1 - x2*s1, y2 = x2*c2 + x1*s2.
        y1 = x1 * c1 + x2 * s2
        y2 = x2 * c2 - x1 * s1
    else:
        y1 = x1 * c1 - x2 * s1
        y2 = x2 * c2 + x1 * s2
    y_ptr = Y + b * stride_yb + s * stride_ys + h[:, None] * stride_yh + d[None, :]
    tl.store(y_ptr, y1.to(Y.dtype.element_ty), mask=mask)
    tl.store(y_ptr + half, y2.to(Y.dtype.element_ty), mask=mask)


def _launch(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, offsets: torch.Tensor, backward: bool
) -> torch.Tensor:
    if x.stride(-1) != 1:
        x = x.contiguous()
    batch, seq, heads, dim = x.shape
    y = torch.empty((batch, seq, heads, dim), dtype=x.dtype, device=x.device)
    half = dim // 2
    _rope_kernel[(batch * seq,)](
        x,
        cos,
        sin,
        offsets,
        y,
        seq,
        heads,
        half,
        x.stride(0),
        x.stride(1),
        x.stride(2),
        y.stride(0),
        y.stride(1),
        y.stride(2),
        cos.stride(0),
        BACKWARD=backward,
        BLOCK_H=_triton.next_power_of_2(heads),
        BLOCK_D=_triton.next_power_of_2(half),
    )
    return y


class _RoPEFn(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, offsets: torch.Tensor
    ) -> torch.Tensor:
        ctx.save_for_backward(cos, sin, offsets)
        return _launch(x, cos, sin, offsets, backward=False)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor) -> tuple[torch.Tensor, None, None, None]:
        cos, sin, offsets = ctx.saved_tensors
        return _launch(dy, cos, sin, offsets, backward=True), None, None, None


def triton_apply_rope(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, position_offset: Offset = 0
) -> torch.Tensor:
    if isinstance(position_offset, torch.Tensor):
        offsets = position_offset.to(x.device, torch.int64).contiguous()
    else:
        offsets = torch.full((x.shape[0],), position_offset, dtype=torch.int64, device=x.device)
    return _RoPEFn.apply(x, cos.contiguous(), sin.contiguous(), offsets)


def triton_check(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, position_offset: Offset = 0
) -> str | None:
    if cos.requires_grad or sin.requires_grad:
        return "the kernel has no gradient for cos/sin"
    if x.numel() == 0:
        return "empty input"
    if x.numel() >= 2**31:
        return "more than 2^31 elements (the kernel indexes in int32)"
    if x.shape[2] * x.shape[3] > 65536:
        return "heads * head_dim too large for one program per token"
    return None


# --- torch_npu ------------------------------------------------------------------------------

# Ascend/op-plugin@7.1.0:docs/context/torch_npu-npu_rotary_mul.md, 约束说明, half mode:
# - jit_compile=False (Atlas A2, A3): x in BSND takes r1/r2 as 1S1D, BS1D or BSND; D < 896 and even; B, N < 1000;
#   when cos/sin need gradients, B * N <= 1024; r1/r2 values in [-1, 1].
# - jit_compile=True (the Atlas training series; op_plugin/ops/opapi/RotaryMulKernelNpuOpApi.cpp sends SoCs before
#   Ascend910B1 to the aclop kernel): half mode only, D == 128, B and N <= 1000, and the broadcast axes together
#   at most 1024 elements.
# float16, bfloat16, float32 for input, r1 and r2. The [-1, 1] range is not checked: it would need a device sync
# per call, and cos/sin tables hold it by construction.
NPU_DTYPES = (torch.float16, torch.bfloat16, torch.float32)
MAX_HEAD_DIM = 896  # exclusive
MAX_BATCH_OR_HEADS = 1000  # exclusive on A2/A3, inclusive on the Atlas training series
MAX_BN_WITH_TABLE_GRADS = 1024
HEAD_DIM_910 = 128
MAX_BROADCAST_910 = 1024


def npu_apply_rope(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, position_offset: Offset = 0
) -> torch.Tensor:
    # torch_npu.npu_rotary_mul(Tensor self, Tensor r1, Tensor r2, str rotary_mode='half') -> Tensor
    # (Ascend/op-plugin@7.1.0:op_plugin/config/op_plugin_functions.yaml). half mode is out = r1 * x + r2 *
    # cat(-x2, x1), our rotate-half layout. rotary_mode entered the schema in op-plugin 7.0.0 (before, half was the
    # only mode): it is passed by name where the schema has it, so a change of default cannot switch us to the
    # interleaved layout, and an older release is not sent a keyword it refuses. x is BSND, r1/r2 1S1D (one offset)
    # or BS1D (per-sequence offsets). Gradients reach cos/sin through the indexing in _rows.
    rotary_mul = _npu.torch_npu().npu_rotary_mul
    mode = {"rotary_mode": "half"} if "rotary_mode" in (_npu.argument_names(rotary_mul) or ()) else {}
    r1 = _rows(cos, x, position_offset).to(x.dtype)
    r2 = _rows(sin, x, position_offset).to(x.dtype)
    return rotary_mul(x.contiguous(), r1, r2, **mode)


def _broadcast_elements(x: torch.Tensor, position_offset: Offset) -> int:
    """Elements of x's broadcast axes for our r1/r2: B and N for 1S1D, N for BS1D."""
    batch, _, heads, _ = x.shape
    return heads if isinstance(position_offset, torch.Tensor) else batch * heads


def npu_check(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, position_offset: Offset = 0
) -> str | None:
    """Why npu_rotary_mul would refuse these on the chip generation in use, or None."""
    batch, _, heads, dim = x.shape
    if x.dtype not in NPU_DTYPES:
        return f"npu_rotary_mul does not take {x.dtype}"
    if dim >= MAX_HEAD_DIM or batch >= MAX_BATCH_OR_HEADS or heads >= MAX_BATCH_OR_HEADS:
        return f"npu_rotary_mul needs head_dim < {MAX_HEAD_DIM} and batch, heads < {MAX_BATCH_OR_HEADS}"
    if (cos.requires_grad or sin.requires_grad) and batch * heads > MAX_BN_WITH_TABLE_GRADS:
        return f"npu_rotary_mul takes batch * heads <= {MAX_BN_WITH_TABLE_GRADS} when cos/sin need gradients"
    if capabilities.ASCEND910 in capabilities.possible(capabilities.chip_generation()):
        if dim != HEAD_DIM_910:
            return f"npu_rotary_mul on ascend910 takes head_dim {HEAD_DIM_910} only, got {dim}"
        if _broadcast_elements(x, position_offset) > MAX_BROADCAST_910:
            return f"npu_rotary_mul on ascend910 takes at most {MAX_BROADCAST_910} elements on broadcast axes"
    return None


OP = KernelOp(
    name="apply_rope",
    reference=reference,
    triton=triton_apply_rope,
    triton_check=triton_check,
    npu=npu_apply_rope,
    npu_check=npu_check,
    npu_requires=("npu_rotary_mul",),
)
