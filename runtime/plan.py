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


def batch_plan(global_batch: int, world: int, micro_batch: int | None = None) -> BatchPlan:
    """Split the job's fixed global batch over `world` ranks.

    Gradient accumulation is derived, never configured: after a failover to a world of another size
    the same global batch is reached with another number of micro-batches, so the trajectory goes on.
    `micro_batch` is an upper bound (memory); the largest divisor of the per-rank share below it is used.
    """
    if global_batch % world:
        raise FaultError(
            "user",
            "InvalidBatch",
            f"globalBatch {global_batch} is not divisible by the world size {world}; "
            "choose a global batch that every pool's world size divides",
        )
    per_rank = global_batch // world
    limit = per_rank if micro_batch is None else min(micro_batch, per_rank)
    micro = max(d for d in range(1, limit + 1) if per_rank % d == 0)
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
