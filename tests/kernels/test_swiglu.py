"""SwiGLU: Triton (interpreted on CPU) and the NPU binding (fake torch_npu) against the reference."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import tandem.kernels as K
from tandem.kernels import _dispatch, op_swiglu
from tandem.kernels.testing import compare


def _pair(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x, y


def _halves(gu: torch.Tensor) -> tuple[torch.Tensor, ...]:
    return tuple(gu.chunk(2, dim=-1))  # one fused gate/up projection: both halves non-contiguous


# (leaf shapes, build)
CASES: dict[str, tuple[list[tuple[int, ...]], Callable[..., tuple[torch.Tensor, ...]]]] = {
    "single-row": ([(1, 11), (1, 11)], _pair),
    "3d-width-1000": ([(2, 3, 1000), (2, 3, 1000)], _pair),  # more than one column block
    "halves-of-fused-projection": ([(4, 5, 2 * 37)], _halves),
    "transposed": ([(24, 6), (24, 6)], lambda g, u: (g.t(), u.t())),
}


@pytest.mark.parametrize("case", list(CASES))
def test_triton_matches_reference_float32(case: str) -> None:
    shapes, build = CASES[case]
    torch.manual_seed(0)
    leaves = [torch.randn(shape, requires_grad=True) for shape in shapes]
    compare(op_swiglu.triton_swiglu, op_swiglu.reference, leaves, build)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_triton_matches_reference_by_dtype(dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    leaves = [torch.randn(3, 7, 52).to(dtype).requires_grad_() for _ in range(2)]
    compare(op_swiglu.triton_swiglu, op_swiglu.reference, leaves)


@pytest.mark.filterwarnings("ignore:overflow encountered in exp:RuntimeWarning")  # numpy, in the interpreter
def test_large_negative_gate_gives_zero_not_nan() -> None:
    gate = torch.tensor([[-1e4, -100.0, 0.0, 100.0]])
    up = torch.ones_like(gate)
    y = op_swiglu.triton_swiglu(gate, up)
    assert torch.isfinite(y).all()
    torch.testing.assert_close(y, op_swiglu.reference(gate, up))


def test_public_function_takes_the_triton_path(kernels_mode: Callable[[str], None]) -> None:
    kernels_mode("triton")
    g, u = torch.randn(3, 20), torch.randn(3, 20)
    assert _dispatch.choose(op_swiglu.OP, "cpu", (g, u)).name == "triton"
    torch.testing.assert_close(K.swiglu(g, u), op_swiglu.reference(g, u))


def test_triton_declines_broadcasting() -> None:
    assert op_swiglu.triton_check(torch.randn(2, 8), torch.randn(8)) is not None


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16], ids=str)
def test_npu_binding_layout_and_values(fake_npu, dtype: torch.dtype) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(2)
    leaves = [torch.randn(2, 3, 2 * 24).to(dtype).requires_grad_()]
    compare(K.swiglu, op_swiglu.reference, leaves, _halves)
    call = fake_npu.calls[0]
    assert call.name == "npu_swiglu" and call.arguments["dim"] == -1
    assert call.arguments["self"].shape == (2, 3, 48) and call.arguments["self"].is_contiguous()
