"""The one place that touches ``torch_npu``: imported lazily, only on the NPU path.

Tests replace the module with a fake through :func:`use`, which is the seam that lets the
argument layouts of the NPU bindings be checked on a machine without Ascend hardware.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

_override: ModuleType | None = None


def torch_npu() -> ModuleType:
    """The ``torch_npu`` module; raises ImportError where it is not installed."""
    if _override is not None:
        return _override
    return importlib.import_module("torch_npu")


@contextmanager
def use(fake: ModuleType) -> Iterator[ModuleType]:
    """Make ``fake`` stand in for ``torch_npu`` inside the block."""
    global _override
    previous, _override = _override, fake
    try:
        yield fake
    finally:
        _override = previous
