"""Fused linear + cross-entropy: chunked plain-torch and Triton (interpreted) paths, NPU binding (fake)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import torch

import tandem.kernels as K
from tandem.kernels import op_cross_entropy as ce
from tandem.kernels.testing import PeakMemory, assert_close, compare

CHUNKED = {"plain-torch": ce.chunked_torch, "triton": ce.chunked_triton}


def _inputs(
    rows: int, hidden: int, vocab: int, dtype: torch.dtype = torch.float32, ignored: int = 3
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    h = (torch.randn(rows, hidden) / hidden**0.25).to(dtype).requires_grad_()
    w = (torch.randn(vocab, hidden) / hidden**0.25).to(dtype).requires_grad_()
    t = torch.randint(0, vocab, (rows,))
    t[torch.randperm(rows)[:ignored]] = -100
    return h, w, t


# name -> (rows, hidden, vocab, keyword arguments); chunk sizes that do not divide the rows.
CASES: dict[str, tuple[int, int, int, dict[str, Any]]] = {
    "mean-ignored-chunk-8": (37, 24, 300, {"chunk_rows": 8}),
    "sum": (20, 16, 257, {"reduction": "sum", "chunk_rows": 6}),
    "smoothing-and-z-loss": (19, 16, 130, {"label_smoothing": 0.1, "z_loss": 1e-3, "chunk_rows": 5}),
    "single-row": (1, 8, 50, {}),
    "default-chunks": (64, 8, 1000, {}),
    "ignore-index-7": (16, 8, 40, {"ignore_index": 7}),
}


@pytest.mark.parametrize("impl", list(CHUNKED))
@pytest.mark.parametrize("case", list(CASES))
def test_chunked_matches_reference_float32(impl: str, case: str) -> None:
    rows, hidden, vocab, kwargs = CASES[case]
    torch.manual_seed(0)
    h, w, t = _inputs(rows, hidden, vocab)
    if "ignore_index" in kwargs:
        t[t == -100] = kwargs["ignore_index"]
    ref_kwargs = {k: v for k, v in kwargs.items() if k != "chunk_rows"}
    compare(
        lambda h, w: CHUNKED[impl](h, w, t, **kwargs),
        lambda h, w: ce.reference(h, w, t, **ref_kwargs),
        [h, w],
    )


@pytest.mark.parametrize("impl", list(CHUNKED))
@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16], ids=str)
def test_chunked_matches_reference_half(impl: str, dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    h, w, t = _inputs(24, 32, 200, dtype)
    compare(
        lambda h, w: CHUNKED[impl](h, w, t, chunk_rows=7, label_smoothing=0.05),
        lambda h, w: ce.reference(h, w, t, label_smoothing=0.05),
        [h, w],
        dtype=dtype,
    )


def test_three_dimensional_hidden_and_float32_weight() -> None:
    torch.manual_seed(2)
    h = torch.randn(2, 5, 16, dtype=torch.bfloat16, requires_grad=True)
    # float32 weight holding bfloat16-representable values: the cast to hidden's dtype is exact, so
    # the float64 truth and the bfloat16 computation see the same weight.
    w = torch.randn(60, 16).to(torch.bfloat16).float().requires_grad_()
    t = torch.randint(0, 60, (2, 5))
    compare(
        lambda h, w: ce.chunked_triton(h, w, t, chunk_rows=3),
        lambda h, w: ce.reference(h, w, t),
        [h, w],
        dtype=torch.bfloat16,
    )
    assert ce.chunked_triton(h, w, t).dtype == torch.float32


@pytest.mark.parametrize("impl", list(CHUNKED))
def test_non_contiguous_hidden_and_weight(impl: str) -> None:
    torch.manual_seed(7)
    h = torch.randn(16, 21, requires_grad=True)  # hidden is its transpose: no unit stride
    w = torch.randn(80, 32, requires_grad=True)  # weight is a column slice: row stride 32
    t = torch.randint(0, 80, (21,))
    compare(
        lambda h, w: CHUNKED[impl](h, w, t, chunk_rows=8),
        lambda h, w: ce.reference(h, w, t),
        [h, w],
        lambda h, w: (h.t(), w[:, :16]),
    )


@pytest.mark.parametrize("impl", ["reference", *CHUNKED])
def test_all_rows_ignored_gives_zero_not_nan(impl: str) -> None:
    fn = ce.reference if impl == "reference" else CHUNKED[impl]
    h, w, t = _inputs(6, 8, 30, ignored=6)
    loss = fn(h, w, t)
    loss.backward()
    assert loss.item() == 0.0
    assert h.grad is not None and w.grad is not None and not h.grad.any() and not w.grad.any()


@pytest.mark.parametrize("impl", list(CHUNKED))
def test_incoming_gradient_scales_both_gradients(impl: str) -> None:
    torch.manual_seed(3)
    h, w, t = _inputs(10, 8, 40)
    compare(lambda h, w: CHUNKED[impl](h, w, t) * 3.0, lambda h, w: ce.reference(h, w, t) * 3.0, [h, w])


def test_second_backward_is_refused_not_silently_rescaled() -> None:
    h, w, t = _inputs(4, 8, 20)
    loss = ce.chunked_torch(h, w, t)
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward runs once"):
        loss.backward()


def test_without_grad_skips_the_gradients() -> None:
    h, w, t = _inputs(9, 8, 30)
    with torch.no_grad():
        assert_close(ce.chunked_triton(h, w, t), ce.reference(h, w, t))


@pytest.mark.parametrize("impl", list(CHUNKED))
def test_peak_memory_stays_below_materialised_logits(impl: str) -> None:
    torch.manual_seed(4)
    rows, hidden, vocab = 512, 64, 2048
    h, w, t = _inputs(rows, hidden, vocab)
    logits_bytes = rows * vocab * 4  # the float32 [N, V] logits the reference builds
    with PeakMemory() as reference_meter:
        ce.reference(h, w, t).backward()
    with PeakMemory() as fused_meter:
        CHUNKED[impl](h, w, t).backward()
    assert reference_meter.peak >= logits_bytes  # the meter sees the logits where they exist
    # Chunk logits plus the weight gradient (vocab x hidden): a fraction of the full logits.
    assert fused_meter.peak < logits_bytes / 2, (fused_meter.peak, logits_bytes)


def test_bad_arguments_are_refused() -> None:
    h, w, t = _inputs(4, 8, 20)
    with pytest.raises(ValueError, match="reduction"):
        K.fused_linear_cross_entropy(h, w, t, reduction="none")
    with pytest.raises(ValueError):
        K.fused_linear_cross_entropy(h, w[:, :4], t)
    with pytest.raises(ValueError):
        K.fused_linear_cross_entropy(h, w, t[:3])


@pytest.mark.parametrize("kwargs", [{}, {"label_smoothing": 0.1}, {"reduction": "sum"}], ids=str)
def test_npu_binding_layout_and_values(fake_npu, kwargs: dict[str, Any]) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(5)
    h, w, t = _inputs(12, 16, 64)
    fused: Callable[..., torch.Tensor] = lambda h, w: K.fused_linear_cross_entropy(h, w, t, **kwargs)  # noqa: E731
    compare(fused, lambda h, w: ce.reference(h, w, t, **kwargs), [h, w])
    assert set(fake_npu.names()) == {"npu_cross_entropy_loss"}
    args = fake_npu.calls[0].arguments
    assert args["reduction"] == "none" and args["ignore_index"] == -1 and args["weight"] is None
    assert args["label_smoothing"] == kwargs.get("label_smoothing", 0.0)
    assert args["input"].shape[1] == 64 and args["target"].dtype == torch.int64


def test_npu_binding_takes_the_torch_step_for_z_loss(fake_npu) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(6)
    h, w, t = _inputs(8, 16, 32)
    compare(
        lambda h, w: K.fused_linear_cross_entropy(h, w, t, z_loss=1e-3),
        lambda h, w: ce.reference(h, w, t, z_loss=1e-3),
        [h, w],
    )
    assert "npu_cross_entropy_loss" not in fake_npu.names()
