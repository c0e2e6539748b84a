"""Training metrics: a structured log line every N steps and Prometheus text on a port.

One registry per process (no module-level globals), served by local rank 0 of each pod.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, start_http_server


@dataclass(frozen=True)
class StepStats:
    step: int
    loss: float
    tokens_per_second: float
    mfu: float | None
    checkpoint_stall_seconds: float


def step_stats(
    *,
    step: int,
    loss: float,
    tokens: int,
    seconds: float,
    flops_per_token: float,
    world: int,
    peak_flops: float | None,
    stall: float,
) -> StepStats:
    """tokens: tokens of the whole global batch in `seconds`; MFU over every device of the world."""
    tps = tokens / seconds if seconds > 0 else 0.0
    mfu = tps * flops_per_token / (peak_flops * world) if peak_flops else None
    return StepStats(step, loss, tps, mfu, stall)


@dataclass
class Metrics:
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)

    def __post_init__(self) -> None:
        r = self.registry
        self.step = Gauge("tandem_train_step", "Last completed optimizer step", registry=r)
        self.loss = Gauge("tandem_train_loss", "Mean training loss of the last step (global batch)", registry=r)
        self.tokens_per_second = Gauge("tandem_train_tokens_per_second", "Tokens per second, all ranks", registry=r)
        self.mfu = Gauge("tandem_train_mfu", "Model FLOPs utilisation estimate (0..1)", registry=r)
        self.stall = Gauge(
            "tandem_train_checkpoint_stall_seconds", "Seconds the loop waited for the last checkpoint", registry=r
        )
        self.checkpoints = Counter("tandem_train_checkpoints", "Checkpoints started by this process", registry=r)
        self.started = time.time()

    def observe(self, stats: StepStats) -> None:
        self.step.set(stats.step)
        self.loss.set(stats.loss)
        self.tokens_per_second.set(stats.tokens_per_second)
        if stats.mfu is not None:
            self.mfu.set(stats.mfu)
        self.stall.set(stats.checkpoint_stall_seconds)

    def serve(self, port: int) -> None:
        start_http_server(port, registry=self.registry)

    def text(self) -> str:
        return generate_latest(self.registry).decode()
