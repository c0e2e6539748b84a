"""The NPU bindings at and beyond each documented limit: at it the fused op runs; beyond it the binding chunks or
the call falls back with its reason logged. The fake chip refuses what torch_npu refuses, so a binding that crossed
a limit would fail here rather than on an Ascend machine. Limits: Ascend/op-plugin@7.1.0:docs/context/*.md."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import structlog
import torch

import tandem.kernels as K
from tandem.kernels import _npu, op_attention, op_cross_entropy, op_rms_norm, op_rope
from tandem.kernels.testing import assert_close, compare
from tandem.runtime.model import rope_tables


def _fallback_reasons(logs: list[dict[str, Any]]) -> list[str]:
    return [e["reason"] for e in logs if e["event"] == "kernel_fallback"]


# --- npu_fusion_attention ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("heads", "dim", "fused"), [(256, 16, True), (257, 16, False), (2, 768, True),
                                                      (2, 769, False), (2, 24, True), (2, 1, True)])  # fmt: skip
def test_attention_heads_and_head_dim(fake_npu: Any, heads: int, dim: int, fused: bool) -> None:
    torch.manual_seed(0)
    q, k, v = torch.randn(1, 3, heads, dim), torch.randn(1, 3, 1, dim), torch.randn(1, 3, 1, dim)
    with structlog.testing.capture_logs() as logs:
        assert_close(K.attention(q, k, v), op_attention.reference(q, k, v))
    assert fake_npu.names() == (["npu_fusion_attention"] if fused else [])
    assert bool(_fallback_reasons(logs)) != fused


def test_attention_beyond_2048_tokens_takes_the_same_compressed_mask(fake_npu: Any) -> None:
    torch.manual_seed(1)
    leaves = [torch.randn(1, 2100, heads, 16).requires_grad_() for heads in (2, 1, 1)]
    compare(K.attention, op_attention.reference, leaves)
    args = fake_npu.calls[0].arguments
    assert args["sparse_mode"] == 2 and tuple(args["atten_mask"].shape) == (2048, 2048)


def test_attention_seq_q_longer_than_seq_k_is_top_left_causal(fake_npu: Any) -> None:
    torch.manual_seed(2)
    leaves = [torch.randn(1, 9, 2, 16).requires_grad_(), *(torch.randn(1, 4, 2, 16).requires_grad_() for _ in "kv")]
    compare(K.attention, op_attention.reference, leaves)
    assert fake_npu.names() == ["npu_fusion_attention"]


def test_attention_check_at_and_beyond_sequence_and_dtype_limits() -> None:
    def check(seq: int, dtype: torch.dtype = torch.bfloat16, k_dtype: torch.dtype | None = None) -> str | None:
        q = torch.empty(1, seq, 2, 16, dtype=dtype, device="meta")
        k = torch.empty(1, seq, 2, 16, dtype=k_dtype or dtype, device="meta")
        return op_attention.npu_check(q, k, k)

    assert check(op_attention.MAX_SEQ) is None
    assert "sequences" in (check(op_attention.MAX_SEQ + 1) or "")
    assert check(8, torch.float64) is not None and check(8, torch.bfloat16, torch.float32) is not None


# --- npu_cross_entropy_loss --------------------------------------------------------------------------------------


def _rows(n: int, vocab: int = 4) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n rows of hidden 4: vocab <= hidden makes the whole batch one chunk of the driver."""
    torch.manual_seed(3)
    h = torch.randn(n, 4, requires_grad=True)
    w = torch.randn(vocab, 4, requires_grad=True)
    t = torch.randint(0, vocab, (n,))
    t[::7] = -100  # ignored rows in every 200000-row slice
    return h, w, t


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(("rows", "calls"), [(200_000, [200_000]), (200_005, [200_000, 5])])
def test_cross_entropy_splits_chunks_past_200000_rows(
    fake_npu: Any, rows: int, calls: list[int], reduction: str
) -> None:
    h, w, t = _rows(rows)
    assert op_cross_entropy.default_chunk_rows(rows, 4, 4) == rows  # one driver chunk: the binding must split it
    compare(
        lambda h, w: K.fused_linear_cross_entropy(h, w, t, reduction=reduction),
        lambda h, w: op_cross_entropy.reference(h, w, t, reduction=reduction),
        [h, w],
    )
    sizes = [call.arguments["input"].shape[0] for call in fake_npu.calls]
    assert sizes == calls


@pytest.mark.parametrize(("smoothing", "fused"), [(0.999, True), (1.0, False)])
def test_cross_entropy_label_smoothing_below_one(fake_npu: Any, smoothing: float, fused: bool) -> None:
    h, w, t = _rows(10, vocab=6)
    with structlog.testing.capture_logs() as logs:
        got = K.fused_linear_cross_entropy(h, w, t, label_smoothing=smoothing)
    assert_close(got.detach(), op_cross_entropy.reference(h, w, t, label_smoothing=smoothing).detach())
    assert ("npu_cross_entropy_loss" in fake_npu.names()) == fused
    assert fused or "label_smoothing" in _fallback_reasons(logs)[0]


# --- npu_rotary_mul ----------------------------------------------------------------------------------------------


def _rope_case(batch: int, heads: int, dim: int, table_grads: bool) -> list[torch.Tensor]:
    torch.manual_seed(4)
    cos, sin = rope_tables(3, dim, 10000.0, torch.device("cpu"))
    return [torch.randn(batch, 3, heads, dim, requires_grad=True), cos.requires_grad_(table_grads), sin]


