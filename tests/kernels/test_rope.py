"""RoPE: Triton (interpreted on CPU) and the NPU binding (fake torch_npu) against the reference."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import tandem.kernels as K
from tandem.kernels import _dispatch, op_rope
from tandem.kernels.testing import compare
from tandem.runtime.model import rope_tables


def _tables(positions: int, dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's cos/sin tables (theta 10000) on the CPU."""
    return rope_tables(positions, dim, 10000.0, torch.device("cpu"))


def _triton(offset: int | torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> Callable[..., torch.Tensor]:
    return lambda x: op_rope.triton_apply_rope(x, cos, sin, offset)


def _reference(
    offset: int | torch.Tensor, cos: torch.Tensor, sin: torch.Tensor
) -> Callable[..., torch.Tensor]:
    return lambda x: op_rope.reference(x, cos, sin, offset)


# (x leaf shape, build, offset): head_dim 12 (half not a power of two), one token, offsets as
# an int and per sequence, and q as a strided view into a fused qkv projection.
CASES: dict[str, tuple[tuple[int, ...], Callable[[torch.Tensor], torch.Tensor], int | list[int]]] = {
    "basic": ((2, 5, 3, 16), lambda x: x, 0),
    "head-dim-12": ((2, 4, 5, 12), lambda x: x, 3),
    "single-token": ((1, 1, 1, 8), lambda x: x, 9),
    "per-sequence-offsets": ((3, 4, 2, 8), lambda x: x, [0, 5, 2]),
    "q-of-fused-qkv": ((2, 6, 3 * 4, 16), lambda qkv: qkv[:, :, :4], 1),
}


@pytest.mark.parametrize("case", list(CASES))
def test_triton_matches_reference_float32(case: str) -> None:
    shape, build, offset = CASES[case]
    torch.manual_seed(0)
    cos, sin = _tables(16, shape[-1])
    off = torch.tensor(offset) if isinstance(offset, list) else offset
    x = torch.randn(shape, requires_grad=True)
    compare(_triton(off, cos, sin), _reference(off, cos, sin), [x], lambda leaf: (build(leaf),))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float16], ids=str)
def test_triton_matches_reference_by_dtype(dtype: torch.dtype) -> None:
    torch.manual_seed(1)
    cos, sin = _tables(10, 32)
    x = torch.randn(2, 7, 4, 32).to(dtype).requires_grad_()
    compare(_triton(2, cos, sin), _reference(2, cos, sin), [x])


def test_rotation_keeps_norms_and_offset_equals_shifted_table() -> None:
    cos, sin = _tables(12, 8)
    x = torch.randn(1, 4, 2, 8)
    y = op_rope.triton_apply_rope(x, cos, sin, 5)
    torch.testing.assert_close(y.norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(y, op_rope.triton_apply_rope(x, cos[5:9], sin[5:9], 0))


def test_public_function_takes_the_triton_path(kernels_mode: Callable[[str], None]) -> None:
    kernels_mode("triton")
    cos, sin = _tables(8, 16)
    x = torch.randn(2, 8, 2, 16)
    assert _dispatch.choose(op_rope.OP, "cpu", (x, cos, sin)).name == "triton"
    torch.testing.assert_close(K.apply_rope(x, cos, sin), op_rope.reference(x, cos, sin))


def test_triton_declines_trainable_tables() -> None:
    cos, sin = _tables(4, 8)
    assert op_rope.triton_check(torch.randn(1, 4, 1, 8), cos.requires_grad_(), sin) is not None


@pytest.mark.parametrize(
    ("shape", "table", "offset"),
    [
        ((1, 4, 2, 7), (8, 7), 0),
        ((1, 4, 2, 8), (8, 6), 0),
        ((1, 4, 2, 8), (8, 8), 5),
        ((2, 4, 2, 8), (8, 8), [0]),
    ],
)
def test_bad_shapes_and_offsets_are_refused(
    shape: tuple[int, ...], table: tuple[int, int], offset: object
) -> None:
    off = torch.tensor(offset) if isinstance(offset, list) else offset
    with pytest.raises(ValueError):
        K.apply_rope(torch.randn(shape), torch.randn(table), torch.randn(table), position_offset=off)  # type: ignore[arg-type]


@pytest.mark.parametrize("offset", [3, [1, 0]], ids=["int-offset", "per-sequence"])
def test_npu_binding_layout_and_values(fake_npu, offset: int | list[int]) -> None:  # type: ignore[no-untyped-def]
    torch.manual_seed(2)
    cos, sin = _tables(12, 16)
    off = torch.tensor(offset) if isinstance(offset, list) else offset
    x = torch.randn(2, 5, 3, 16, dtype=torch.bfloat16, requires_grad=True)
    compare(lambda x: K.apply_rope(x, cos, sin, position_offset=off), _reference(off, cos, sin), [x])
    call = fake_npu.calls[0]
    args = call.arguments
    assert call.name == "npu_rotary_mul" and args["rotary_mode"] == "half"
    expected = (1, 5, 1, 16) if isinstance(offset, int) else (2, 5, 1, 16)  # 1S1D / BS1D for BSND x
    assert args["r1"].shape == args["r2"].shape == expected
    assert args["r1"].dtype == args["self"].dtype == torch.bfloat16
