"""Test and benchmark helpers: dtype tolerances, a CPU peak-memory meter, the Triton interpreter switch."""

from __future__ import annotations

import os
import sys
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

# Largest allowed max|actual - expected| / max|expected|, by the dtype of the computation.
# float32 implementations differ only in summation order; half types by a few roundings.
TOLERANCE: dict[torch.dtype, float] = {torch.float32: 2e-5, torch.float16: 3e-3, torch.bfloat16: 1e-2}


# Below this magnitude the error is taken as absolute: a gradient that is zero by the maths (one
# key under softmax) comes out as rounding noise, and noise over zero is no relative error.
MAGNITUDE_FLOOR = 1e-2


def relative_error(actual: torch.Tensor, expected: torch.Tensor) -> float:
    """max|actual - expected| over the larger of max|expected| and MAGNITUDE_FLOOR."""
    diff = (actual.double() - expected.double()).abs().max()
    return float(diff / expected.double().abs().max().clamp(min=MAGNITUDE_FLOOR))


def assert_close(
    actual: torch.Tensor, expected: torch.Tensor, dtype: torch.dtype | None = None, what: str = ""
) -> None:
    """Same shape and dtype, every value finite, relative error within the dtype's tolerance.

    Non-finite values fail even where both sides agree: a NaN must never pass as "close".
    """
    label = f"{what}: " if what else ""
    assert actual.shape == expected.shape, f"{label}shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    assert actual.dtype == expected.dtype, f"{label}dtype {actual.dtype} != {expected.dtype}"
    assert torch.isfinite(expected).all(), f"{label}the reference is not finite"
    assert torch.isfinite(actual).all(), f"{label}non-finite values in the result"
    if actual.numel() == 0:
        return
    tol = TOLERANCE[dtype or actual.dtype]
    err = relative_error(actual, expected)
    assert err <= tol, f"{label}relative error {err:.3g} > {tol:g} ({dtype or actual.dtype})"


HALF = (torch.float16, torch.bfloat16)


def _run(
    fn: Callable[..., torch.Tensor], leaves: Sequence[torch.Tensor], build: Callable[..., Sequence[Any]]
) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
    for leaf in leaves:
        leaf.grad = None
    out = fn(*build(*leaves))
    generator = torch.Generator().manual_seed(1234)
    out.backward(torch.randn(out.shape, generator=generator).to(out.dtype))
    return out.detach(), [None if leaf.grad is None else leaf.grad.clone() for leaf in leaves]


@contextmanager
def poisoned_allocations() -> Iterator[None]:
    """torch.empty / empty_like return NaN-filled floating tensors inside the block.

    An output element a kernel forgot to write then fails the comparison instead of passing on
    whatever the allocator's recycled memory held (possibly the reference's own result).
    """
    real_empty, real_empty_like = torch.empty, torch.empty_like

    def poison(t: torch.Tensor) -> torch.Tensor:
        if t.is_floating_point():
            with torch.no_grad():
                t.fill_(float("nan"))
        return t

    torch.empty = lambda *args, **kwargs: poison(real_empty(*args, **kwargs))  # type: ignore[assignment]
    torch.empty_like = lambda *args, **kwargs: poison(real_empty_like(*args, **kwargs))  # type: ignore[assignment]
    try:
        yield
    finally:
        torch.empty, torch.empty_like = real_empty, real_empty_like


