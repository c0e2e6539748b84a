"""The fake torch_npu itself: the real names and schemas, refusing what the docs refuse, accepting what they allow.

A fake that accepted more than torch_npu would let a wrong binding pass; one that refused less would hide a limit.
"""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType
from typing import Any

import pytest
import torch
import torch.nn.functional as F

FUSED = {"npu_fusion_attention", "npu_rms_norm", "npu_rotary_mul", "npu_swiglu", "npu_cross_entropy_loss"}


def test_only_the_real_functions_exist(fake_npu: Any) -> None:
    module = fake_npu.module
    assert {name for name in dir(module) if not name.startswith("_")} == FUSED
    for name in ("npu_rotary_mull", "npu_fused_attention", "calls", "npu"):
        assert not hasattr(module, name)
    with pytest.raises(AttributeError):
        module.npu_swiglu_v2  # noqa: B018


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m, x: m.npu_rms_norm(x, x[0], eps=1e-5), "Unknown keyword argument 'eps'"),
        (lambda m, x: m.npu_rms_norm(x, x[0], 1e-5, 1), "expected at most 3 argument"),
        (lambda m, x: m.npu_swiglu(x, dim=1.0), "Expected a value of type 'int'"),
        (lambda m, x: m.npu_rotary_mul(x, x, x, mode="half"), "Unknown keyword argument 'mode'"),
        (lambda m, x: m.npu_rotary_mul(input=x, r1=x, r2=x), "missing value for argument 'self'"),
        (lambda m, x: m.npu_fusion_attention(x, x, x, 2.0, "BSND"), "Expected a value of type 'int'"),
        (lambda m, x: m.npu_fusion_attention(x, x, x, 2, "BSND", pre_tokens=1), "Unknown keyword argument"),
        (lambda m, x: m.npu_cross_entropy_loss(x, x, smoothing=0.1), "Unknown keyword argument"),
    ],
)
def test_the_schema_parser_refuses_wrong_calls(fake_npu: Any, call: Callable[..., Any], message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        call(fake_npu.module, torch.rand(2, 4, 2, 8))
    assert fake_npu.calls == []


def test_outputs_have_the_schema_arity(fake_npu: Any) -> None:
    m = fake_npu.module
    q = torch.randn(1, 3, 2, 8)
    out = m.npu_fusion_attention(q, q, q, 2, "BSND", scale=0.5)
    assert len(out) == 7 and all(isinstance(v, int) for v in out[4:])
    assert out[1].shape == (1, 2, 3, 8) and out[1].dtype == torch.float32  # softmax_max [B, N, S, 8]
    assert len(m.npu_rms_norm(q, torch.ones(8))) == 2
    loss, log_prob, zloss, lse = m.npu_cross_entropy_loss(torch.randn(5, 7), torch.randint(0, 7, (5,)))
    assert loss.shape == (1,) and log_prob.shape == (5, 7) and zloss.numel() == lse.numel() == 0


@pytest.mark.parametrize("generation", ["ascend910", "ascend910c"])
def test_a_chip_refuses_the_ops_its_docs_do_not_list(
    npu_chip: Callable[..., Any], fake_torch_npu: ModuleType, generation: str
) -> None:
    m = npu_chip(generation).module
    calls = {
        "npu_fusion_attention": lambda: m.npu_fusion_attention(*(torch.randn(1, 2, 1, 8),) * 3, 1, "BSND"),
        "npu_swiglu": lambda: m.npu_swiglu(torch.randn(2, 4)),
        "npu_cross_entropy_loss": lambda: m.npu_cross_entropy_loss(torch.randn(2, 4), torch.tensor([0, 1])),
    }
    for name, call in calls.items():
        if generation in fake_torch_npu.SUPPORTED[name]:
            call()
        else:
            with pytest.raises(RuntimeError, match="not supported on"):
                call()


def test_attention_beyond_2048_tokens_and_right_down_causal(fake_npu: Any) -> None:
    m = fake_npu.module
    mask = torch.ones(2048, 2048, dtype=torch.bool).triu(1)
    q, k = torch.randn(1, 2100, 1, 8), torch.randn(1, 2200, 1, 8)
    assert m.npu_fusion_attention(q, k, k, 1, "BSND", atten_mask=mask, sparse_mode=2)[0].shape == q.shape
    out = m.npu_fusion_attention(q, k, k, 1, "BSND", atten_mask=mask.to(torch.uint8), sparse_mode=3)[0]
    expected = F.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), k.transpose(1, 2), scale=1.0,
        attn_mask=torch.ones(2100, 2200, dtype=torch.bool).tril(100),
    ).transpose(1, 2)
    torch.testing.assert_close(out, expected, atol=1e-4, rtol=1e-4)


