"""Lazy Triton: kernels are plain functions here and are jit-compiled at their first launch.

Why not ``@triton.jit`` at import time: Triton decides between compiling for a GPU and its CPU
interpreter when ``triton`` (and every ``@jit`` in ``triton.language``) is first imported and
decorated. Importing ``tandem.kernels`` must not import Triton at all (the model imports it on
CPU and NPU machines too), and a test process that sets ``TRITON_INTERPRET=1`` after other
code already imported ``tandem.kernels`` must still get interpreted kernels.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from collections.abc import Callable
from types import ModuleType
from typing import Any

_TRUE = {"1", "true", "on", "yes"}


def interpreting() -> bool:
    """Whether Triton runs its CPU interpreter (``TRITON_INTERPRET``), read the way Triton reads it."""
    return os.environ.get("TRITON_INTERPRET", "0").strip().lower() in _TRUE


def installed() -> bool:
    """Whether ``triton`` can be imported, answered without importing it."""
    try:
        return importlib.util.find_spec("triton") is not None
    except (ImportError, ValueError):
        return False


def module() -> ModuleType:
    return importlib.import_module("triton")


def next_power_of_2(n: int) -> int:
    return 1 if n <= 1 else 1 << (n - 1).bit_length()


class LazyKernel:
    """A Triton kernel source function, compiled (or interpreted) on first launch.

    The kernel's module keeps a module-level ``tl`` placeholder; it is bound to the
    ``triton.language`` in ``sys.modules`` at launch, so a test harness that re-imports Triton
    in interpreter mode gets kernels that use the re-imported language.
    """

    def __init__(self, fn: Callable[..., None]) -> None:
        self.fn = fn
        self._compiled: dict[tuple[int, bool], Any] = {}

    def __getitem__(self, grid: tuple[int, ...]) -> Callable[..., Any]:
        triton = module()
        self.fn.__globals__["tl"] = importlib.import_module("triton.language")
        key = (id(triton), interpreting())
        kernel = self._compiled.get(key)
        if kernel is None:
            kernel = self._compiled[key] = triton.jit(self.fn)
        return kernel[grid]


def kernel(fn: Callable[..., None]) -> LazyKernel:
    return LazyKernel(fn)


def num_warps_for(block: int) -> int:
    """Warps per program for a row of ``block`` elements (the usual Triton norm heuristic)."""
    if block >= 32768:
        return 32
    if block >= 8192:
        return 16
    if block >= 2048:
        return 8
    return 4
