"""Which implementation runs a call: by the tensor's device, overridable with ``TANDEM_KERNELS``.

``auto`` (default): CUDA tensors -> Triton kernels, NPU tensors -> torch_npu fused ops, anything
else -> the plain-torch path. ``reference`` / ``triton`` / ``npu`` force one implementation.
When the wanted implementation cannot run (not installed, wrong device, an op the chip generation
does not document, an argument past a documented limit), the call falls back to the plain-torch
path and says so once per (op, implementation, reason): a silent fallback would hide a 2x
slowdown, a log line per call would drown the training log.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
import torch

from tandem.kernels import _npu, _triton, capabilities

MODES = ("auto", "reference", "triton", "npu")

log = structlog.get_logger("tandem.kernels")

Impl = Callable[..., Any]
# Returns why an implementation cannot take these arguments, or None when it can.
Check = Callable[..., str | None]


@dataclass(frozen=True)
class KernelOp:
    """The implementations of one op, all with the public function's signature."""

    name: str
    reference: Impl
    triton: Impl | None = None
    triton_check: Check | None = None
    npu: Impl | None = None
    npu_check: Check | None = None
    # The torch_npu functions the binding calls: older torch_npu releases lack some of them.
    npu_requires: tuple[str, ...] = ()
    # False where the "triton" slot is not a Triton kernel (attention uses SDPA's CUDA kernels).
    triton_needs_triton: bool = True
    # The plain-torch path for CPUs and fallbacks when it is not the reference itself: the fused
    # cross-entropy's reference materialises the logits, which is what that op exists to avoid,
    # and attention's reference materialises the scores where SDPA's CPU kernel does not.
    plain: Impl | None = None

    @property
    def fallback(self) -> tuple[str, Impl]:
        return ("plain", self.plain) if self.plain is not None else ("reference", self.reference)


@dataclass(frozen=True)
class Choice:
    name: str  # reference | plain | triton | npu
    impl: Impl
    reason: str | None = None  # why the wanted implementation was not taken


def mode() -> str:
    value = os.environ.get("TANDEM_KERNELS", "auto").strip().lower() or "auto"
    if value not in MODES:
        # A typo must not silently pick another implementation.
        raise ValueError(f"TANDEM_KERNELS={value!r}: expected one of {', '.join(MODES)}")
    return value


def device_type(tensor: torch.Tensor) -> str:
    """The seam tests patch to route CPU tensors down the NPU path."""
    return tensor.device.type


def _unavailable(
    op: KernelOp, wanted: str, device: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str | None:
    if wanted == "triton":
        if not (device == "cuda" or (device == "cpu" and _triton.interpreting())):
            return f"Triton runs on CUDA tensors (or CPU tensors with TRITON_INTERPRET=1), not {device}"
        if op.triton is None:
            return "no Triton implementation"
        if op.triton_needs_triton and not _triton.installed():
            return "triton is not installed"
        return op.triton_check(*args, **kwargs) if op.triton_check and args else None
    if device != "npu":
        return f"torch_npu ops run on NPU tensors, not {device}"
    if op.npu is None:
        return "no torch_npu implementation"
    try:
        torch_npu = _npu.torch_npu()  # the only place torch_npu gets imported, and only for NPU tensors
    except ImportError:
        return "torch_npu is not importable"
    missing = [name for name in op.npu_requires if not hasattr(torch_npu, name)]
    if missing:
        return f"this torch_npu has no {', '.join(missing)}"
    # The function existing says nothing about the chip: one torch_npu build serves every SoC, so an op the
    # chip's generation is not documented for is found only when it fails on the device (kernels/capabilities.py).
    generation = capabilities.chip_generation()
    for name in op.npu_requires:
        reason = capabilities.unsupported_reason(name, generation)
        if reason is not None:
            return reason
    return op.npu_check(*args, **kwargs) if op.npu_check and args else None


def choose(
    op: KernelOp, device: str, args: tuple[Any, ...] = (), kwargs: dict[str, Any] | None = None
) -> Choice:
    kwargs = kwargs or {}
    selected = mode()
    if selected == "reference":
        return Choice("reference", op.reference)
    wanted = {"cuda": "triton", "npu": "npu"}.get(device, "plain") if selected == "auto" else selected
    if wanted == "plain":
        name, impl = op.fallback
        return Choice(name, impl)
    reason = _unavailable(op, wanted, device, args, kwargs)
    if reason is None:
        return Choice(wanted, op.triton if wanted == "triton" else op.npu)  # type: ignore[arg-type]
    name, impl = op.fallback
    _log_once(op.name, wanted, name, reason)
    return Choice(name, impl, reason)


def call(op: KernelOp, tensor: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
    return choose(op, device_type(tensor), args, kwargs).impl(*args, **kwargs)


_logged: set[tuple[str, str, str]] = set()
_lock = threading.Lock()


def _log_once(op: str, wanted: str, used: str, reason: str) -> None:
    key = (op, wanted, reason)
    with _lock:
        if key in _logged:
            return
        _logged.add(key)
    log.warning("kernel_fallback", op=op, wanted=wanted, using=used, reason=reason)


def reset_fallback_log() -> None:
    """Forget which fallbacks were logged (tests check the line appears exactly once)."""
    with _lock:
        _logged.clear()
