"""A Llama-style decoder: RMSNorm, rotary embeddings, SwiGLU, grouped-query attention.

Every fused op is called through `tandem.runtime.ops`; the loss never materialises the full logits
(`linear_cross_entropy` takes the hidden states and the output projection).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tandem.runtime import ops
from tandem.runtime.config import ModelSize


def rope_tables(seq_len: int, head_dim: int, theta: float, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos/sin [seq, head_dim] in the rotate-half layout the kernels expect."""
    inv_freq = 1.0 / (theta ** (torch.arange(0, head_dim, 2, device=device, dtype=torch.float32) / head_dim))
    angles = torch.outer(torch.arange(seq_len, device=device, dtype=torch.float32), inv_freq)
    angles = torch.cat((angles, angles), dim=-1)
    return angles.cos(), angles.sin()


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ops.rms_norm(x, self.weight, self.eps)


class Attention(nn.Module):
    def __init__(self, size: ModelSize) -> None:
        super().__init__()
        self.heads, self.kv_heads = size.heads, size.kv_heads
        self.head_dim = size.dim // size.heads
        self.wq = nn.Linear(size.dim, size.heads * self.head_dim, bias=False)
        self.wk = nn.Linear(size.dim, size.kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(size.dim, size.kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(size.heads * self.head_dim, size.dim, bias=False)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, s, _ = x.shape
        q = self.wq(x).view(b, s, self.heads, self.head_dim)
        k = self.wk(x).view(b, s, self.kv_heads, self.head_dim)
        v = self.wv(x).view(b, s, self.kv_heads, self.head_dim)
        q, k = ops.apply_rope(q, cos, sin), ops.apply_rope(k, cos, sin)
        return self.wo(ops.attention(q, k, v).reshape(b, s, -1))


class FeedForward(nn.Module):
    def __init__(self, size: ModelSize) -> None:
        super().__init__()
        self.w_gate = nn.Linear(size.dim, size.ffn_dim, bias=False)
        self.w_up = nn.Linear(size.dim, size.ffn_dim, bias=False)
        self.w_down = nn.Linear(size.ffn_dim, size.dim, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.w_down(ops.swiglu(self.w_gate(x), self.w_up(x)))


class Block(nn.Module):
    def __init__(self, size: ModelSize) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(size.dim, size.norm_eps)
        self.attn = Attention(size)
        self.ffn_norm = RMSNorm(size.dim, size.norm_eps)
        self.ffn = FeedForward(size)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin)
        return x + self.ffn(self.ffn_norm(x))


class Decoder(nn.Module):
    def __init__(self, size: ModelSize) -> None:
        super().__init__()
        self.size = size
        self.embed = nn.Embedding(size.vocab, size.dim)
        self.layers = nn.ModuleList(Block(size) for _ in range(size.layers))
        self.norm = RMSNorm(size.dim, size.norm_eps)
        self.output = nn.Linear(size.dim, size.vocab, bias=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # GPT-2 style: N(0, 0.02), residual projections scaled down by depth so the stream stays O(1).
        residual_std = 0.02 / math.sqrt(2 * self.size.layers)
        for name, p in self.named_parameters():
            if p.dim() < 2:
                continue
            std = residual_std if name.endswith(("wo.weight", "w_down.weight")) else 0.02
            nn.init.normal_(p, mean=0.0, std=std)

    def forward(self, tokens: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """tokens, targets: [batch, seq] -> mean next-token cross-entropy."""
        cos, sin = rope_tables(tokens.shape[1], self.size.dim // self.size.heads, self.size.rope_theta, tokens.device)
        x = self.embed(tokens)
        for layer in self.layers:
            x = layer(x, cos, sin)
        hidden = self.norm(x)
        return ops.linear_cross_entropy(hidden.reshape(-1, hidden.shape[-1]), self.output.weight, targets.reshape(-1))


def parameter_count(size: ModelSize) -> int:
    attn = size.dim * size.dim * 2 + size.dim * (size.dim // size.heads) * size.kv_heads * 2
    ffn = 3 * size.dim * size.ffn_dim
    return size.layers * (attn + ffn + 2 * size.dim) + 2 * size.vocab * size.dim + size.dim


def flops_per_token(size: ModelSize, seq_len: int) -> float:
    """Training FLOPs per token: 6N for the matmuls plus the attention scores (PaLM appendix B)."""
    return 6 * parameter_count(size) + 12 * size.layers * size.dim * seq_len
