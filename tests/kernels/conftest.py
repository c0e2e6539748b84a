"""Kernel tests: Triton kernels run on CPU tensors under its interpreter; NPU bindings against a fake torch_npu
(fake_torch_npu.py: the real schemas, the documented limits, per chip generation).

TRITON_INTERPRET=1 is set when this file is imported, before any kernel launch imports Triton;
tandem.kernels itself never imports Triton at import time, so test modules collected earlier
that imported torch or tandem.kernels do not spoil it (and where something did import Triton,
use_triton_interpreter re-imports it in interpreter mode).
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tandem.kernels import _dispatch, _npu
from tandem.kernels.testing import use_triton_interpreter

use_triton_interpreter()


@pytest.fixture(autouse=True)
def _clean_kernel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("TANDEM_KERNELS", raising=False)
    monkeypatch.delenv("TANDEM_CHIP_GENERATION", raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    _dispatch.reset_fallback_log()
    yield
    _dispatch.reset_fallback_log()


@pytest.fixture
def kernels_mode(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def set_mode(mode: str) -> None:
        monkeypatch.setenv("TANDEM_KERNELS", mode)

    return set_mode


def _load_fake() -> ModuleType:
    """fake_torch_npu.py, imported once per process (its torch.library namespace can be declared only once)."""
    name = "tandem_tests_fake_torch_npu"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, Path(__file__).with_name("fake_torch_npu.py"))
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # before exec: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


fake = _load_fake()
Chip = fake.Chip


@pytest.fixture
def npu_chip(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., Any]]:
    """CPU tensors routed down the NPU path, onto a fake torch_npu running on a chip of the given generation.

    ``npu_chip("ascend910", env=None)``: the chip is an ascend910 and TANDEM_CHIP_GENERATION is unset (the
    default ``env`` names the chip, as the operator does from the pool's spec).
    """
    monkeypatch.setattr(_dispatch, "device_type", lambda tensor: "npu")
    with ExitStack() as stack:

        def make(generation: str, env: str | None = "same") -> Any:
            chip = Chip(generation)
            if env is None:
                monkeypatch.delenv("TANDEM_CHIP_GENERATION", raising=False)
            else:
                monkeypatch.setenv("TANDEM_CHIP_GENERATION", generation if env == "same" else env)
            stack.enter_context(fake.running_on(chip))
            stack.enter_context(_npu.use(chip.module))
            return chip

        yield make


@pytest.fixture
def fake_npu(npu_chip: Callable[..., Any]) -> Any:
    """An Atlas A2 (ascend910b), the one generation every fused op is documented for."""
    return npu_chip("ascend910b")


@pytest.fixture
def fake_torch_npu() -> ModuleType:
    """The fake's module (fake_torch_npu.py): SCHEMAS, SUPPORTED, Chip, running_on."""
    return fake
