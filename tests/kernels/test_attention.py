"""Attention: SDPA (the CUDA path, run here on CPU) and the NPU binding (fake torch_npu) vs the reference."""

from __future__ import annotations

import math

import pytest
import torch

import tandem.kernels as K
from tandem.kernels import _dispatch, op_attention
from tandem.kernels.testing import compare

# name -> (batch, seq_q, seq_k, heads, kv_heads, head_dim)
CASES: dict[str, tuple[int, int, int, int, int, int]] = {
    "gqa": (2, 7, 7, 4, 2, 16),
    "mha": (1, 5, 5, 3, 3, 8),
    "mqa": (2, 6, 6, 4, 1, 16),
    "single-token": (1, 1, 1, 2, 1, 8),
    "head-dim-24": (1, 9, 9, 2, 2, 24),
    "seq-q-shorter-than-k": (1, 4, 9, 2, 1, 16),
}


def _leaves(case: str, dtype: torch.dtype = torch.float32) -> list[torch.Tensor]:
    b, sq, sk, h, hkv, d = CASES[case]
    return [
        torch.randn(shape).to(dtype).requires_grad_()
        for shape in ((b, sq, h, d), (b, sk, hkv, d), (b, sk, hkv, d))
    ]


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
@pytest.mark.parametrize("case", list(CASES))
def test_sdpa_matches_reference_float32(case: str, causal: bool) -> None:
    torch.manual_seed(0)
    compare(
        lambda q, k, v: op_attention.sdpa_attention(q, k, v, causal),
        lambda q, k, v: op_attention.reference(q, k, v, causal),
        _leaves(case),
    )


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_sdpa_matches_reference_half(dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    compare(op_attention.sdpa_attention, op_attention.reference, _leaves("gqa", dtype))


def test_q_k_v_as_views_of_a_fused_projection() -> None:
    torch.manual_seed(2)
    qkv = torch.randn(2, 6, 4 + 2 + 2, 16, requires_grad=True)
    compare(op_attention.sdpa_attention, op_attention.reference, [qkv], lambda t: t.split([4, 2, 2], dim=2))


def test_causal_first_query_sees_only_the_first_key() -> None:
    q, k, v = (torch.randn(1, 4, 2, 8) for _ in range(3))
    out = op_attention.reference(q, k, v, causal=True)
    torch.testing.assert_close(out[:, 0], v[:, 0])


def test_heads_must_be_a_multiple_of_kv_heads() -> None:
    with pytest.raises(ValueError, match="multiple"):
        K.attention(torch.randn(1, 4, 3, 8), torch.randn(1, 4, 2, 8), torch.randn(1, 4, 2, 8))


@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
def test_npu_binding_layout_and_values(fake_npu, causal: bool) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(3)
    compare(
        lambda q, k, v: K.attention(q, k, v, causal=causal),
        lambda q, k, v: op_attention.reference(q, k, v, causal),
        _leaves("gqa", torch.bfloat16),
    )
    call = fake_npu.calls[0]
    args = call.arguments
    assert call.name == "npu_fusion_attention" and args["input_layout"] == "BSND" and args["head_num"] == 4
    assert args["key"].shape[2] == 2  # kv heads passed as they are: the op does the grouping
    assert args["scale"] == pytest.approx(1 / math.sqrt(16)) and args["keep_prob"] == 1.0
    assert args["sparse_mode"] == (2 if causal else 0)
    assert (args["atten_mask"] is not None) == causal


def test_public_function_on_cpu_uses_sdpa() -> None:
    assert _dispatch.choose(op_attention.OP, "cpu").impl is op_attention.sdpa_attention
    q, k, v = _leaves("gqa")
    torch.testing.assert_close(K.attention(q, k, v), op_attention.reference(q, k, v), atol=1e-5, rtol=1e-5)
