"""The dispatcher: which implementation each device and TANDEM_KERNELS value gets, and its fallbacks."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from types import ModuleType

import pytest
import structlog
import torch

import tandem.kernels as K
from tandem.kernels import _dispatch, _npu, _triton, op_attention, op_cross_entropy, op_rms_norm, reference

# (mode, device) -> implementation chosen for rms_norm, with Triton installed and interpreting
# and a (fake) torch_npu importable.
EXPECTED = {
    ("auto", "cpu"): "reference",
    ("auto", "cuda"): "triton",
    ("auto", "npu"): "npu",
    ("reference", "cuda"): "reference",
    ("reference", "npu"): "reference",
    ("triton", "cpu"): "triton",  # TRITON_INTERPRET=1
    ("triton", "cuda"): "triton",
    ("triton", "npu"): "reference",  # fallback
    ("npu", "cpu"): "reference",  # fallback
    ("npu", "cuda"): "reference",  # fallback
    ("npu", "npu"): "npu",
}


@pytest.mark.parametrize(("mode", "device"), list(EXPECTED), ids=lambda v: str(v))
def test_choice_by_mode_and_device(kernels_mode: Callable[[str], None], mode: str, device: str) -> None:
    kernels_mode(mode)
    with _npu.use(_module_with("npu_rms_norm")):
        choice = _dispatch.choose(op_rms_norm.OP, device)
    assert choice.name == EXPECTED[(mode, device)]
    assert (choice.reason is not None) == (EXPECTED[(mode, device)] != mode and mode != "auto")


def _module_with(*names: str) -> ModuleType:
    module = ModuleType("torch_npu")
    for name in names:
        setattr(module, name, lambda *args, **kwargs: None)
    return module


def test_older_torch_npu_without_the_op_falls_back() -> None:
    with _npu.use(_module_with("npu_rms_norm")):
        choice = _dispatch.choose(op_cross_entropy.OP, "npu")
    assert choice.name == "plain" and choice.reason == "this torch_npu has no npu_cross_entropy_loss"


def test_plain_path_differs_from_reference_where_the_reference_materialises() -> None:
    assert _dispatch.choose(op_cross_entropy.OP, "cpu").impl is op_cross_entropy.chunked_torch
    assert _dispatch.choose(op_attention.OP, "cpu").impl is op_attention.sdpa_attention


def test_unknown_mode_is_an_error(kernels_mode: Callable[[str], None]) -> None:
    kernels_mode("cuda")
    with pytest.raises(ValueError, match="TANDEM_KERNELS"):
        K.rms_norm(torch.randn(2, 4), torch.ones(4))


def test_fallback_is_logged_once_with_the_reason(
    kernels_mode: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernels_mode("triton")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    x, w = torch.randn(3, 8), torch.randn(8)
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            torch.testing.assert_close(K.rms_norm(x, w), op_rms_norm.reference(x, w))
    fallbacks = [e for e in logs if e["event"] == "kernel_fallback"]
    assert len(fallbacks) == 1
    assert fallbacks[0]["op"] == "rms_norm" and fallbacks[0]["wanted"] == "triton"
    assert fallbacks[0]["using"] == "reference" and "TRITON_INTERPRET" in fallbacks[0]["reason"]


def test_missing_triton_falls_back_but_sdpa_needs_no_triton(
    kernels_mode: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    kernels_mode("triton")
    monkeypatch.setattr(_triton, "installed", lambda: False)
    choice = _dispatch.choose(op_rms_norm.OP, "cuda")
    assert choice.name == "reference" and choice.reason == "triton is not installed"
    assert _dispatch.choose(op_attention.OP, "cuda").name == "triton"  # the SDPA slot


def test_unsupported_arguments_fall_back(kernels_mode: Callable[[str], None]) -> None:
    kernels_mode("triton")
    x, w = torch.randn(2, 8), torch.randn(8)
    cos = torch.randn(4, 8, requires_grad=True)
    choice = _dispatch.choose(K.op_rope.OP, "cpu", (torch.randn(1, 4, 1, 8), cos, cos.detach()))
    assert choice.name == "reference" and "cos/sin" in (choice.reason or "")
    assert _dispatch.choose(op_rms_norm.OP, "cpu", (x, w)).name == "triton"


def test_torch_npu_is_imported_only_for_npu_tensors(
    kernels_mode: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    imports: list[str] = []

    def importing() -> ModuleType:
        imports.append("torch_npu")
        raise ImportError("no torch_npu here")

    monkeypatch.setattr(_npu, "torch_npu", importing)
    for mode in ("auto", "npu"):
        kernels_mode(mode)
        _five_ops()
        _dispatch.choose(op_rms_norm.OP, "cuda")
    assert imports == []
    kernels_mode("auto")
    choice = _dispatch.choose(op_rms_norm.OP, "npu")
    assert imports == ["torch_npu"]
    assert choice.name == "reference" and choice.reason == "torch_npu is not importable"


def _five_ops() -> list[torch.Tensor]:
    x = torch.randn(2, 4, 2, 8)
    cos, sin = torch.randn(4, 8), torch.randn(4, 8)
    h, w, t = torch.randn(6, 8), torch.randn(20, 8), torch.randint(0, 20, (6,))
    return [
        K.rms_norm(x, torch.ones(8)),
        K.swiglu(x, x),
        K.apply_rope(x, cos, sin),
        K.fused_linear_cross_entropy(h, w, t),
        K.attention(x, x[:, :, :1], x[:, :, :1]),
    ]


def test_reference_mode_is_the_reference_exactly(kernels_mode: Callable[[str], None]) -> None:
    kernels_mode("reference")
    torch.manual_seed(0)
    got = _five_ops()
    torch.manual_seed(0)
    x = torch.randn(2, 4, 2, 8)
    cos, sin = torch.randn(4, 8), torch.randn(4, 8)
    h, w, t = torch.randn(6, 8), torch.randn(20, 8), torch.randint(0, 20, (6,))
    want = [
        reference.rms_norm(x, torch.ones(8)),
        reference.swiglu(x, x),
        reference.apply_rope(x, cos, sin),
        reference.fused_linear_cross_entropy(h, w, t),
        reference.attention(x, x[:, :, :1], x[:, :, :1]),
    ]
    for a, b in zip(got, want, strict=True):
        assert torch.equal(a, b)


def test_interpreter_works_however_late_it_is_switched_on() -> None:
    """A fresh process that imports torch, tandem.kernels and even Triton (compiled mode) first."""
    script = textwrap.dedent(
        """
        import os, sys
        import torch
        import tandem.kernels as K
        assert "triton" not in sys.modules, "importing tandem.kernels imported triton"
        x, w = torch.randn(3, 40), torch.randn(40)
        K.rms_norm(x, w)
        assert "triton" not in sys.modules, "a CPU call imported triton"
        import triton.language  # another test compiled something: Triton is in compiled mode
        from tandem.kernels.testing import use_triton_interpreter
        use_triton_interpreter()
        os.environ["TANDEM_KERNELS"] = "triton"
        from tandem.kernels import _dispatch, op_rms_norm
        assert _dispatch.choose(op_rms_norm.OP, "cpu", (x, w)).name == "triton"
        torch.testing.assert_close(K.rms_norm(x, w), op_rms_norm.reference(x, w))
        print("ok")
        """
    )
    env = {k: v for k, v in os.environ.items() if k not in ("TRITON_INTERPRET", "TANDEM_KERNELS")}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-3000:]