@pytest.mark.parametrize(
    ("batch", "heads", "dim", "table_grads", "fused"),
    [
        (32, 32, 8, True, True),  # B * N = 1024 with cos gradients: at the limit
        (25, 41, 8, True, False),  # 1025
        (25, 41, 8, False, True),  # 1025 without table gradients
        (999, 1, 8, False, True),
        (1000, 1, 8, False, False),  # B < 1000
        (1, 999, 8, False, True),
        (1, 1000, 8, False, False),  # N < 1000
        (1, 2, 894, False, True),
        (1, 2, 896, False, False),  # D < 896
    ],
)
def test_rope_limits_on_a2(
    fake_npu: Any, batch: int, heads: int, dim: int, table_grads: bool, fused: bool
) -> None:
    leaves = _rope_case(batch, heads, dim, table_grads)
    sin = leaves.pop()
    with structlog.testing.capture_logs() as logs:
        compare(lambda x, cos: K.apply_rope(x, cos, sin), lambda x, cos: op_rope.reference(x, cos, sin), leaves)
    assert ("npu_rotary_mul" in fake_npu.names()) == fused
    assert bool(_fallback_reasons(logs)) != fused


@pytest.mark.parametrize(
    ("batch", "heads", "dim", "per_sequence", "fused"),
    [
        (2, 4, 128, False, True),
        (2, 4, 64, False, False),  # D == 128 only on the Atlas training series
        (32, 32, 128, False, True),  # broadcast B * N = 1024 elements
        (33, 32, 128, False, False),  # 1056
        (33, 32, 128, True, True),  # BS1D tables broadcast over N only
    ],
)
def test_rope_limits_on_ascend910(
    npu_chip: Callable[..., Any], batch: int, heads: int, dim: int, per_sequence: bool, fused: bool
) -> None:
    chip = npu_chip("ascend910")
    cos, sin = rope_tables(4, dim, 10000.0, torch.device("cpu"))
    x = torch.randn(batch, 2, heads, dim)
    offset: int | torch.Tensor = torch.randint(0, 3, (batch,)) if per_sequence else 1
    with structlog.testing.capture_logs() as logs:
        assert_close(K.apply_rope(x, cos, sin, position_offset=offset), op_rope.reference(x, cos, sin, offset))
    assert chip.names() == (["npu_rotary_mul"] if fused else [])
    assert all("ascend910" in reason for reason in _fallback_reasons(logs))


def test_rope_unknown_generation_applies_the_strictest_limits(npu_chip: Callable[..., Any]) -> None:
    chip = npu_chip("ascend910b", env=None)
    cos, sin = rope_tables(4, 64, 10000.0, torch.device("cpu"))
    K.apply_rope(torch.randn(1, 4, 2, 64), cos, sin)  # fine on an A2, not on the Atlas training series
    assert chip.names() == []


# --- npu_rms_norm / npu_swiglu -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("generation", "dtype", "x_shape", "w_shape", "fused"),
    [
        ("ascend910b", torch.bfloat16, (3, 8), (8,), True),
        ("ascend910", torch.bfloat16, (3, 8), (8,), False),  # float16/float32 only there
        ("ascend910", torch.float16, (3, 8), (8,), True),
        ("ascend910b", torch.float32, (8,), (8,), False),  # 2 to 8 dims
        ("ascend910b", torch.float32, (1, 1, 1, 1, 1, 1, 2, 8), (8,), True),
        ("ascend910b", torch.float32, (1, 1, 1, 1, 1, 1, 1, 2, 8), (8,), False),
        ("ascend910b", torch.float32, (3, 8), (1, 8), False),  # gamma [hidden] only: a 2-D one changes the norm
    ],
)
def test_rms_norm_limits(
    npu_chip: Callable[..., Any], generation: str, dtype: torch.dtype, x_shape: tuple[int, ...],
    w_shape: tuple[int, ...], fused: bool,
) -> None:  # fmt: skip
    chip = npu_chip(generation)
    x, w = torch.randn(x_shape).to(dtype), (1 + 0.1 * torch.randn(w_shape)).to(dtype)
    with structlog.testing.capture_logs() as logs:
        assert_close(K.rms_norm(x, w), op_rms_norm.reference(x, w), dtype=dtype)
    assert chip.names() == (["npu_rms_norm"] if fused else [])
    assert bool(_fallback_reasons(logs)) != fused


def test_swiglu_declines_float64(fake_npu: Any) -> None:
    g = torch.randn(2, 6, dtype=torch.float64)
    with structlog.testing.capture_logs() as logs:
        K.swiglu(g, g)
    assert fake_npu.names() == [] and "float64" in _fallback_reasons(logs)[0]


def test_rotary_mode_is_passed_only_where_the_schema_has_it(
    fake_npu: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert _npu.argument_names(fake_npu.module.npu_rotary_mul) == ("self", "r1", "r2", "rotary_mode")
    seen: list[dict[str, Any]] = []

    def older_rotary_mul(x: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        seen.append(kwargs)  # op-plugin before 7.0.0: (Tensor self, Tensor r1, Tensor r2), half mode only
        x1, x2 = x.chunk(2, dim=-1)
        return r1 * x + r2 * torch.cat((-x2, x1), dim=-1)

    monkeypatch.setattr(fake_npu.module, "npu_rotary_mul", older_rotary_mul)
    assert _npu.argument_names(older_rotary_mul) is None
    cos, sin = rope_tables(4, 8, 10000.0, torch.device("cpu"))
    x = torch.randn(1, 4, 2, 8)
    assert_close(K.apply_rope(x, cos, sin), op_rope.reference(x, cos, sin))
    assert seen == [{}]
