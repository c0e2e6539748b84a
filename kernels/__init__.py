"""Fused training ops (docs/design.md#kernels). Each call dispatches by the tensor's device.

CUDA tensors run Triton kernels (attention: SDPA's flash kernels), NPU tensors torch_npu's fused
ops, anything else plain torch. ``TANDEM_KERNELS`` = auto | reference | triton | npu forces one
implementation; see kernels/README.md. One module per op (``op_*.py``) holds its reference, its
Triton kernel and its NPU binding.
"""

from __future__ import annotations

import torch

from tandem.kernels import op_attention, op_cross_entropy, op_rms_norm, op_rope, op_swiglu
from tandem.kernels._dispatch import call

__all__ = ["apply_rope", "attention", "fused_linear_cross_entropy", "rms_norm", "swiglu"]


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """RMSNorm over the last dim with float32 accumulation; any leading shape; returns x's dtype."""
    return call(op_rms_norm.OP, x, x, weight, eps)


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    """silu(gate) * up."""
    return call(op_swiglu.OP, gate, gate, up)


def apply_rope(
    x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, *, position_offset: int | torch.Tensor = 0
) -> torch.Tensor:
    """Rotary embedding, rotate-half layout. x: [batch, seq, heads, head_dim]; cos/sin: [positions,
    head_dim]; token s of sequence b uses row position_offset + s (an int, or a [batch] tensor)."""
    op_rope.validate(x, cos, sin, position_offset)
    return call(op_rope.OP, x, x, cos, sin, position_offset=position_offset)


def fused_linear_cross_entropy(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    *,
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
) -> torch.Tensor:
    """Cross-entropy of hidden @ weight^T against target, chunked: never the full [N, V] logits.

    hidden [N, H] (or [..., H]), weight [V, H], target [N]; reduction "mean" (over rows whose
    target is not ignore_index; 0 when there are none) or "sum"; z_loss adds z_loss * lse^2 per row.
    """
    op_cross_entropy.validate(hidden, weight, target, reduction)
    return call(
        op_cross_entropy.OP,
        hidden,
        hidden,
        weight,
        target,
        ignore_index,
        reduction,
        label_smoothing=label_smoothing,
        z_loss=z_loss,
    )


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True) -> torch.Tensor:
    """Scaled dot-product attention on [batch, seq, heads, head_dim]; grouped-query when k/v have
    fewer heads (a divisor of q's); causal masks keys after the query (top-left aligned)."""
    op_attention.validate(q, k, v)
    return call(op_attention.OP, q, q, k, v, causal)
