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

# Ascend/op-plugin@7.1.0:docs/context/torch_npu-npu_fusion_attention.md, 约束说明 (constraints), for the
# non-varlen layouts: N of query 1..256 and a multiple of key/value's N; D 1..768 with Dq = Dk >= Dv; S 1..1M;
# B 1..2M; query/key/value of one dtype among float16, bfloat16, float32. "1M" and "2M" are read as 10^6 and
# 2 * 10^6, the smaller reading.
MAX_HEADS = 256
MAX_HEAD_DIM = 768
MAX_SEQ = 1_000_000
MAX_BATCH = 2_000_000
DTYPES = (torch.float16, torch.bfloat16, torch.float32)

# sparse_mode 2 (leftUpCausal) takes "the optimised compressed lower-triangular matrix (2048*2048)" as atten_mask
# (same doc, 参考资源): one fixed 2048 x 2048 tensor (True = masked) for any sequence length, 2048 tokens or 200k.
# Built once per device: 4 MiB off every step.
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
    # torch_npu.npu_fusion_attention(Tensor query, Tensor key, Tensor value, int head_num, str input_layout,
    #   Tensor? pse=None, Tensor? padding_mask=None, Tensor? atten_mask=None, float scale=1., float keep_prob=1.,
    #   int pre_tockens=2147483647, int next_tockens=2147483647, int inner_precise=0, int[]? prefix=None,
    #   int[]? actual_seq_qlen=None, int[]? actual_seq_kvlen=None, int sparse_mode=0, bool gen_mask_parallel=True,
    #   bool sync=False) -> (Tensor, Tensor, Tensor, Tensor, int, int, int)
    #   (Ascend/op-plugin@7.1.0:op_plugin/config/op_plugin_functions.yaml); output 0 is attention_out.
    # input_layout "BSND" is our layout as is; head_num counts query heads and kv heads may divide it (GQA).
    # atten_mask is True where masked; sparse_mode=2 is leftUpCausal, SDPA's top-left causal alignment; with
    # atten_mask None the op computes every position (sparse_mode ignored), which is the non-causal case.
    # scale defaults to 1 there, not 1/sqrt(D), so it is always passed. The backward is torch_npu's.
    # Ascend/op-plugin@7.1.0:docs/context/torch_npu-npu_fusion_attention.md
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
    """Why npu_fusion_attention would refuse these (validate() already holds), or None."""
    batch, seq_q, heads, dim = q.shape
    if heads > MAX_HEADS:
        return f"npu_fusion_attention takes at most {MAX_HEADS} query heads, got {heads}"
    if not 1 <= dim <= MAX_HEAD_DIM:
        return f"npu_fusion_attention takes head_dim 1..{MAX_HEAD_DIM}, got {dim}"
    if max(seq_q, k.shape[1]) > MAX_SEQ or batch > MAX_BATCH:
        return f"npu_fusion_attention takes sequences up to {MAX_SEQ} and batches up to {MAX_BATCH}"
    if q.dtype not in DTYPES or k.dtype != q.dtype or v.dtype != q.dtype:
        return f"npu_fusion_attention takes q, k, v of one float dtype, got {q.dtype}, {k.dtype}, {v.dtype}"
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
