"""The Ascend chip generations (docs/design.md#acceleratorpool, `chipGeneration`): the one vocabulary the runtime's
timeouts (tandem.runtime.timeouts) and the kernels' capability table (tandem.kernels.capabilities) share, the
pod-contract variable that carries it, and how a device or node name maps to it. No torch."""

from __future__ import annotations

from typing import Literal

Generation = Literal["ascend910", "ascend910b", "ascend910c", "unknown"]

ASCEND910: Generation = "ascend910"  # Atlas training series (Atlas 训练系列产品): 910A, 910 Pro, 910 Premium
ASCEND910B: Generation = "ascend910b"  # Atlas A2 training series (Atlas A2 训练系列产品)
ASCEND910C: Generation = "ascend910c"  # Atlas A3 training series (Atlas A3 训练系列产品)
UNKNOWN: Generation = "unknown"
KNOWN: tuple[Generation, ...] = (ASCEND910, ASCEND910B, ASCEND910C)

# The pool's `chipGeneration` in the pod contract; the device layer sets it from torch_npu's device name when the
# pool names none (after the supervisor has exported the HCCL timeouts: those then used the strictest ranges).
GENERATION_ENV = "TANDEM_CHIP_GENERATION"


def generation_of(text: str | None) -> Generation:
    """The chip generation a pool, a device or a node label names (`ascend910b`, `Ascend910B3`, `910C`...), else
    unknown."""
    name = (text or "").lower().replace("ascend", "").replace("-", "").strip()
    if name.startswith("910b"):
        return ASCEND910B
    if name.startswith(("910c", "910_93")):
        return ASCEND910C
    if name in ("910", "910a", "910pro", "910proa", "910prob", "910premiuma"):
        return ASCEND910
    return UNKNOWN


def named_generation(value: str | None) -> Generation:
    """The generation a value names exactly (one of KNOWN, as the pod contract writes it), else unknown."""
    return next((generation for generation in KNOWN if value == generation), UNKNOWN)
