"""Per chip generation: which fused ops run, and that the others fall back with one logged reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import structlog
import torch

import tandem.kernels as K
from tandem.kernels import capabilities, reference
from tandem.kernels.testing import assert_close
from tandem.runtime.model import rope_tables

ALL = ("npu_fusion_attention", "npu_rms_norm", "npu_rotary_mul", "npu_swiglu", "npu_cross_entropy_loss")
# From the 支持的型号 sections of Ascend/op-plugin@7.1.0:docs/context/*.md; unknown runs what every generation runs.
EXPECTED = {
    "ascend910": {"npu_rms_norm", "npu_rotary_mul"},
    "ascend910b": set(ALL),
    "ascend910c": {"npu_rms_norm", "npu_rotary_mul", "npu_cross_entropy_loss"},
    "unknown": {"npu_rms_norm", "npu_rotary_mul"},
}
OP_OF = {
    "npu_fusion_attention": "attention",
    "npu_rms_norm": "rms_norm",
    "npu_rotary_mul": "apply_rope",
    "npu_swiglu": "swiglu",
    "npu_cross_entropy_loss": "fused_linear_cross_entropy",
}


@pytest.mark.parametrize(
    ("value", "generation"),
    [
        ("ascend910", "ascend910"),
        ("ascend910b", "ascend910b"),
        ("ascend910c", "ascend910c"),
        ("", "unknown"),
        ("Ascend910B", "unknown"),  # exactly the operator's values; a chip name is not one
        ("910b", "unknown"),
        (" ascend910b", "unknown"),
        ("ascend950", "unknown"),
    ],
)
def test_chip_generation_reads_the_exact_value(monkeypatch: pytest.MonkeyPatch, value: str, generation: str) -> None:
    monkeypatch.setenv("TANDEM_CHIP_GENERATION", value)
    assert capabilities.chip_generation() == generation


def test_unset_generation_is_unknown() -> None:
    assert capabilities.chip_generation() == "unknown"


def test_table_per_generation() -> None:
    assert {generation: set(names) for generation, names in capabilities.table().items()} == EXPECTED
    for binding in capabilities.BINDINGS.values():
        assert binding.source.startswith("Ascend/op-plugin@7.1.0:docs/context/") and binding.since


def _five_calls() -> dict[str, Callable[[], torch.Tensor]]:
    """One call per op, inside every generation's limits (head_dim 128 for the Atlas training series' RoPE)."""
    torch.manual_seed(0)
    x = torch.randn(2, 4, 2, 128)
    cos, sin = rope_tables(4, 128, 10000.0, torch.device("cpu"))
    h, w, t = torch.randn(6, 8), torch.randn(20, 8), torch.randint(0, 20, (6,))
    return {
        "rms_norm": lambda: K.rms_norm(x, torch.ones(128)),
        "swiglu": lambda: K.swiglu(x, x),
        "apply_rope": lambda: K.apply_rope(x, cos, sin),
        "fused_linear_cross_entropy": lambda: K.fused_linear_cross_entropy(h, w, t),
        "attention": lambda: K.attention(x, x[:, :, :1], x[:, :, :1]),
    }


@pytest.mark.parametrize(("chip", "env"), [(g, "same") for g in ("ascend910", "ascend910b", "ascend910c")]
                         + [("ascend910b", None), ("ascend910c", "Ascend910_9391")])  # fmt: skip
def test_each_generation_runs_its_documented_ops_and_falls_back_from_the_rest(
    npu_chip: Callable[..., Any], chip: str, env: str | None
) -> None:
    """The fake chip refuses an undocumented op, so a dispatcher that called one would fail here."""
    device = npu_chip(chip, env=env)
    generation = capabilities.chip_generation()
    expected = EXPECTED[generation]
    calls = _five_calls()
    with structlog.testing.capture_logs() as logs:
        for _ in range(2):  # the fallback line once per reason, not per call
            for call in calls.values():
                assert torch.isfinite(call()).all()
    assert set(device.names()) == expected
    fallbacks = [e for e in logs if e["event"] == "kernel_fallback"]
    assert sorted(e["op"] for e in fallbacks) == sorted(OP_OF[name] for name in set(ALL) - expected)
    for event in fallbacks:
        assert event["wanted"] == "npu" and "documented for" in event["reason"]
        if generation == "unknown":
            assert "TANDEM_CHIP_GENERATION" in event["reason"]


def test_fallbacks_on_ascend910_give_the_reference_values(npu_chip: Callable[..., Any]) -> None:
    npu_chip("ascend910")
    torch.manual_seed(1)
    q = torch.randn(1, 6, 4, 16)
    kv = torch.randn(1, 6, 2, 16)
    assert_close(K.attention(q, kv, kv), reference.attention(q, kv, kv))
    h, w, t = torch.randn(5, 8), torch.randn(30, 8), torch.randint(0, 30, (5,))
    assert_close(K.fused_linear_cross_entropy(h, w, t), reference.fused_linear_cross_entropy(h, w, t))
    g, u = torch.randn(3, 10), torch.randn(3, 10)
    assert_close(K.swiglu(g, u), reference.swiglu(g, u))