def compare(
    impl: Callable[..., torch.Tensor],
    reference: Callable[..., torch.Tensor],
    leaves: Sequence[torch.Tensor],
    build: Callable[..., Sequence[Any]] | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Forward and gradients of ``impl`` against ``reference``, both on ``build(*leaves)``.

    ``build`` turns the leaf tensors into the call's arguments (views, slices, transposes), so
    non-contiguous inputs reach both implementations exactly alike and gradients land on the
    leaves. The same random output gradient drives both backward passes. With half-precision
    leaves the values are judged against the reference run on float64 copies of the leaves (the
    exact answer, up to the reference's own float32 accumulation): two half-precision results can
    each be within a rounding of the truth and still differ by two.
    """
    build = build or (lambda *ls: ls)
    tol_dtype = dtype or next((leaf.dtype for leaf in leaves if leaf.dtype in HALF), torch.float32)
    with poisoned_allocations():
        out, grads = _run(impl, leaves, build)
    if tol_dtype in HALF:
        # Judged against the float64 run below: of the reference on these leaves only its dtype counts.
        ref_dtype = reference(*build(*leaves)).dtype
    else:
        ref_out, ref_grads = _run(reference, leaves, build)
        ref_dtype = ref_out.dtype
    assert out.dtype == ref_dtype, f"forward dtype {out.dtype} != reference's {ref_dtype}"
    if tol_dtype in HALF:
        wide = [leaf.detach().double().requires_grad_(leaf.requires_grad) for leaf in leaves]
        ref_out, ref_grads = _run(reference, wide, build)
        ref_out, out = ref_out.double(), out.double()
        grads = [None if g is None else g.double() for g in grads]
        ref_grads = [None if g is None else g.double() for g in ref_grads]
    assert_close(out, ref_out, tol_dtype, "forward")
    for i, (grad, ref_grad) in enumerate(zip(grads, ref_grads, strict=True)):
        if ref_grad is None:
            assert grad is None, f"input {i}: a gradient where the reference has none"
            continue
        assert grad is not None, f"input {i}: no gradient"
        assert_close(grad, ref_grad, tol_dtype, f"gradient of input {i}")


class PeakMemory(TorchDispatchMode):
    """Peak bytes of CPU tensor storage allocated inside the block (torch has no CPU allocator stats).

    Counts every storage an op creates while the mode is active, until that storage is freed;
    tensors that existed before the block, and views of them, are not counted.
    """

    def __init__(self) -> None:
        super().__init__()
        self.current = 0
        self.peak = 0
        self._live: set[int] = set()

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        # Views, in-place and out= results share an input's storage: not an allocation (and the
        # input may predate the block, so it must not be counted now).
        inputs = {
            t.untyped_storage().data_ptr()
            for t in tree_flatten((args, kwargs))[0]
            if isinstance(t, torch.Tensor) and t.device.type == "cpu"
        }
        for t in tree_flatten(out)[0]:
            if isinstance(t, torch.Tensor) and t.device.type == "cpu":
                storage = t.untyped_storage()
                if storage.data_ptr() not in inputs:
                    self._track(storage)
        return out

    def _track(self, storage: torch.UntypedStorage) -> None:
        # The storage's Python object lives exactly as long as the storage (PyObject preservation).
        key = id(storage)
        if key in self._live or storage.nbytes() == 0:
            return
        self._live.add(key)
        self.current += storage.nbytes()
        self.peak = max(self.peak, self.current)
        weakref.finalize(storage, self._free, key, storage.nbytes())

    def _free(self, key: int, nbytes: int) -> None:
        self._live.discard(key)
        self.current -= nbytes


def use_triton_interpreter() -> None:
    """Make Triton kernels run on CPU tensors in this process (``TRITON_INTERPRET=1``).

    Triton fixes interpreter-or-compiler when its language module is imported, so the variable
    must be set first. Where Triton was already imported without it (another test compiled
    something), its pure-Python modules are dropped so the next import re-reads the variable; the
    compiled extension ``triton._C`` stays, it cannot be loaded twice in one process.
    """
    os.environ["TRITON_INTERPRET"] = "1"
    language = sys.modules.get("triton.language")
    if language is None or type(language.sum).__name__ == "InterpretedFunction":
        return
    for name in [m for m in sys.modules if m == "triton" or m.startswith("triton.")]:
        if not name.startswith("triton._C"):
            del sys.modules[name]
