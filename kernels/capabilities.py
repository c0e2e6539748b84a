"""Which torch_npu fused ops each Ascend chip generation runs, as the torch_npu documentation lists them.

The target stack is torch_npu 2.6.0 (Ascend/pytorch tag v7.1.0-pytorch2.6.0) with op-plugin 7.1.0. Each
binding's "supported models" (支持的型号) section in op-plugin's docs/context/*.md at branch 7.1.0 is the source
of the generations below; ``since`` is the first op-plugin branch whose op_plugin/config/*op_plugin_functions.yaml
declares the function (5.0.rc3 is the oldest branch in that repository, so "5.0.rc3" means "5.0.rc3 or older").

The chip generation comes from ``TANDEM_CHIP_GENERATION`` (the operator sets it from the pool's
spec.chipGeneration, operator/podspec.py). ``unknown`` is treated as "could be any of the three": an op runs only
where every generation supports it, under the strictest generation's limits. A guess that is wrong is an error on
the device mid-training (or an aicore timeout), while a fallback costs speed and says so once in the log, naming
the variable that lifts it; so the conservative reading wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from tandem.chips import ASCEND910, ASCEND910B, ASCEND910C, KNOWN, UNKNOWN, Generation, named_generation
from tandem.chips import GENERATION_ENV as ENV

__all__ = ["ASCEND910", "ASCEND910B", "ASCEND910C", "ENV", "KNOWN", "UNKNOWN", "Generation"]

_DOCS = "Ascend/op-plugin@7.1.0:docs/context/"
_BETA = "\uff08beta\uff09"  # the beta pages' names open with full-width parentheses: "（beta）"  # noqa: RUF003


@dataclass(frozen=True)
class Binding:
    """One torch_npu function a kernel binding calls."""

    function: str
    generations: frozenset[Generation]  # where the 7.1.0 docs list it as supported
    since: str  # first op-plugin branch whose schema has it
    source: str  # the documentation page the generations come from


BINDINGS: dict[str, Binding] = {
    binding.function: binding
    for binding in (
        # 支持的型号: Atlas A2 训练系列产品 only, at 7.1.0 and still at 7.2.0, 7.3.0 and master (checked);
        # CANN 7.0.0's aclnnFlashAttentionScore page says outright that the Atlas training series does not have it:
        # https://www.hiascend.com/document/detail/zh/canncommercial/700/inferapplicationdev/aclcppdevg/aclcppdevg_03_0183.html
        Binding(
            "npu_fusion_attention",
            frozenset({ASCEND910B}),
            "5.0.rc3",
            _DOCS + "torch_npu-npu_fusion_attention.md",
        ),
        # 支持的型号: Atlas 训练系列产品, Atlas A2, Atlas A3 (and inference series).
        Binding(
            "npu_rms_norm",
            frozenset({ASCEND910, ASCEND910B, ASCEND910C}),
            "5.0.0",
            _DOCS + _BETA + "torch_npu-npu_rms_norm.md",
        ),
        # 支持的型号: Atlas 训练系列产品, Atlas A2, Atlas A3 (and inference series); rotary_mode since 7.0.0.
        Binding(
            "npu_rotary_mul",
            frozenset({ASCEND910, ASCEND910B, ASCEND910C}),
            "5.0.rc3",
            _DOCS + "torch_npu-npu_rotary_mul.md",
        ),
        # 支持的型号: Atlas A2 训练系列产品 only, at 7.1.0 and still at 7.2.0, 7.3.0 and master (checked).
        Binding(
            "npu_swiglu",
            frozenset({ASCEND910B}),
            "6.0.rc1",
            _DOCS + _BETA + "torch_npu-npu_swiglu.md",
        ),
        # 支持的型号: Atlas A2 训练系列产品, Atlas A3 训练系列产品.
        Binding(
            "npu_cross_entropy_loss",
            frozenset({ASCEND910B, ASCEND910C}),
            "7.0.0",
            _DOCS + "torch_npu-npu_cross_entropy_loss.md",
        ),
    )
}


def chip_generation() -> Generation:
    """The generation ``TANDEM_CHIP_GENERATION`` names, exactly one of KNOWN; anything else is ``unknown``."""
    return named_generation(os.environ.get(ENV))


def possible(generation: Generation) -> tuple[Generation, ...]:
    """The generations a call may be running on: the one named, or all of them when it is unknown."""
    return KNOWN if generation == UNKNOWN else (generation,)


def supported(function: str, generation: Generation) -> bool:
    binding = BINDINGS.get(function)
    return binding is not None and all(g in binding.generations for g in possible(generation))


def unsupported_reason(function: str, generation: Generation) -> str | None:
    """Why ``function`` may not run on ``generation`` (the fallback's log line), or None."""
    if supported(function, generation):
        return None
    binding = BINDINGS.get(function)
    if binding is None:
        return f"{function} has no entry in the chip capability table"
    listed = ", ".join(sorted(binding.generations))
    if generation == UNKNOWN:
        return f"{function} is documented for {listed} only and {ENV} names no chip generation"
    return f"{function} is documented for {listed}, not {generation}"


def table() -> dict[Generation, tuple[str, ...]]:
    """Per generation (unknown included), the fused functions that run there."""
    return {
        generation: tuple(name for name in BINDINGS if supported(name, generation))
        for generation in (*KNOWN, UNKNOWN)
    }
