"""A fake torch_npu: the five fused ops declared from their real schemas, refusing what the docs say they refuse.

torch_npu's ``npu_*`` functions are ``torch.ops.npu`` operator packets (Ascend/pytorch@v7.1.0-pytorch2.6.0:
torch_npu/__init__.py sets ``globals()[name] = getattr(torch.ops.npu, name)``), so their arguments are parsed by
torch's schema parser. Here each op is declared with torch.library from the schema string copied verbatim from
Ascend/op-plugin@7.1.0:op_plugin/config/op_plugin_functions.yaml: argument names, order, defaults, types and the
number of outputs are enforced by the same parser, and an unknown keyword, an extra positional or a float for an
int raises the same RuntimeError. The kernels are CompositeImplicitAutograd Python functions: they check the
documented limits (RuntimeError, as torch_npu's TORCH_CHECKs), then compute in plain torch so autograd
differentiates them. The chip generations each op runs on are written out here again from the docs, on purpose
independent of kernels/capabilities.py: this module plays the machine, not the dispatcher.

What the fake does not model (layouts other than BSND/BNSD, dropout, pse, varlen, prefix sparse modes) raises
NotImplementedError, so a binding that starts using it fails here instead of passing unchecked.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

NAMESPACE = "tandem_fake_npu"
DOCS = "Ascend/op-plugin@7.1.0:docs/context/"

SCHEMAS = {  # Ascend/op-plugin@7.1.0:op_plugin/config/op_plugin_functions.yaml, verbatim
    "npu_fusion_attention": "npu_fusion_attention(Tensor query, Tensor key, Tensor value, int head_num, "
    "str input_layout, Tensor? pse=None, Tensor? padding_mask=None, Tensor? atten_mask=None, float scale=1., "
    "float keep_prob=1., int pre_tockens=2147483647, int next_tockens=2147483647, int inner_precise=0, "
    "int[]? prefix=None, int[]? actual_seq_qlen=None, int[]? actual_seq_kvlen=None, int sparse_mode=0, "
    "bool gen_mask_parallel=True, bool sync=False) -> (Tensor, Tensor, Tensor, Tensor, int, int, int)",
    "npu_rms_norm": "npu_rms_norm(Tensor self, Tensor gamma, float epsilon=1e-06) -> (Tensor, Tensor)",
    "npu_rotary_mul": "npu_rotary_mul(Tensor self, Tensor r1, Tensor r2, str rotary_mode='half') -> Tensor",
    "npu_swiglu": "npu_swiglu(Tensor self, int dim=-1) -> Tensor",
    "npu_cross_entropy_loss": "npu_cross_entropy_loss(Tensor input, Tensor target, Tensor? weight=None, "
    "str reduction='mean', int ignore_index=-100, float label_smoothing=0.0, float lse_square_scale_for_zloss=0.0, "
    "bool return_zloss=False) -> (Tensor, Tensor, Tensor, Tensor)",
}

# 支持的型号 of each op's page under DOCS (ascend910 = Atlas 训练系列产品, ascend910b = A2, ascend910c = A3).
SUPPORTED = {
    "npu_fusion_attention": ("ascend910b",),
    "npu_rms_norm": ("ascend910", "ascend910b", "ascend910c"),
    "npu_rotary_mul": ("ascend910", "ascend910b", "ascend910c"),
    "npu_swiglu": ("ascend910b",),
    "npu_cross_entropy_loss": ("ascend910b", "ascend910c"),
}
FLOATS = (torch.float16, torch.bfloat16, torch.float32)


@dataclass(frozen=True)
class Call:
    name: str
    arguments: dict[str, Any]  # every schema argument by name, defaults filled in


@dataclass
class Chip:
    """One fake Ascend device: its generation, the torch_npu module bindings see, the calls it ran."""

    generation: str
    calls: list[Call] = field(default_factory=list)
    module: FakeTorchNpu = field(init=False)

    def __post_init__(self) -> None:
        if self.generation not in ("ascend910", "ascend910b", "ascend910c"):
            raise ValueError(f"a chip has a known generation, not {self.generation!r}")
        self.module = FakeTorchNpu()

    def names(self) -> list[str]:
        return [call.name for call in self.calls]


class FakeTorchNpu(types.ModuleType):
    """torch_npu with the five fused functions and nothing else: no __getattr__, so a misspelt or missing
    function is an AttributeError, as on a torch_npu that lacks it."""

    def __init__(self) -> None:
        super().__init__("torch_npu")
        ops = getattr(torch.ops, NAMESPACE)
        for name in SCHEMAS:
            setattr(self, name, getattr(ops, name))


_active: Chip | None = None


@contextmanager
def running_on(chip: Chip) -> Iterator[Chip]:
    """The ops execute "on" ``chip`` inside the block (its generation decides what they accept)."""
    global _active
    previous, _active = _active, chip
    try:
        yield chip
    finally:
        _active = previous


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise RuntimeError(message)


def _enter(name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Chip, dict[str, Any]]:
    """The chip and the call's arguments by schema name (the dispatcher drops trailing defaults: refill them)."""
    _check(_active is not None, f"{name}: no fake chip is running (use running_on)")
    assert _active is not None
    _check(_active.generation in SUPPORTED[name], f"{name} is not supported on {_active.generation} ({DOCS})")
    schema = torch._C.parse_schema(f"{NAMESPACE}::{SCHEMAS[name]}")
    bound = {arg.name: value for arg, value in zip(schema.arguments, args, strict=False)}
    for arg in schema.arguments[len(args) :]:
        bound[arg.name] = kwargs.get(arg.name, arg.default_value)
    return _active, bound


