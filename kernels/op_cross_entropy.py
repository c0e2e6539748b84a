"""Fused linear + cross-entropy: loss of softmax(hidden @ weight^T) without the [tokens, vocab] logits.

The reference materialises the logits (it defines "correct"). Every other path walks the rows in
chunks: logits of one chunk, its loss and d(loss)/d(logits) written over those logits in place,
then that chunk's share of both gradients, so the gradients are finished during the forward and
the backward only scales them by the incoming gradient. Peak memory is one chunk of logits
instead of all of them. The per-chunk loss-and-gradient step is the only part that differs:
plain torch, a Triton kernel (online softmax, two passes over the row), or torch_npu's
npu_cross_entropy_loss. The scheme is the one Liger-Kernel's fused_linear_cross_entropy uses
(gradients finished in the forward, chunk rows ~ tokens / ceil(vocab / hidden)).

Per valid row t (target != ignore_index), with lse = logsumexp(logits), eps = label_smoothing:
  loss = (1 - eps) * (lse - x_t) + eps * (lse - mean(x)) + z_loss * lse^2
"mean" divides by the number of valid rows; with no valid row the loss is 0 (not NaN), so an
all-padding micro-batch does not poison gradient accumulation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from tandem.kernels import _npu, _triton
from tandem.kernels._dispatch import KernelOp

tl: Any = None  # bound to triton.language when a kernel first launches (see _triton.LazyKernel)

REDUCTIONS = ("mean", "sum")


def validate(hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, reduction: str) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction={reduction!r}: expected one of {REDUCTIONS}")
    if weight.dim() != 2 or hidden.shape[-1] != weight.shape[1]:
        raise ValueError(
            f"hidden [..., H] and weight [V, H] disagree: {tuple(hidden.shape)}, {tuple(weight.shape)}"
        )
    if target.numel() != hidden.numel() // hidden.shape[-1]:
        raise ValueError(f"target has {target.numel()} entries for {hidden.numel() // hidden.shape[-1]} rows")


def reference(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
) -> torch.Tensor:
    # Logits in hidden's dtype, as a float32 weight under autocast gives them, then float32.
    logits = (hidden.reshape(-1, hidden.shape[-1]) @ weight.to(hidden.dtype).t()).float()
    target = target.reshape(-1)
    valid = target != ignore_index
    rows = F.cross_entropy(
        logits, target, ignore_index=ignore_index, reduction="none", label_smoothing=label_smoothing
    )
    if z_loss:
        rows = rows + z_loss * torch.logsumexp(logits, dim=-1).pow(2) * valid
    total = rows.sum()
    return total if reduction == "sum" else total / valid.sum().clamp(min=1)


# A step takes one chunk's logits [rows, vocab] and targets, returns the float32 loss per row and,
# when need_grad, overwrites the logits with d(sum of row losses)/d(logits).
Step = Callable[[torch.Tensor, torch.Tensor, int, float, float, bool], torch.Tensor]


def _torch_step(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int,
    label_smoothing: float,
    z_loss: float,
    need_grad: bool,
) -> torch.Tensor:
    x = logits.float()
    vocab = x.shape[1]
    valid = target != ignore_index
    safe_target = torch.where(valid, target, 0)[:, None]
    lse = torch.logsumexp(x, dim=-1)
    loss = (1.0 - label_smoothing) * (lse - x.gather(1, safe_target).squeeze(1))
    if label_smoothing:
        loss = loss + label_smoothing * (lse - x.mean(dim=-1))
    if z_loss:
        loss = loss + z_loss * lse.square()
    if need_grad:
        grad = torch.exp(x - lse[:, None])
        if z_loss:
            grad.mul_((1.0 + 2.0 * z_loss * lse)[:, None])
        if label_smoothing:
            grad.sub_(label_smoothing / vocab)
        grad.scatter_add_(
            1, safe_target, torch.full_like(safe_target, label_smoothing - 1.0, dtype=grad.dtype)
        )
        logits.copy_(grad.mul_(valid[:, None]))
    return loss * valid


@_triton.kernel
def _step_kernel(
    LOGITS,
    TARGET,
    LOSS,
    stride,
    n_cols,
    ignore_index,
    label_smoothing,
    z_loss,
    NEED_GRAD: tl.constexpr,
    BLOCK: tl.constexpr,
):
    row = tl.program_id(0)
    ptr = LOGITS + row * stride
    target = tl.load(TARGET + row)
    if target == ignore_index:
        tl.store(LOSS + row, 0.0)
        if NEED_GRAD:
            for start in range(0, n_cols, BLOCK):
                cols = start + tl.arange(0, BLOCK)
                tl.store(
                    ptr + cols,
                    tl.zeros((BLOCK,), dtype=tl.float32).to(LOGITS.dtype.element_ty),
                    mask=cols < n_cols,
                )
        return
    # Pass 1: running max and sum of exponentials (online softmax), plus the row sum for smoothing.
    m = float("-inf")
    d = 0.0
    row_sum = 0.0
    for start in range(0, n_cols, BLOCK):
        cols = start + tl.arange(0, BLOCK)
        mask = cols < n_cols
        x = tl.load(ptr + cols, mask=mask, other=float("-inf")).to(tl.float32)
        m_new = tl.maximum(m, tl.max(x, axis=0))
        d = d * tl.exp(m - m_new) + tl.sum(tl.exp(x - m_new), axis=0)
        row_sum += tl.sum(tl.where(mask, x, 0.0), axis=0)
        m = m_new
    lse = m + tl.log(d)
    x_t = tl.load(ptr + target).to(tl.float32)
    loss = (
        (1.0 - label_smoothing) * (lse - x_t)
        + label_smoothing * (lse - row_sum / n_cols)
        + z_loss * lse * lse
    )
    tl.store(LOSS + row, loss)
    if NEED_GRAD:
        # Pass 2: softmax * (1 + 2 z lse) - eps / V, minus (1 - eps) at the target.
        for start in range(0, n_cols, BLOCK):
            cols = start + tl.arange(0, BLOCK)
            mask = cols < n_cols
            x = tl.load(ptr + cols, mask=mask, other=0.0).to(tl.float32)
            grad = tl.exp(x - lse) * (1.0 + 2.0 * z_loss * lse) - label_smoothing / n_cols
            grad = tl.where(cols == target, grad - (1.0 - label_smoothing), grad)
            tl.store(ptr + cols, grad.to(LOGITS.dtype.element_ty), mask=mask)


def _triton_step(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int,
    label_smoothing: float,
    z_loss: float,
    need_grad: bool,
) -> torch.Tensor:
    rows, vocab = logits.shape
    loss = torch.empty(rows, dtype=torch.float32, device=logits.device)
    block = min(_triton.next_power_of_2(vocab), 4096 if logits.is_cuda else 1024)
    _step_kernel[(rows,)](
        logits,
        target,
        loss,
        logits.stride(0),
        vocab,
        ignore_index,
        float(label_smoothing),
        float(z_loss),
        NEED_GRAD=need_grad,
        BLOCK=block,
        num_warps=8 if logits.is_cuda else 4,
    )
    return loss


# Ascend/op-plugin@7.1.0:docs/context/torch_npu-npu_cross_entropy_loss.md, 约束说明 and 参数说明: N in
# (0, 200000] rows per call; target int64 in [0, C); ignore_index < C, a negative one ignores nothing;
# label_smoothing in [0.0, 1.0); lse_square_scale_for_zloss and return_zloss "not yet enabled".
NPU_MAX_ROWS = 200_000
NPU_DTYPES = (torch.float16, torch.bfloat16, torch.float32)


def _npu_rows(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int, label_smoothing: float, need_grad: bool
) -> torch.Tensor:
    """One npu_cross_entropy_loss call on at most NPU_MAX_ROWS rows; the _torch_step contract without z-loss."""
    # torch_npu.npu_cross_entropy_loss(Tensor input, Tensor target, Tensor? weight=None, str reduction='mean',
    #   int ignore_index=-100, float label_smoothing=0.0, float lse_square_scale_for_zloss=0.0,
    #   bool return_zloss=False) -> (Tensor, Tensor, Tensor, Tensor)
    #   (Ascend/op-plugin@7.1.0:op_plugin/config/op_plugin_functions.yaml) returns (loss, log_prob, zloss,
    #   lse_for_zloss): loss [N] in input's dtype for reduction "none" ([1] otherwise), log_prob [N, C]; zloss and
    #   lse_for_zloss are empty unless z-loss is asked for, which is not enabled yet.
    # reduction "none" keeps the per-row losses: ignored rows are masked here and the driver divides the sum by the
    # valid rows once over all chunks, so the mean is weighted by valid tokens however the rows are split. Ignored
    # rows get target 0 (targets must lie in [0, C)) and ignore_index=-1 ignores nothing in the op. The logits here
    # never require grad (autograd.Function.forward), so the doc's limits on non-default arguments with
    # input.requires_grad=True do not apply; the gradient is finished from log_prob below.
    valid = target != ignore_index
    safe_target = torch.where(valid, target, 0).long()
    loss, log_prob, _zloss, _lse = _npu.torch_npu().npu_cross_entropy_loss(
        logits, safe_target, reduction="none", ignore_index=-1, label_smoothing=label_smoothing
    )
    if need_grad:
        grad = log_prob.float().exp_()
        if label_smoothing:
            grad.sub_(label_smoothing / logits.shape[1])
        grad.scatter_add_(
            1,
            safe_target[:, None],
            torch.full((grad.shape[0], 1), label_smoothing - 1.0, dtype=grad.dtype, device=grad.device),
        )
        logits.copy_(grad.mul_(valid[:, None]))
    return loss.float() * valid


def _npu_step(
    logits: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int,
    label_smoothing: float,
    z_loss: float,
    need_grad: bool,
) -> torch.Tensor:
    # The op's z-loss is documented as not yet enabled, so z_loss > 0 takes the plain-torch step.
    if z_loss:
        return _torch_step(logits, target, ignore_index, label_smoothing, z_loss, need_grad)
    # A chunk can exceed the op's 200000 rows (chunk_rows given, or a vocabulary no larger than hidden): split it.
    # Each slice is a view, so the gradient is written into the chunk's logits in place.
    return torch.cat(
        [
            _npu_rows(
                logits[start : start + NPU_MAX_ROWS],
                target[start : start + NPU_MAX_ROWS],
                ignore_index,
                label_smoothing,
                need_grad,
            )
            for start in range(0, logits.shape[0], NPU_MAX_ROWS)
        ]
    )


def default_chunk_rows(rows: int, hidden: int, vocab: int) -> int:
    """Rows per chunk so that a chunk of logits is about as large as the hidden states."""
    return max(1, min(rows, _triton.next_power_of_2(-(-rows // max(1, -(-vocab // hidden))))))


def _run_chunks(
    h2: torch.Tensor,
    w: torch.Tensor,
    t: torch.Tensor,
    chunk: int,
    step: Step,
    ignore_index: int,
    label_smoothing: float,
    z_loss: float,
    total: torch.Tensor,
    grad_h: torch.Tensor | None,
    grad_w: torch.Tensor | None,
) -> None:
    need_grad = grad_h is not None or grad_w is not None
    for start in range(0, h2.shape[0], chunk):
        h_chunk = h2[start : start + chunk]
        logits = h_chunk @ w.t()
        total += step(
            logits, t[start : start + chunk], ignore_index, label_smoothing, z_loss, need_grad
        ).sum()
        if grad_h is not None:
            torch.matmul(logits, w, out=grad_h[start : start + chunk])
        if grad_w is not None:
            grad_w.addmm_(logits.t().to(grad_w.dtype), h_chunk.to(grad_w.dtype))


class _FusedLinearCrossEntropyFn(torch.autograd.Function):
    @staticmethod
    def forward(
        ctx: Any,
        hidden: torch.Tensor,
        weight: torch.Tensor,
        target: torch.Tensor,
        ignore_index: int,
        reduction: str,
        label_smoothing: float,
        z_loss: float,
        chunk_rows: int | None,
        step: Step,
    ) -> torch.Tensor:
        need_dh, need_dw = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        h2 = hidden.reshape(-1, hidden.shape[-1])
        t = target.reshape(-1)
        rows, vocab = h2.shape[0], weight.shape[0]
        # Logits in hidden's dtype: what the reference's matmul gives under autocast, too.
        w = weight if weight.dtype == hidden.dtype else weight.to(hidden.dtype)
        chunk = chunk_rows or default_chunk_rows(rows, h2.shape[1], vocab)
        grad_h = torch.empty(h2.shape, dtype=h2.dtype, device=h2.device) if need_dh else None
        # float32 accumulation over the chunks whatever the weight's dtype: summing dozens of chunk
        # products in bfloat16 loses the low bits the reference's single matmul keeps.
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if need_dw else None
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        # Autocast off: every product runs in hidden's dtype, so the out= buffers match it.
        with torch.autocast(hidden.device.type, enabled=False):
            _run_chunks(h2, w, t, chunk, step, ignore_index, label_smoothing, z_loss, total, grad_h, grad_w)
        # The 1/valid-rows factor stays a tensor: turning it into a Python float would stall the GPU.
        scale = (1.0 / (t != ignore_index).sum().clamp(min=1)) if reduction == "mean" else None
        # Held as attributes, not saved tensors, so backward can drop its reference and hand autograd
        # the only one: a gradient still referenced elsewhere is copied, not adopted, by the leaf.
        ctx.grads = (grad_h, grad_w, scale)
        ctx.weight_dtype = weight.dtype
        ctx.hidden_shape = hidden.shape
        return total * scale if scale is not None else total

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        if ctx.grads is None:
            raise RuntimeError(
                "fused_linear_cross_entropy: its gradients are scaled in place, backward runs once"
            )
        (grad_h, grad_w, scale), ctx.grads = ctx.grads, None
        factor = grad_out * scale if scale is not None else grad_out
        if grad_h is not None:
            grad_h = grad_h.mul_(factor.to(grad_h.dtype)).view(ctx.hidden_shape)
        if grad_w is not None:
            grad_w = grad_w.mul_(factor).to(ctx.weight_dtype)
        return grad_h, grad_w, None, None, None, None, None, None, None


def _chunked(step: Step) -> Callable[..., torch.Tensor]:
    def fused(
        hidden: torch.Tensor,
        weight: torch.Tensor,
        target: torch.Tensor,
        ignore_index: int = -100,
        reduction: str = "mean",
        label_smoothing: float = 0.0,
        z_loss: float = 0.0,
        chunk_rows: int | None = None,
    ) -> torch.Tensor:
        return _FusedLinearCrossEntropyFn.apply(
            hidden, weight, target, ignore_index, reduction, label_smoothing, z_loss, chunk_rows, step
        )

    return fused


chunked_torch = _chunked(_torch_step)
chunked_triton = _chunked(_triton_step)
chunked_npu = _chunked(_npu_step)


def triton_check(
    hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor, *args: Any, **kwargs: Any
) -> str | None:
    return "empty input" if hidden.numel() == 0 or weight.numel() == 0 else None


def npu_check(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    ignore_index: int = -100,
    reduction: str = "mean",
    label_smoothing: float = 0.0,
    z_loss: float = 0.0,
    chunk_rows: int | None = None,
) -> str | None:
    """Why npu_cross_entropy_loss would refuse the chunks (more than 200000 rows are split, not refused)."""
    if hidden.dtype not in NPU_DTYPES:
        return f"npu_cross_entropy_loss does not take {hidden.dtype}"
    if not 0.0 <= label_smoothing < 1.0:
        return f"npu_cross_entropy_loss takes label_smoothing in [0, 1), got {label_smoothing}"
    return "empty input" if hidden.numel() == 0 or weight.numel() == 0 else None


OP = KernelOp(
    name="fused_linear_cross_entropy",
    reference=reference,
    triton=chunked_triton,
    triton_check=triton_check,
    npu=chunked_npu,
    npu_check=npu_check,
    npu_requires=("npu_cross_entropy_loss",),
    plain=chunked_torch,
)
