"""Prometheus metrics on the operator's /metrics (docs/design.md#metrics)."""

from __future__ import annotations

import collections
import threading
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

RECONCILE_SECONDS = Histogram(
    "tandem_reconcile_seconds", "Time to observe a TrainingJob, decide and apply the decision.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)

RESTARTS = Counter("tandem_restarts_total", "Restarts of TrainingJobs after a fault.", ["pool", "class"])
FAILOVERS = Counter("tandem_failovers_total", "TrainingJobs moved from one pool to another.", ["from_pool", "to_pool"])
IN_PLACE_RESTARTS = Counter(
    "tandem_in_place_restarts_total",
    "In-place restarts begun (outcome=restarted) and those that became full restarts (outcome=escalated).",
    ["pool", "outcome"],
)
RECOVERY_SECONDS = Histogram(
    "tandem_recovery_seconds", "From a fault seen to every pod of the next attempt Running.",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
)


class JobPhases(Collector):
    """`tandem_jobs{phase,pool}`, from the last phase this operator saw per job."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[tuple[str, str], tuple[str, str]] = {}

    def observe(self, namespace: str, name: str, phase: str, pool: str) -> None:
        with self._lock:
            self._jobs[(namespace, name)] = (phase, pool)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._jobs.pop((namespace, name), None)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily("tandem_jobs", "TrainingJobs by phase and pool.", labels=["phase", "pool"])
        with self._lock:
            counts = collections.Counter(self._jobs.values())
        for (phase, pool), count in sorted(counts.items()):
            family.add_metric([phase, pool], count)
        yield family


JOBS = JobPhases()
REGISTRY.register(JOBS)
