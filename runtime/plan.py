"""Pure decisions of the training loop: how a fixed global batch splits over a world, and the LR schedule."""

from __future__ import annotations

import math
from dataclasses import dataclass

from tandem.runtime.faults import FaultError


@dataclass(frozen=True)
class BatchPlan:
    global_batch: int
    world: int
    micro_batch: int  # sequences per rank per forward/backward
    accumulation: int  # forward/backward passes per optimizer step

    @property
    def per_rank(self) -> int:
        return self.micro_batch * self.accumulation


# The largest global batch the plan takes (runtime/config.py refuses more, naming the field): it bounds the
# divisor walk below to sqrt(2**20) = 1024 iterations, so the plan costs microseconds whatever the config says.
MAX_GLOBAL_BATCH = 1 << 20


def _refuse(message: str) -> FaultError:
    return FaultError("user", "InvalidBatch", message)


def largest_divisor_at_most(n: int, limit: int) -> int:
    """The largest divisor of `n` that is not above `limit` (>= 1): divisors come in pairs (d, n // d) with
    d <= sqrt(n), so a walk to sqrt(n) sees them all."""
    if limit >= n:
        return n
    pairs = ((d, n // d) for d in range(1, math.isqrt(n) + 1) if n % d == 0)
    return max(c for pair in pairs for c in pair if c <= limit)


def batch_plan(global_batch: int, world: int, micro_batch: int | None = None) -> BatchPlan:
    """Split the job's fixed global batch over `world` ranks.

    Gradient accumulation is derived, never configured: after a failover to a world of another size
    the same global batch is reached with another number of micro-batches, so the trajectory goes on.
    `micro_batch` is an upper bound (memory); the largest divisor of the per-rank share below it is used.
    """
    if not 1 <= global_batch <= MAX_GLOBAL_BATCH:
        raise _refuse(f"globalBatch {global_batch} is outside 1..{MAX_GLOBAL_BATCH}")
    if world < 1 or (micro_batch is not None and not 1 <= micro_batch <= MAX_GLOBAL_BATCH):
        raise _refuse(f"world size {world} and microBatch {micro_batch} must be positive and bounded")
    if global_batch % world:
        raise _refuse(
            f"globalBatch {global_batch} is not divisible by the world size {world}; "
            "choose a global batch that every pool's world size divides"
        )
    per_rank = global_batch // world
    micro = largest_divisor_at_most(per_rank, per_rank if micro_batch is None else micro_batch)
    return BatchPlan(global_batch, world, micro, per_rank // micro)


def learning_rate(step: int, *, lr: float, warmup_steps: int, total_steps: int, min_lr_ratio: float) -> float:
    """Linear warm-up to `lr`, then cosine decay to `lr * min_lr_ratio` at the last step (steps from 1)."""
    if warmup_steps and step <= warmup_steps:
        return lr * step / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    floor = lr * min_lr_ratio
    return floor + (lr - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def is_checkpoint_step(step: int, interval: int, total_steps: int) -> bool:
    """`interval: 5` saves after steps 5, 10, 15, ...; the last step is always saved."""
    return step % interval == 0 or step == total_steps
