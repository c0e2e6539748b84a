"""Attention, causal and grouped-query: reference, SDPA (flash attention on CUDA), npu_fusion_attention.

q is [batch, seq_q, heads, head_dim]; k and v are [batch, seq_k, kv_heads, head_dim] with
heads a multiple of kv_heads: query head h reads kv head h // (heads / kv_heads). causal masks
key j for query i when j > i (top-left aligned, as torch's SDPA ``is_causal``).
There is no Triton kernel of our own: SDPA's flash / memory-efficient kernels are the CUDA path.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from tandem.kernels import _npu
from tandem.kernels._dispatch import KernelOp


def validate(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.shape != k.shape:
        raise ValueError(
            f"q, k, v must be [batch, seq, heads, head_dim] with k and v alike, got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if q.shape[0] != k.shape[0] or q.shape[3] != k.shape[3]:
        raise ValueError("q and k/v differ in batch or head_dim")
    if q.shape[2] % k.shape[2]:
        raise ValueError(f"{q.shape[2]} query heads are not a multiple of {k.shape[2]} kv heads")


def reference(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True, scale: float | None = None
) -> torch.Tensor:
    """softmax(q k^T * scale + mask) v in float32, returned in q's dtype."""
    groups = q.shape[2] // k.shape[2]
    q_, k_, v_ = (t.transpose(1, 2).float() for t in (q, k, v))  # [batch, heads, seq, dim]
    k_ = k_.repeat_interleave(groups, dim=1)
    v_ = v_.repeat_interleave(groups, dim=1)
    scores = (q_ @ k_.transpose(-1, -2)) * (scale if scale is not None else 1.0 / math.sqrt(q.shape[-1]))
    if causal:
        seq_q, seq_k = scores.shape[-2:]
        future = torch.ones(seq_q, seq_k, dtype=torch.bool, device=q.device).triu(diagonal=1)
        scores = scores.masked_fill(future, float("-inf"))
    return (scores.softmax(dim=-1) @ v_).transpose(1, 2).to(q.dtype)


def sdpa_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True, scale: float | None = None
) -> torch.Tensor:
    # SDPA wants [batch, heads, seq, dim]; the transposes are views, SDPA handles the strides.
    q_, k_, v_ = (t.transpose(1, 2) for t in (q, k, v))
    out = F.scaled_dot_product_attention(
        q_, k_, v_, is_causal=causal, scale=scale, enable_gqa=k.shape[2] != q.shape[2]
    )
    return out.transpose(1, 2)


# --- torch_npu ------------------------------------------------------------------------------

# sparse_mode 2 (leftUpCausal) takes this compressed 2048 x 2048 mask (True = masked) whatever
# the sequence lengths; building it once per device keeps a 4 MiB allocation off every step.
_CAUSAL_MASK_SIZE = 2048
_masks: dict[torch.device, torch.Tensor] = {}


def _causal_mask(device: torch.device) -> torch.Tensor:
    mask = _masks.get(device)
    if mask is None:
        mask = torch.ones(_CAUSAL_MASK_SIZE, _CAUSAL_MASK_SIZE, dtype=torch.bool, device=device).triu(
            diagonal=1
        )
        _masks[device] = mask
    return mask


def npu_attention(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True, scale: float | None = None
) -> torch.Tensor:
    # torch_npu.npu_fusion_attention(query, key, value, head_num, input_layout, pse=None,
    #   padding_mask=None, atten_mask=None, scale=1., keep_prob=1., pre_tockens=2147483647,
    #   next_tockens=2147483647, inner_precise=0, prefix=None, actual_seq_qlen=None,
    #   actual_seq_kvlen=None, sparse_mode=0, gen_mask_parallel=True, sync=False)
    #   -> (attention_out, softmax_max, softmax_sum, softmax_out, seed, offset, numels).
    # input_layout "BSND" is our layout as is; head_num counts query heads and kv heads may be a
    # factor of it (GQA). atten_mask is True where masked; sparse_mode=2 is leftUpCausal with the
    # compressed 2048x2048 upper-triangular mask, i.e. SDPA's top-left causal alignment.
    # scale defaults to 1 there, not 1/sqrt(D), so it is always passed. The backward is torch_npu's.
    # https://hiascend.com/document/detail/zh/Pytorch/600/apiref/apilist/ptaoplist_000850.html
    outputs = _npu.torch_npu().npu_fusion_attention(
        q,
        k,
        v,
        q.shape[2],
        "BSND",
        atten_mask=_causal_mask(q.device) if causal else None,
        scale=scale if scale is not None else 1.0 / math.sqrt(q.shape[-1]),
        keep_prob=1.0,
        sparse_mode=2 if causal else 0,
    )
    return outputs[0]


def npu_check(
    q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = True, scale: float | None = None
) -> str | None:
    dim = q.shape[-1]
    if dim % 16 or dim > 512:
        return f"npu_fusion_attention needs head_dim a multiple of 16 up to 512, got {dim}"
    if q.dtype not in (torch.float16, torch.bfloat16, torch.float32):
        return f"npu_fusion_attention does not take {q.dtype}"
    return None


OP = KernelOp(
    name="attention",
    reference=reference,
    triton=sdpa_attention,  # the CUDA slot: SDPA dispatches to flash / memory-efficient kernels
    npu=npu_attention,
    npu_check=npu_check,
    npu_requires=("npu_fusion_attention",),
    triton_needs_triton=False,
    plain=sdpa_attention,  # plain torch too, and it does not materialise [heads, seq, seq] scores
)
