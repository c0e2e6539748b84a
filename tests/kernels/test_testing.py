"""The judges themselves: tolerances that reject NaN and real errors, a memory meter that counts right."""

from __future__ import annotations

import pytest
import torch

from tandem.kernels.testing import PeakMemory, assert_close, compare, poisoned_allocations


def test_nan_never_passes_even_against_nan() -> None:
    x = torch.randn(8)
    nan = x.clone()
    nan[3] = float("nan")
    with pytest.raises(AssertionError, match="non-finite"):
        assert_close(nan, x)
    with pytest.raises(AssertionError, match="reference is not finite"):
        assert_close(nan, nan)


@pytest.mark.parametrize(
    ("dtype", "error", "passes"),
    [
        (torch.float32, 1e-6, True),
        (torch.float32, 1e-4, False),
        (torch.bfloat16, 5e-3, True),
        (torch.bfloat16, 3e-2, False),
    ],
)
def test_tolerance_by_dtype(dtype: torch.dtype, error: float, passes: bool) -> None:
    expected = torch.linspace(1, 2, 16, dtype=torch.float64).to(dtype)
    actual = (expected.double() * (1 + error)).to(dtype)
    if passes:
        assert_close(actual, expected)
    else:
        with pytest.raises(AssertionError, match="relative error"):
            assert_close(actual, expected)


def test_compare_catches_a_wrong_gradient() -> None:
    class WrongGrad(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):  # type: ignore[no-untyped-def,override]
            return x * 2

        @staticmethod
        def backward(ctx, g):  # type: ignore[no-untyped-def,override]
            return g * 2.01

    with pytest.raises(AssertionError, match="gradient of input 0"):
        compare(WrongGrad.apply, lambda x: x * 2, [torch.randn(5, requires_grad=True)])


def test_poisoned_allocations_expose_unwritten_outputs() -> None:
    real_empty, real_empty_like = torch.empty, torch.empty_like
    with poisoned_allocations():
        assert torch.isnan(torch.empty(4)).all() and torch.isnan(torch.empty_like(torch.ones(2))).all()
    assert torch.empty is real_empty and torch.empty_like is real_empty_like


def test_peak_memory_counts_allocations_not_views() -> None:
    before = torch.randn(1024, 256)  # 1 MiB made outside the block
    with PeakMemory() as meter:
        view = before.t()[:10]
        assert meter.peak == 0
        a = torch.empty(1024, 256) + 1.0  # 1 MiB (the empty) + 1 MiB (the sum)
        del a
        assert meter.current == 0
        b = before * 2
    assert meter.peak == 2 * 1024 * 256 * 4
    assert meter.current == b.numel() * 4 and view.shape == (10, 1024)
