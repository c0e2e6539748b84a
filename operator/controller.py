"""The imperative shell around the core: observe a job, call `reconcile`, apply the Decision.

Nothing here is remembered between calls except per-job locks, the requeue timers and the
metrics: everything a reconcile needs is read from the API each time, so a restarted operator
carries on where the last one stopped."""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime

import pydantic
import structlog

from tandem.operator.api import AcceleratorPool, JobPhase, TrainingJob, TrainingJobStatus
from tandem.operator.kube import Conflict, Kube, Obj
from tandem.operator.metrics import JOBS, RECONCILE_SECONDS
from tandem.operator.pools import pool_status
from tandem.operator.reconcile import Decision, Event, Observation, reconcile, set_condition

log = structlog.get_logger("tandem.operator")
Clock = Callable[[], datetime]


def utcnow() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


class Requeue:
    """Reconcile a job again after a delay; one pending timer per job (the earliest wins)."""

    def __init__(self, callback: Callable[[str, str], None]) -> None:
        self._callback = callback
        self._lock = threading.Lock()
        self._timers: dict[tuple[str, str], tuple[float, threading.Timer]] = {}

    def after(self, namespace: str, name: str, seconds: float) -> None:
        key, due = (namespace, name), time.monotonic() + seconds
        with self._lock:
            pending = self._timers.get(key)
            if pending and pending[0] <= due:
                return
            if pending:
                pending[1].cancel()
            timer = threading.Timer(seconds, self._fire, args=key)
            timer.daemon = True
            self._timers[key] = (due, timer)
            timer.start()

    def _fire(self, namespace: str, name: str) -> None:
        with self._lock:
            self._timers.pop((namespace, name), None)
        self._callback(namespace, name)

    def cancel_all(self) -> None:
        with self._lock:
            for _, timer in self._timers.values():
                timer.cancel()
            self._timers.clear()


class Controller:
    def __init__(self, kube: Kube, clock: Clock = utcnow) -> None:
        self.kube = kube
        self.clock = clock
        self._locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        self.requeue = Requeue(self._requeued)

    def forget(self, namespace: str, name: str) -> None:
        JOBS.forget(namespace, name)
        self._locks.pop((namespace, name), None)

    def _requeued(self, namespace: str, name: str) -> None:
        try:
            self.reconcile_job(namespace, name)
        except Exception:  # a timer thread must never die silently
            log.exception("requeued_reconcile_failed", namespace=namespace, job=name)

    def reconcile_job(self, namespace: str, name: str) -> None:
        """Observe, decide, apply; on a stale view (409) observe again at once."""
        with self._locks[(namespace, name)], RECONCILE_SECONDS.time():
            for _ in range(5):
                try:
                    self._reconcile_once(namespace, name)
                    return
                except Conflict as conflict:
                    log.debug("reconcile_conflict", namespace=namespace, job=name, detail=str(conflict))
            self.requeue.after(namespace, name, 1.0)

    def _reconcile_once(self, namespace: str, name: str) -> None:
        raw = self.kube.get_job(namespace, name)
        if raw is None:
            JOBS.forget(namespace, name)
            return
        try:
            job = TrainingJob.model_validate(raw)
        except pydantic.ValidationError as exc:
            self._reject(raw, exc)
            return
        observation = Observation(
            job=job,
            pools=self._pools(),
            # Nodes matter before an attempt starts (is there room?); listing them on every pod event
            # would cost O(nodes) per reconcile on a large cluster.
            nodes=self.kube.list_nodes() if job.status.attempt == 0 else [],
            pods=self.kube.list_job_pods(namespace, name),
            service_exists=self.kube.service_exists(namespace, name),
            now=self.clock(),
        )
        decision = reconcile(observation)
        self._apply(raw, job, decision)
        JOBS.observe(namespace, name, decision.status.phase.value, decision.status.pool or "")

    def _pools(self) -> dict[str, AcceleratorPool]:
        pools = {}
        for raw in self.kube.list_pools():
            try:
                pools[raw["metadata"]["name"]] = AcceleratorPool.model_validate(raw)
            except pydantic.ValidationError as exc:  # one bad pool must not stop the jobs on others
                log.warning("pool_invalid", pool=raw["metadata"]["name"], error=str(exc))
        return pools

    def _apply(self, raw: Obj, job: TrainingJob, decision: Decision) -> None:
        meta = raw["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        if decision.status != job.status:
            self.kube.patch_job_status(namespace, name, meta["resourceVersion"], decision.status.to_dict())
        for pod in decision.delete:
            self.kube.delete_pod(namespace, pod)
        for manifest in decision.create:
            self.kube.create(manifest)
        now = self.clock()
        for event in decision.events:
            self.kube.post_event(raw, event, now)
            log.info("job_event", namespace=namespace, job=name, attempt=decision.status.attempt,
                     pool=decision.status.pool, phase=decision.status.phase.value, type=event.type,
                     reason=event.reason, message=event.message)
        if decision.requeue_after is not None:
            self.requeue.after(namespace, name, decision.requeue_after)

    def _reject(self, raw: Obj, error: pydantic.ValidationError) -> None:
        """A spec the API server let through but the operator cannot run (e.g. stored before the CRD's
        current schema): Failed with the reason, and the operator goes on with other jobs."""
        meta = raw["metadata"]
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())[:1000]
        status = dict(raw.get("status") or {})
        if status.get("phase") == JobPhase.FAILED.value:
            return
        now = self.clock()
        holder = TrainingJobStatus()
        set_condition(holder, "Failed", True, "InvalidSpec", message, now, int(meta.get("generation", 1)))
        status.update(phase=JobPhase.FAILED.value, message=f"invalid spec: {message}",
                      completionTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      conditions=[c.to_dict() for c in holder.conditions])
        self.kube.patch_job_status(meta["namespace"], meta["name"], meta["resourceVersion"], status)
        self.kube.post_event(raw, Event("Warning", "InvalidSpec", message), now)
        log.warning("job_rejected", namespace=meta["namespace"], job=meta["name"], reason=message)

    def sync_pool(self, raw_pool: Obj, nodes: list[Obj] | None = None) -> None:
        try:
            pool = AcceleratorPool.model_validate(raw_pool)
        except pydantic.ValidationError as exc:
            log.warning("pool_invalid", pool=raw_pool["metadata"]["name"], error=str(exc))
            return
        status = pool_status(pool, nodes if nodes is not None else self.kube.list_nodes(), self.clock())
        if status != pool.status:
            self.kube.patch_pool_status(raw_pool["metadata"]["name"], status.to_dict())

    def sync_all_pools(self) -> None:
        nodes = self.kube.list_nodes()
        for raw_pool in self.kube.list_pools():
            self.sync_pool(raw_pool, nodes)

    def reconcile_all(self, only_waiting: bool = False) -> None:
        for raw in self.kube.list_jobs():
            phase = (raw.get("status") or {}).get("phase")
            if phase in (JobPhase.SUCCEEDED.value, JobPhase.FAILED.value):
                continue
            if only_waiting and (raw.get("status") or {}).get("attempt"):
                continue
            self.reconcile_job(raw["metadata"]["namespace"], raw["metadata"]["name"])

