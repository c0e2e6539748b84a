"""RMSNorm: Triton (interpreted on CPU) and the NPU binding (fake torch_npu) against the reference."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import tandem.kernels as K
from tandem.kernels import _dispatch, op_rms_norm
from tandem.kernels.testing import assert_close, compare

DTYPES = [torch.float32, torch.bfloat16, torch.float16]


def _leaves(x_shape: tuple[int, ...], w_len: int, dtype: torch.dtype) -> list[torch.Tensor]:
    x = torch.randn(x_shape, dtype=torch.float32).to(dtype).requires_grad_()
    w = (1 + 0.1 * torch.randn(w_len)).to(dtype).requires_grad_()
    return [x, w]


def _as_is(x: torch.Tensor, w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x, w


# (x leaf shape, weight length, build): hidden sizes that are not powers of two, one row, a long
# row, and non-contiguous inputs (a column slice keeps a row stride; a transpose has none).
CASES: dict[str, tuple[tuple[int, ...], int, Callable[..., tuple[torch.Tensor, ...]]]] = {
    "single-row": ((1, 7), 7, _as_is),
    "3d-hidden-96": ((3, 5, 96), 96, _as_is),
    "long-row-5000": ((2, 5000), 5000, _as_is),
    "row-strided-slice": ((6, 100), 40, lambda x, w: (x[:, :40], w)),
    "transposed": ((40, 6), 40, lambda x, w: (x.t(), w)),
}


@pytest.mark.parametrize("case", list(CASES))
def test_triton_matches_reference_float32(case: str) -> None:
    x_shape, w_len, build = CASES[case]
    torch.manual_seed(0)
    leaves = _leaves(x_shape, w_len, torch.float32)
    compare(op_rms_norm.triton_rms_norm, op_rms_norm.reference, leaves, build)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
def test_triton_matches_reference_by_dtype(dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    compare(op_rms_norm.triton_rms_norm, op_rms_norm.reference, _leaves((4, 3, 72), 72, dtype))


def test_triton_keeps_x_dtype_with_float32_weight() -> None:
    torch.manual_seed(2)
    x = torch.randn(5, 48, dtype=torch.bfloat16, requires_grad=True)
    w = torch.randn(48, requires_grad=True)
    compare(op_rms_norm.triton_rms_norm, op_rms_norm.reference, [x, w])
    assert op_rms_norm.triton_rms_norm(x, w).dtype == torch.bfloat16


def test_zero_row_stays_finite() -> None:
    x = torch.zeros(3, 24)
    w = torch.ones(24)
    for fn in (op_rms_norm.reference, op_rms_norm.triton_rms_norm):
        y = fn(x, w)
        assert torch.isfinite(y).all() and not y.any()


def test_public_function_takes_the_triton_path(kernels_mode: Callable[[str], None]) -> None:
    kernels_mode("triton")
    x, w = torch.randn(2, 3, 40), torch.randn(40)
    assert _dispatch.choose(op_rms_norm.OP, "cpu", (x, w, 1e-6)).name == "triton"
    assert_close(K.rms_norm(x, w, eps=1e-5), op_rms_norm.reference(x, w, 1e-5))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_npu_binding_layout_and_values(fake_npu, dtype: torch.dtype) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(3)
    compare(
        lambda x, w: K.rms_norm(x, w, eps=1e-5),
        lambda x, w: op_rms_norm.reference(x, w, 1e-5),
        _leaves((2, 3, 64), 64, dtype),
    )
    call = fake_npu.calls[0]
    assert call.name == "npu_rms_norm" and call.arguments["epsilon"] == 1e-5
    assert call.arguments["gamma"].dtype == call.arguments["self"].dtype == dtype


def test_npu_binding_casts_float32_weight_to_x_dtype(fake_npu) -> None:  # type: ignore[no-untyped-def]
    x, w = torch.randn(4, 32, dtype=torch.bfloat16), torch.randn(32)
    K.rms_norm(x, w)
    assert fake_npu.calls[0].arguments["gamma"].dtype == torch.bfloat16


def test_triton_declines_mismatched_weight() -> None:
    assert op_rms_norm.triton_check(torch.randn(2, 8), torch.randn(9)) is not None
    assert op_rms_norm.triton_check(torch.randn(2, 8), torch.randn(8)) is None
