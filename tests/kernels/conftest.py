"""Kernel tests: Triton kernels run on CPU tensors under its interpreter; NPU bindings against a fake.

TRITON_INTERPRET=1 is set when this file is imported, before any kernel launch imports Triton;
tandem.kernels itself never imports Triton at import time, so test modules collected earlier
that imported torch or tandem.kernels do not spoil it (and where something did import Triton,
use_triton_interpreter re-imports it in interpreter mode).
"""

from __future__ import annotations

import types
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import torch
import torch.nn.functional as F

from tandem.kernels import _dispatch, _npu
from tandem.kernels.testing import use_triton_interpreter

use_triton_interpreter()


@pytest.fixture(autouse=True)
def _clean_kernel_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("TANDEM_KERNELS", raising=False)
    monkeypatch.setenv("TRITON_INTERPRET", "1")
    _dispatch.reset_fallback_log()
    yield
    _dispatch.reset_fallback_log()


@pytest.fixture
def kernels_mode(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    def set_mode(mode: str) -> None:
        monkeypatch.setenv("TANDEM_KERNELS", mode)

    return set_mode


class FakeTorchNpu(types.ModuleType):
    """Stands in for torch_npu: checks argument layouts as documented, computes with plain torch.

    Each op raises where the documented contract would be broken, so a binding that passes the
    wrong layout fails here rather than on an Ascend machine. Calls are recorded for assertions.
    """

    def __init__(self) -> None:
        super().__init__("torch_npu")
        self.calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def names(self) -> list[str]:
        return [name for name, _, _ in self.calls]

    def npu_rms_norm(
        self, x: torch.Tensor, gamma: torch.Tensor, epsilon: float = 1e-6
    ) -> tuple[torch.Tensor, ...]:
        self.calls.append(("npu_rms_norm", (x, gamma), {"epsilon": epsilon}))
        assert gamma.dtype == x.dtype, "gamma must have self's dtype"
        assert tuple(gamma.shape) == tuple(x.shape[x.dim() - gamma.dim() :]), "gamma matches x's last dims"
        rstd = torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + epsilon)
        return (x.float() * rstd * gamma.float()).to(x.dtype), rstd

    def npu_rotary_mul(self, x: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor) -> torch.Tensor:
        self.calls.append(("npu_rotary_mul", (x, r1, r2), {}))
        assert x.dim() == r1.dim() == r2.dim() == 4, "4-D tensors"
        assert r1.shape == r2.shape and r1.dtype == r2.dtype == x.dtype
        batch, seq, _, dim = x.shape  # BSND: r1/r2 must be 1S1D, BS1D or BSND
        assert r1.shape[0] in (1, batch) and r1.shape[1] == seq and r1.shape[3] == dim, "r1 layout for BSND"
        assert dim % 2 == 0
        x1, x2 = x.chunk(2, dim=-1)
        return r1 * x + r2 * torch.cat((-x2, x1), dim=-1)

    def npu_swiglu(self, x: torch.Tensor, dim: int = -1) -> torch.Tensor:
        self.calls.append(("npu_swiglu", (x,), {"dim": dim}))
        assert x.is_contiguous(), "npu_swiglu does not take non-contiguous tensors"
        assert x.shape[dim] % 2 == 0
        a, b = x.chunk(2, dim=dim)
        return F.silu(a) * b

    def npu_fusion_attention(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        head_num: int,
        input_layout: str,
        pse: Any = None,
        padding_mask: Any = None,
        atten_mask: torch.Tensor | None = None,
        scale: float = 1.0,
        keep_prob: float = 1.0,
        pre_tockens: int = 2147483647,
        next_tockens: int = 2147483647,
        inner_precise: int = 0,
        prefix: Any = None,
        actual_seq_qlen: Any = None,
        actual_seq_kvlen: Any = None,
        sparse_mode: int = 0,
        gen_mask_parallel: bool = True,
        sync: bool = False,
    ) -> tuple[Any, ...]:
        self.calls.append(
            (
                "npu_fusion_attention",
                (query, key, value, head_num, input_layout),
                {
                    "atten_mask": atten_mask,
                    "scale": scale,
                    "keep_prob": keep_prob,
                    "sparse_mode": sparse_mode,
                },
            )
        )
        assert input_layout == "BSND" and query.dim() == 4
        assert head_num == query.shape[2] and head_num % key.shape[2] == 0, "head_num = query heads, N2 | N1"
        assert key.shape == value.shape
        q, k, v = (t.transpose(1, 2).float() for t in (query, key, value))
        groups = head_num // key.shape[2]
        k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
        scores = q @ k.transpose(-1, -2) * scale
        if sparse_mode == 2:  # leftUpCausal with the compressed 2048x2048 mask
            assert atten_mask is not None and atten_mask.dtype == torch.bool
            assert tuple(atten_mask.shape) == (2048, 2048)
            assert torch.equal(atten_mask, torch.ones(2048, 2048, dtype=torch.bool).triu(1))
            seq_q, seq_k = scores.shape[-2:]
            scores = scores.masked_fill(atten_mask[:seq_q, :seq_k], float("-inf"))
        else:
            assert sparse_mode == 0 and atten_mask is None
        out = (scores.softmax(-1) @ v).transpose(1, 2).to(query.dtype)
        empty = torch.empty(0)
        return out, empty, empty, empty, 0, 0, 0

    def npu_cross_entropy_loss(
        self,
        input: torch.Tensor,
        target: torch.Tensor,
        weight: Any = None,
        reduction: str = "mean",
        ignore_index: int = -100,
        label_smoothing: float = 0.0,
        lse_square_scale_for_zloss: float = 0.0,
        return_zloss: bool = False,
    ) -> tuple[torch.Tensor, ...]:
        self.calls.append(
            (
                "npu_cross_entropy_loss",
                (input, target),
                {"reduction": reduction, "ignore_index": ignore_index, "label_smoothing": label_smoothing},
            )
        )
        assert input.dim() == 2 and target.dtype == torch.int64 and 0 < input.shape[0] <= 200000
        assert ignore_index < input.shape[1]
        assert lse_square_scale_for_zloss == 0.0 and not return_zloss, "z-loss is not supported yet"
        if ignore_index < 0:  # negative: nothing is ignored, every target must be a class
            assert bool(((target >= 0) & (target < input.shape[1])).all()), "target outside [0, C)"
        log_prob = input.float().log_softmax(-1)
        loss = -(1 - label_smoothing) * log_prob.gather(1, target[:, None]).squeeze(1)
        loss = loss - label_smoothing * log_prob.mean(-1)
        assert reduction == "none"
        empty = torch.empty(0)
        return loss.to(input.dtype), log_prob.to(input.dtype), empty, empty


@pytest.fixture
def fake_npu(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeTorchNpu]:
    """CPU tensors routed down the NPU path, torch_npu replaced by the fake."""
    fake = FakeTorchNpu()
    monkeypatch.setattr(_dispatch, "device_type", lambda tensor: "npu")
    with _npu.use(fake):
        yield fake