def test_rotary_mul_interleave_on_a2(fake_npu: Any) -> None:
    x, r1, r2 = torch.randn(2, 3, 4, 8), torch.rand(1, 3, 1, 8), torch.rand(1, 3, 1, 8)
    out = fake_npu.module.npu_rotary_mul(x, r1, r2, rotary_mode="interleave")
    pairs = torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)
    torch.testing.assert_close(out, r1 * x + r2 * pairs)


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("ignore_index", [-100, 3])
def test_cross_entropy_every_reduction(fake_npu: Any, reduction: str, ignore_index: int) -> None:
    x, t = torch.randn(9, 6), torch.randint(0, 6, (9,))
    t[:3] = 3
    loss = fake_npu.module.npu_cross_entropy_loss(x, t, reduction=reduction, ignore_index=ignore_index)[0]
    expected = F.cross_entropy(x, t, reduction=reduction, ignore_index=ignore_index)
    torch.testing.assert_close(loss, expected if reduction == "none" else expected.reshape(1))


R = torch.rand(1, 3, 1, 8)
MASK = torch.ones(2048, 2048, dtype=torch.bool).triu(1)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.npu_fusion_attention(*(torch.randn(1, 2, 257, 8),) * 3, 257, "BSND"), "Nq 1..256"),
        (lambda m: m.npu_fusion_attention(*(torch.randn(1, 2, 2, 769),) * 3, 2, "BSND"), "D 1..768"),
        (lambda m: m.npu_fusion_attention(*(torch.randn(1, 2, 2, 8),) * 3, 4, "BSND"), "head_num"),
        (lambda m: m.npu_fusion_attention(*(torch.randn(1, 4, 2, 8),) * 3, 2, "BSND", atten_mask=MASK[:4, :4],
                                          sparse_mode=2), "compressed"),
        (lambda m: m.npu_fusion_attention(*(torch.randn(1, 4, 2, 8),) * 3, 2, "BSND", sparse_mode=9), "sparse_mode"),
        (lambda m: m.npu_rms_norm(torch.randn(8), torch.ones(8)), "2-8 dims"),
        (lambda m: m.npu_rms_norm(torch.randn(2, 8), torch.ones(8, dtype=torch.float16)), "gamma must have"),
        (lambda m: m.npu_rms_norm(torch.randn(2, 8), torch.ones(4)), "trailing part"),
        (lambda m: m.npu_rotary_mul(torch.randn(2, 3, 4, 8), R, R, rotary_mode="full"), "half or interleave"),
        (lambda m: m.npu_rotary_mul(torch.randn(2, 3, 4, 8), R * 3, R), r"\[-1, 1\]"),
        (lambda m: m.npu_rotary_mul(torch.randn(2, 3, 4, 8), R[:, :, :, :4], R[:, :, :, :4]), "no documented"),
        (lambda m: m.npu_rotary_mul(torch.randn(25, 3, 41, 8), R.requires_grad_(), R), "B\\*N <= 1024"),
        (lambda m: m.npu_swiglu(torch.randn(4, 6).t()), "non-contiguous"),
        (lambda m: m.npu_swiglu(torch.randn(4, 5)), "split evenly"),
        (lambda m: m.npu_cross_entropy_loss(torch.randn(200_001, 2), torch.zeros(200_001, dtype=torch.long)),
         "200000"),
        (lambda m: m.npu_cross_entropy_loss(torch.randn(3, 4), torch.tensor([0, 1, -100])), r"\[0, C\)"),
        (lambda m: m.npu_cross_entropy_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]), label_smoothing=1.0),
         "label_smoothing"),
        (lambda m: m.npu_cross_entropy_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]), ignore_index=4),
         "less than C"),
        (lambda m: m.npu_cross_entropy_loss(torch.randn(3, 4), torch.tensor([0, 1, 2]), return_zloss=True),
         "not enabled"),
        (lambda m: m.npu_cross_entropy_loss(torch.randn(3, 4, requires_grad=True), torch.tensor([0, 1, 2]),
                                            reduction="none", label_smoothing=0.1), "requires_grad"),
        (lambda m: m.npu_cross_entropy_loss(torch.randn(3, 4, requires_grad=True), torch.tensor([0, 1, 2]),
                                            ignore_index=1), "requires_grad"),
    ],
)
def test_documented_limits_are_refused(fake_npu: Any, call: Callable[..., Any], message: str) -> None:
    with pytest.raises(RuntimeError, match=message):
        call(fake_npu.module)
    assert fake_npu.calls == []