def _record(chip: Chip, name: str, arguments: dict[str, Any]) -> None:
    chip.calls.append(Call(name, arguments))


# --- npu_rms_norm: DOCS（beta）torch_npu-npu_rms_norm.md (7.1.0; per-product dtypes from 7.2.0)  # noqa: RUF003


def npu_rms_norm(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
    chip, a = _enter("npu_rms_norm", args, kwargs)
    x, gamma, eps = a["self"], a["gamma"], a["epsilon"]
    dtypes = (torch.float16, torch.float32) if chip.generation == "ascend910" else FLOATS
    _check(x.dtype in dtypes, f"npu_rms_norm: self dtype {x.dtype} not in {dtypes} on {chip.generation}")
    _check(2 <= x.dim() <= 8, f"npu_rms_norm: self takes 2-8 dims, got {x.dim()}")
    _check(gamma.dtype == x.dtype, "npu_rms_norm: gamma must have self's dtype")
    # gamma_shape = self_shape[n:], n < self.dim() (7.2.0 page); the op normalises over all of gamma's dims.
    _check(
        1 <= gamma.dim() <= x.dim() and tuple(gamma.shape) == tuple(x.shape[x.dim() - gamma.dim() :]),
        f"npu_rms_norm: gamma {tuple(gamma.shape)} is not a trailing part of self {tuple(x.shape)}",
    )
    _record(chip, "npu_rms_norm", a)
    dims = tuple(range(x.dim() - gamma.dim(), x.dim()))
    x32 = x.float()
    rstd = torch.rsqrt(x32.pow(2).mean(dim=dims, keepdim=True) + eps)
    return (x32 * rstd * gamma.float()).to(x.dtype), rstd.detach()


# --- npu_rotary_mul: DOCS torch_npu-npu_rotary_mul.md; op_plugin/ops/{opapi,aclops}/RotaryMul*.cpp -------------

# r1's shape per layout of a 4-D input (d0, d1, d2, D), in the order the doc lists them; B and N index x's dims.
_HALF_PATTERNS = {
    "BNSD": ((lambda s: (1, 1, s[2], s[3])), (lambda s: (s[0], 1, s[2], s[3])), (lambda s: tuple(s))),
    "BSND": ((lambda s: (1, s[1], 1, s[3])), (lambda s: (s[0], s[1], 1, s[3])), (lambda s: tuple(s))),
    "SBND": ((lambda s: (s[0], 1, 1, s[3])), (lambda s: (s[0], s[1], 1, s[3])), (lambda s: tuple(s))),
}
_INTERLEAVE_PATTERNS = {
    "BNSD": ((lambda s: (1, 1, s[2], s[3])),),
    "BSND": ((lambda s: (1, s[1], 1, s[3])),),
    "SBND": ((lambda s: (s[0], 1, 1, s[3])),),
}
_B_N = {"BNSD": (0, 1), "BSND": (0, 2), "SBND": (1, 2)}


def _rotary_layout(x: torch.Tensor, r1: torch.Tensor, mode: str) -> str:
    """The first documented layout r1's shape fits (the real op's tie-break is not documented)."""
    patterns = _HALF_PATTERNS if mode == "half" else _INTERLEAVE_PATTERNS
    for layout, shapes in patterns.items():
        if any(tuple(r1.shape) == shape(tuple(x.shape)) for shape in shapes):
            return layout
    raise RuntimeError(f"npu_rotary_mul: r1 {tuple(r1.shape)} fits no documented layout of {tuple(x.shape)}")


def _rotary_limits(chip: Chip, x: torch.Tensor, r1: torch.Tensor, r2: torch.Tensor, mode: str) -> None:
    layout = _rotary_layout(x, r1, mode)
    batch, heads = (x.shape[i] for i in _B_N[layout])
    dim = x.shape[3]
    if chip.generation == "ascend910":  # jit_compile=True: the aclop kernel (SoC < Ascend910B1)
        _check(mode == "half", "npu_rotary_mul in aclop only support rotary_mode with half")
        _check(dim == 128, f"npu_rotary_mul (jit_compile=True): D must be 128, got {dim}")
        _check(batch <= 1000 and heads <= 1000, "npu_rotary_mul (jit_compile=True): B and N <= 1000")
        broadcast = math.prod(x.shape[i] for i in range(4) if r1.shape[i] != x.shape[i])
        _check(broadcast <= 1024, f"npu_rotary_mul (jit_compile=True): broadcast axes hold {broadcast} > 1024")
        _check(r1.dtype == r2.dtype == x.dtype, "npu_rotary_mul (aclop): r1/r2 must have input's dtype")
        return
    _check(dim < 896 and dim % 2 == 0, f"npu_rotary_mul: D must be even and < 896, got {dim}")
    if mode == "half":
        _check(batch < 1000 and heads < 1000, f"npu_rotary_mul: B, N < 1000, got {batch}, {heads}")
        if torch.is_grad_enabled() and (r1.requires_grad or r2.requires_grad):
            _check(batch * heads <= 1024, f"npu_rotary_mul: B*N <= 1024 with cos/sin gradients, got {batch * heads}")
    else:
        _check(batch * heads < 1000, f"npu_rotary_mul interleave: B*N < 1000, got {batch * heads}")


def npu_rotary_mul(*args: Any, **kwargs: Any) -> torch.Tensor:
    chip, a = _enter("npu_rotary_mul", args, kwargs)
    x, r1, r2, mode = a["self"], a["r1"], a["r2"], a["rotary_mode"]
    _check(mode in ("half", "interleave"), f"The rotary_mode of npu_rotary_mul should be half or interleave: {mode}")
    _check(x.dim() == r1.dim() == r2.dim() == 4, "npu_rotary_mul: input, r1 and r2 are 4-D")
    _check(r1.shape == r2.shape, "npu_rotary_mul: r1 and r2 differ in shape")
    _check(all(t.dtype in FLOATS for t in (x, r1, r2)), "npu_rotary_mul: float16, bfloat16 or float32 only")
    _check(bool((r1.abs() <= 1).all() and (r2.abs() <= 1).all()), "npu_rotary_mul: r1/r2 values lie in [-1, 1]")
    _rotary_limits(chip, x, r1, r2, mode)
    _record(chip, "npu_rotary_mul", a)
    if mode == "half":
        x1, x2 = x.chunk(2, dim=-1)
        rotated = torch.cat((-x2, x1), dim=-1)
    else:
        rotated = torch.stack((-x[..., 1::2], x[..., ::2]), dim=-1).flatten(-2)
    return r1.to(x.dtype) * x + r2.to(x.dtype) * rotated


# --- npu_swiglu: DOCS（beta）torch_npu-npu_swiglu.md -------------------------------------------  # noqa: RUF003


def npu_swiglu(*args: Any, **kwargs: Any) -> torch.Tensor:
    chip, a = _enter("npu_swiglu", args, kwargs)
    x, dim = a["self"], a["dim"]
    _check(x.dtype in FLOATS, f"npu_swiglu: dtype {x.dtype}")
    _check(1 <= x.dim() <= 8 and x.numel() > 0, "npu_swiglu: 1-8 dims, not empty")
    _check(x.is_contiguous(), "npu_swiglu: non-contiguous tensors are not supported")
    _check(-x.dim() <= dim < x.dim() and x.shape[dim] % 2 == 0, f"npu_swiglu: dim {dim} must split evenly")
    _record(chip, "npu_swiglu", a)
    gate, up = x.chunk(2, dim=dim)
    return F.silu(gate) * up


# --- npu_fusion_attention: DOCS torch_npu-npu_fusion_attention.md; op_plugin/ops/opapi/FlashAttention*.cpp ------

_compressed: torch.Tensor | None = None


def _is_compressed_causal(mask: torch.Tensor) -> bool:
    global _compressed
    if _compressed is None:
        _compressed = torch.ones(2048, 2048, dtype=torch.bool).triu(diagonal=1)
    return tuple(mask.shape) == (2048, 2048) and torch.equal(mask.bool().cpu(), _compressed)


def _attention_mask(a: dict[str, Any], b: int, n: int, sq: int, skv: int) -> torch.Tensor | None:
    """True where masked, broadcastable to [B, N, Sq, Skv]; None computes every position."""
    mask, mode = a["atten_mask"], a["sparse_mode"]
    _check(0 <= mode <= 6, f"The sparse_mode value must be in range of [0,6], but got {mode}")
    if mask is None:  # "with atten_mask None, sparse_mode, pre_tockens, next_tockens have no effect: all computed"
        return None
    _check(mask.dtype in (torch.bool, torch.uint8), f"npu_fusion_attention: atten_mask dtype {mask.dtype}")
    if mode in (0, 1):
        shapes = ((b, n, sq, skv), (b, 1, sq, skv), (1, 1, sq, skv), (sq, skv))
        _check(tuple(mask.shape) in shapes, f"npu_fusion_attention: atten_mask {tuple(mask.shape)} not BNSS..SS")
        return mask.bool()
    if mode in (2, 3):  # the compressed 2048 x 2048 mask for any sequence length
        _check(_is_compressed_causal(mask), "npu_fusion_attention: sparse_mode 2/3 take the compressed 2048x2048 mask")
        shift = 0 if mode == 2 else skv - sq  # leftUpCausal / rightDownCausal
        return torch.ones(sq, skv, dtype=torch.bool).triu(diagonal=1 + shift)
    raise NotImplementedError(f"fake npu_fusion_attention: sparse_mode {mode} is not modelled")


def _attention_limits(a: dict[str, Any]) -> None:
    q, k, v, layout = a["query"], a["key"], a["value"], a["input_layout"]
    _check(a["head_num"] > 0, f"head_num must > 0, but got {a['head_num']}")
    _check(0 < a["keep_prob"] <= 1, "The keep_prob value must be in range of (0, 1]")
    _check(a["padding_mask"] is None, "npu_fusion_attention: padding_mask is not supported yet (暂不支持)")
    if layout.upper() not in ("BSND", "BNSD") or a["keep_prob"] != 1 or a["pse"] is not None:
        raise NotImplementedError("fake npu_fusion_attention models BSND/BNSD, keep_prob=1 and no pse only")
    if any(a[name] is not None for name in ("prefix", "actual_seq_qlen", "actual_seq_kvlen")):
        raise NotImplementedError("fake npu_fusion_attention does not model prefix or varlen")
    _check(q.dim() == k.dim() == v.dim() == 4, "npu_fusion_attention: BSND/BNSD inputs are 4-D")
    _check(q.dtype in FLOATS and k.dtype == v.dtype == q.dtype, "npu_fusion_attention: one float dtype for q, k, v")
    _check(k.shape == v.shape, "npu_fusion_attention: key and value shapes must be equal")


def npu_fusion_attention(*args: Any, **kwargs: Any) -> tuple[Any, ...]:
    chip, a = _enter("npu_fusion_attention", args, kwargs)
    _attention_limits(a)
    bnsd = a["input_layout"].upper() == "BNSD"
    q, k, v = (t if bnsd else t.transpose(1, 2) for t in (a["query"], a["key"], a["value"]))
    b, n, sq, d = q.shape
    nkv, skv, dk = k.shape[1], k.shape[2], k.shape[3]
    _check(k.shape[0] == b, "npu_fusion_attention: B must be equal")
    _check(a["head_num"] == n, f"npu_fusion_attention: head_num {a['head_num']} != query's N {n}")
    _check(1 <= n <= 256 and n % nkv == 0, f"npu_fusion_attention: Nq 1..256 and a multiple of Nkv, got {n}, {nkv}")
    _check(d == dk and dk >= v.shape[3] and 1 <= d <= 768, f"npu_fusion_attention: D 1..768 with Dq = Dk, got {d}")
    _check(1 <= sq <= 1_000_000 and 1 <= skv <= 1_000_000 and b <= 2_000_000, "npu_fusion_attention: S or B range")
    mask = _attention_mask(a, b, n, sq, skv)
    _record(chip, "npu_fusion_attention", a)
    kf, vf = (t.float().repeat_interleave(n // nkv, dim=1) for t in (k, v))
    scores = (q.float() @ kf.transpose(-1, -2)) * a["scale"]
    if mask is not None:
        scores = scores.masked_fill(mask, float("-inf"))
    top = scores.amax(dim=-1, keepdim=True)
    out = (scores.softmax(dim=-1) @ vf).to(q.dtype)
    out = out if bnsd else out.transpose(1, 2)
    softmax_max = top.detach().expand(b, n, sq, 8).contiguous()  # [B, N, Sq, 8] float32, as the op allocates
    softmax_sum = (scores - top).exp().sum(-1, keepdim=True).detach().expand(b, n, sq, 8).contiguous()
    return out, softmax_max, softmax_sum, torch.empty(0, dtype=q.dtype), 0, 0, 0


# --- npu_cross_entropy_loss: DOCS torch_npu-npu_cross_entropy_loss.md ------------------------------------------


def _cross_entropy_limits(a: dict[str, Any]) -> None:
    x, t, w = a["input"], a["target"], a["weight"]
    _check(x.dim() == 2 and 0 < x.shape[0] <= 200_000 and x.shape[1] > 0, f"N in (0, 200000], C > 0: {tuple(x.shape)}")
    _check(x.dtype in FLOATS, f"npu_cross_entropy_loss: input dtype {x.dtype}")
    _check(t.dtype == torch.int64 and tuple(t.shape) == (x.shape[0],), "target is int64 [N]")
    _check(bool(((t >= 0) & (t < x.shape[1])).all()), "npu_cross_entropy_loss: target values lie in [0, C)")
    if w is not None:
        _check(w.dtype == torch.float32 and tuple(w.shape) == (x.shape[1],), "weight is float32 [C]")
        _check(bool(((w > 0) & (w <= 1)).all()), "npu_cross_entropy_loss: weight values lie in (0, 1]")
    _check(a["reduction"] in ("mean", "sum", "none"), f"reduction {a['reduction']!r}")
    _check(a["ignore_index"] < x.shape[1], "npu_cross_entropy_loss: ignore_index must be less than C")
    _check(0.0 <= a["label_smoothing"] < 1.0, f"label_smoothing {a['label_smoothing']} not in [0.0, 1.0)")
    _check(0.0 <= a["lse_square_scale_for_zloss"] < 1.0, "lse_square_scale_for_zloss not in [0.0, 1.0)")
    _check(a["lse_square_scale_for_zloss"] == 0.0 and not a["return_zloss"], "z-loss is not enabled yet (暂未使能)")
    if x.requires_grad and torch.is_grad_enabled():
        if a["reduction"] == "mean":
            defaults = (w is None, a["ignore_index"] == -100, a["label_smoothing"] == 0.0)
            _check(all(defaults), "with input.requires_grad, mean takes no non-default argument")
        else:
            _check(a["label_smoothing"] == 0.0, "with input.requires_grad, sum/none take label_smoothing=0 only")


def npu_cross_entropy_loss(*args: Any, **kwargs: Any) -> tuple[torch.Tensor, ...]:
    chip, a = _enter("npu_cross_entropy_loss", args, kwargs)
    _cross_entropy_limits(a)
    _record(chip, "npu_cross_entropy_loss", a)
    x, t = a["input"], a["target"]
    ignore = a["ignore_index"] if a["ignore_index"] >= 0 else -100  # negative: nothing is ignored (targets >= 0)
    loss = F.cross_entropy(
        x.float(), t, a["weight"], ignore_index=ignore, reduction=a["reduction"], label_smoothing=a["label_smoothing"]
    )
    loss = loss if a["reduction"] == "none" else loss.reshape(1)
    log_prob = x.float().log_softmax(dim=-1).detach()  # only loss and zloss carry gradients
    empty = torch.zeros(0, dtype=x.dtype)
    return loss.to(x.dtype), log_prob.to(x.dtype), empty, empty.clone()


KERNELS: dict[str, Callable[..., Any]] = {
    "npu_fusion_attention": npu_fusion_attention,
    "npu_rms_norm": npu_rms_norm,
    "npu_rotary_mul": npu_rotary_mul,
    "npu_swiglu": npu_swiglu,
    "npu_cross_entropy_loss": npu_cross_entropy_loss,
}

# Declared once per process: a torch.library namespace cannot be defined twice (conftest loads this file once).
_LIBRARY = torch.library.Library(NAMESPACE, "DEF")
for _name, _schema in SCHEMAS.items():
    _LIBRARY.define(_schema)
    _LIBRARY.impl(_name, KERNELS[_name], "CompositeImplicitAutograd")
