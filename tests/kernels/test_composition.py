"""The five ops composed as one decoder layer plus LM head, the way the training core uses them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch

import tandem.kernels as K
from tandem.kernels.testing import assert_close
from tandem.runtime.model import rope_tables

BATCH, SEQ, DIM, HEADS, KV_HEADS, FFN, VOCAB = 2, 6, 32, 4, 2, 48, 96
HEAD_DIM = DIM // HEADS


def _params() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)

    def p(*shape: int, scale: float = 0.2) -> torch.Tensor:
        return (torch.randn(shape, generator=g) * scale).requires_grad_()

    return {
        "norm1": (1 + p(DIM, scale=0.05)).detach().requires_grad_(),
        "wqkv": p((HEADS + 2 * KV_HEADS) * HEAD_DIM, DIM),
        "wo": p(DIM, DIM),
        "norm2": (1 + p(DIM, scale=0.05)).detach().requires_grad_(),
        "w_gate_up": p(2 * FFN, DIM),
        "w_down": p(DIM, FFN),
        "head": p(VOCAB, DIM),
    }


def _loss(params: dict[str, torch.Tensor], tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    emb = torch.randn(BATCH, SEQ, DIM, generator=torch.Generator().manual_seed(1))
    cos, sin = rope_tables(SEQ, HEAD_DIM, 10000.0, torch.device("cpu"))
    x = emb + tokens[..., None] * 0.01
    h = K.rms_norm(x, params["norm1"])
    qkv = (h @ params["wqkv"].t()).view(BATCH, SEQ, HEADS + 2 * KV_HEADS, HEAD_DIM)
    q, k, v = qkv.split([HEADS, KV_HEADS, KV_HEADS], dim=2)
    q, k = K.apply_rope(q, cos, sin), K.apply_rope(k, cos, sin)
    x = x + K.attention(q, k, v).reshape(BATCH, SEQ, DIM) @ params["wo"].t()
    gate, up = (K.rms_norm(x, params["norm2"]) @ params["w_gate_up"].t()).chunk(2, dim=-1)
    x = x + K.swiglu(gate, up) @ params["w_down"].t()
    return K.fused_linear_cross_entropy(x.reshape(-1, DIM), params["head"], targets.reshape(-1))


@pytest.mark.parametrize("mode", ["triton", "auto"])
def test_layer_matches_reference_mode(kernels_mode: Callable[[str], None], mode: str) -> None:
    tokens = torch.randint(0, VOCAB, (BATCH, SEQ))
    targets = torch.roll(tokens, -1, dims=1)
    targets[:, -1] = -100
    results = []
    for m in ("reference", mode):
        kernels_mode(m)
        params = _params()
        loss = _loss(params, tokens, targets)
        loss.backward()
        results.append((loss.detach(), {n: p.grad for n, p in params.items()}))
    (ref_loss, ref_grads), (loss, grads) = results
    assert_close(loss, ref_loss)
    for name in ref_grads:
        assert_close(grads[name], ref_grads[name], what=name)
