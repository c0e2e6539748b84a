"""The one place that touches ``torch_npu``: imported lazily, only on the NPU path.

Tests replace the module with a fake through :func:`use`, which is the seam that lets the
argument layouts of the NPU bindings be checked on a machine without Ascend hardware.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any

_override: ModuleType | None = None


def torch_npu() -> ModuleType:
    """The ``torch_npu`` module; raises ImportError where it is not installed."""
    if _override is not None:
        return _override
    return importlib.import_module("torch_npu")


def argument_names(function: Any) -> tuple[str, ...] | None:
    """The schema's argument names of a torch_npu function, None where it has no schema to read.

    torch_npu's ``npu_*`` functions are ``torch.ops.npu`` packets (Ascend/pytorch@v7.1.0-pytorch2.6.0:
    torch_npu/__init__.py), so an argument a release added (``rotary_mode``, op-plugin 7.0.0) can be looked up
    instead of crashing an older release with an unknown keyword.
    """
    try:
        return tuple(argument.name for argument in function.default._schema.arguments)
    except AttributeError:
        return None


@contextmanager
def use(fake: ModuleType) -> Iterator[ModuleType]:
    """Make ``fake`` stand in for ``torch_npu`` inside the block."""
    global _override
    previous, _override = _override, fake
    try:
        yield fake
    finally:
        _override = previous
