"""The one door from the model to the fused ops: every op goes through `tandem.kernels`.

The kernels package picks the reference, Triton or torch_npu implementation by the tensor's device, so
swapping in faster kernels never touches the model.
"""

from __future__ import annotations

import torch

from tandem import kernels


def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return kernels.rms_norm(x, weight, eps=eps)


def swiglu(gate: torch.Tensor, up: torch.Tensor) -> torch.Tensor:
    return kernels.swiglu(gate, up)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    return kernels.apply_rope(x, cos, sin)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    return kernels.attention(q, k, v, causal=True)


def linear_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return kernels.fused_linear_cross_entropy(hidden, weight, target, reduction="mean")
