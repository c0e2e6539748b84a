"""The imperative shell around the core: observe a job, call `reconcile`, apply the Decision.

What a reconcile observes comes from the watches' caches (the job, its pods and Service, pools, nodes: no API read
in the steady state); a decision that would delete or move a pod is taken again on the API's fresh view first, and
every write is guarded (the job's resourceVersion, the pod's uid and resourceVersion). Nothing else is remembered
between calls but derived state (locks, timers, metrics), so a restarted operator carries on where the last one
stopped."""

from __future__ import annotations

import dataclasses
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pydantic
import structlog
import urllib3
from kubernetes.client.exceptions import ApiException

from tandem.operator.api import AcceleratorPool, JobPhase, PendingEvent, TrainingJob, TrainingJobStatus
from tandem.operator.cluster_sync import RESYNC_DELAY_SECONDS, ClusterSync
from tandem.operator.cluster_view import ClusterView
from tandem.operator.kube import Conflict, Foreign, Kube, Obj, Refused
from tandem.operator.metrics import FAILOVERS, IN_PLACE_RESTARTS, JOBS, RECONCILE_SECONDS, RECOVERY_SECONDS, RESTARTS
from tandem.operator.observe import holds_node, is_terminating
from tandem.operator.peering import PeeringGate
from tandem.operator.pod_index import PodIndex
from tandem.operator.pod_logs import PodLogs
from tandem.operator.podspec import owned_by
from tandem.operator.reconcile import TERMINAL, Decision, Observation, reconcile, set_condition
from tandem.operator.requeue import STANDBY_RECHECK_SECONDS, Requeue  # noqa: F401  (its constant, re-exported)
from tandem.operator.watched import Watched
from tandem.operator.workqueue import WorkQueue
from tandem.runtime.ckpt_layout import committed_in_log, foreign_in_log, quarantined_in_log

log = structlog.get_logger("tandem.operator")
Clock = Callable[[], datetime]
API_RETRY_SECONDS = 2.0
# A reconcile that raised (a bug, or a spec no schema foresaw): the job waits this long, doubling, and says why.
ERROR_RETRY_SECONDS, ERROR_RETRY_MAX_SECONDS = 10.0, 300.0


class _ReadFresh(Exception):
    """The caches' view led to a destructive decision: observe from the API before taking it."""


def utcnow() -> datetime:
    return datetime.now(UTC)


def _fixed_after_rejection(job: TrainingJob) -> bool:
    """Failed for an invalid spec at an older generation, and valid now (the caller parsed it)."""
    failed = next((c for c in job.status.conditions if c.type == "Failed"), None)
    generation = int(job.metadata.get("generation", 1))
    return (job.status.phase == JobPhase.FAILED and failed is not None and failed.reason == "InvalidSpec"
            and (failed.observed_generation or 0) < generation)


class Controller(ClusterSync):
    def __init__(self, kube: Kube, clock: Clock = utcnow, force_delete_after: float = 30.0,
                 device_info_namespace: str = "kube-system", namespaces: list[str] | None = None,
                 gate: PeeringGate | None = None, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.kube = kube
        self.monotonic = monotonic  # the create backoff's clock (tests advance it)
        self.namespaces = list(namespaces or [])  # empty: every namespace
        self.clock = clock
        self.force_delete_after = force_delete_after
        self.view = ClusterView(kube, device_info_namespace)
        self._locks: defaultdict[tuple[str, str], threading.Lock] = defaultdict(threading.Lock)
        # Events and timers queue a job; a bounded set of workers reconciles them, each job once at a time.
        self.queue = WorkQueue(self.reconcile_job)
        # The operator's own timers act only on the working replica (kopf pauses its handlers on the others).
        self.requeue = Requeue(self.queue.add, gate)
        # One key: a burst of node or device-report changes (kopf reports every node at start-up) resyncs once.
        self._resyncs = Requeue(lambda *_: self._resync(), gate)
        self._health_lock = threading.Lock()
        self._node_health: dict[str, object] = {}
        self._device_reports: tuple[tuple[str, str], ...] | None = None
        self.stopping = threading.Event()  # set on shutdown: loops over all jobs end early
        # One attempt admitted at a time, on a fresh list of the other jobs' pods: two jobs reconciled at once
        # must not both count the same free nodes.
        self._admission = threading.Lock()
        self._failures: defaultdict[tuple[str, str], int] = defaultdict(int)  # consecutive, for the retry backoff
        # Until when (time.monotonic) a job whose create was refused creates nothing: reconciles that other events
        # trigger (its own status write, its other pods starting) must not retry ahead of the backoff.
        self._refused_until: dict[tuple[str, str], float] = {}
        # When each job's rank 0 log was last read, and the finished rank 0 pod it was read after (if any).
        self.logs = PodLogs(kube)  # rank 0's checkpoints, the supervisors' reports
        self._waiting: set[tuple[str, str]] = set()  # jobs without room now (derived: rebuilt by the rechecks)
        # Every pool pod, from the pod watch (seeded at start-up): what an admission counts as held by others, and
        # each job's pods. Jobs, Services and pools likewise, once `watching` (kopf's handlers feed them).
        self.pods = PodIndex()
        self.jobs, self.services, self.pool_cache = Watched(), Watched(), Watched()
        self.watching = False

    def forget(self, namespace: str, name: str) -> None:
        JOBS.forget(namespace, name)
        self._locks.pop((namespace, name), None)
        self.logs.forget(namespace, name)
        self.pods.forget(namespace, name)
        self._waiting.discard((namespace, name))
        self._failures.pop((namespace, name), None)
        self._refused_until.pop((namespace, name), None)

    def stop(self) -> None:
        """Shutting down (SIGTERM, a rolling update): no new reconciles, no timers; the next
        operator resumes everything from the jobs' status."""
        self.stopping.set()
        self.queue.stop()
        self.requeue.stop()
        self._resyncs.stop()

    def reconcile_job(self, namespace: str, name: str) -> None:
        """Observe, decide, apply; on a stale view (409), or a destructive decision taken on the caches, observe
        again at once from the API. An API that fails (5xx, a dropped connection) is retried later: it never turns
        into a job failure."""
        if self.stopping.is_set():
            return
        with self._locks[(namespace, name)], RECONCILE_SECONDS.time():  # the work, not the wait for the lock
            for tries in range(5):
                try:
                    self._reconcile_once(namespace, name, fresh=tries > 0 or not self.watching)
                    return
                except (Conflict, _ReadFresh) as conflict:
                    log.debug("reconcile_conflict", namespace=namespace, job=name, detail=str(conflict))
                except (ApiException, urllib3.exceptions.HTTPError, OSError) as exc:
                    log.warning("reconcile_api_error", namespace=namespace, job=name, error=str(exc)[:300],
                                retry_in=API_RETRY_SECONDS)
                    self.requeue.after(namespace, name, API_RETRY_SECONDS)
                    return
                except Exception as exc:  # contained to this job: the operator goes on serving the others
                    self._reconcile_failed(namespace, name, exc)
                    return
            self.requeue.after(namespace, name, 1.0)

    def _backoff(self, namespace: str, name: str) -> float:
        self._failures[(namespace, name)] += 1
        return min(ERROR_RETRY_SECONDS * 2 ** (self._failures[(namespace, name)] - 1), ERROR_RETRY_MAX_SECONDS)

    def _reconcile_failed(self, namespace: str, name: str, exc: Exception) -> None:
        retry = self._backoff(namespace, name)
        log.exception("reconcile_failed", namespace=namespace, job=name, retry_in=retry)
        message = (f"the operator could not reconcile this job ({type(exc).__name__}: {str(exc)[:300]}); "
                   f"retry in {retry:.0f}s")
        self._tell(namespace, name, "ReconcileError", message)
        self.requeue.after(namespace, name, retry)

    def _tell(self, namespace: str, name: str, reason: str, message: str) -> None:
        """A Warning Event and a False `Reconciled` condition on the job, best effort (the API may be the problem)."""
        try:
            raw = self.kube.get_job(namespace, name)
            if raw is None:
                return
            before = TrainingJob.model_validate(raw).status
            status = self._not_reconciled(raw, reason, message)
            if status.conditions != before.conditions:
                self._post_pending(self._write(raw, status), status)
        except Exception as again:
            log.warning("job_report_failed", namespace=namespace, job=name, error=str(again)[:300])

    def _reconcile_once(self, namespace: str, name: str, fresh: bool) -> None:
        raw = None if fresh else self.jobs.get(namespace, name)
        raw = raw if raw is not None else self.kube.get_job(namespace, name)
        if raw is None:
            JOBS.forget(namespace, name)
            return
        try:
            job = TrainingJob.model_validate(raw)
        except pydantic.ValidationError as exc:
            self._reject(raw, exc, fresh)
            return
        if job.status.pending_events:  # decided before a crash or an API error: posted now
            raw = self._post_pending(raw, job.status)
            job = TrainingJob.model_validate(raw)
        if _fixed_after_rejection(job):
            self._restart_fixed(raw, job)
            return
        if job.status.phase in TERMINAL and not self._left_running(job, fresh):
            # History: the core changes nothing of a finished job; it only deletes the pods it left running.
            JOBS.observe(namespace, name, job.status.phase.value, job.status.pool or "")
            return
        observation = self._observe(job, fresh)
        decision = reconcile(observation)
        if not fresh and (decision.delete or decision.force_delete or decision.relabel):
            raise _ReadFresh("a decision that deletes or moves pods is taken on the API's view, not the caches'")
        if len(decision.status.faults) > len(job.status.faults) and not self.view.fresh():
            # A fault may rest on a node's state: never on a cached view that a node event is about
            # to correct (a node just back to Ready); decide again on what the API says now.
            self.view.invalidate()
            view = self.view.refresh()
            decision = reconcile(dataclasses.replace(observation, nodes=view.nodes,
                                                     device_faults=view.device_faults))
        if decision.starts_attempt:
            with self._admission:  # one admission at a time; its pods are counted (expected) before it ends
                uid = job.metadata["uid"]
                if not self.watching or not self.pods.seeded:  # nothing keeps the index current: list now
                    self.list_pods()
                decision = reconcile(dataclasses.replace(observation, others=self.pods.others(self.namespaces, uid)))
                uncreated = [m for m in decision.create if m.get("kind") == "Pod"]
                for manifest in uncreated:
                    self.pods.expect(manifest)
            try:
                self._apply(raw, job, decision, observation.pods, uncreated)
            finally:  # what was not created after all (a refusal, an API error): no admission counts it
                for manifest in uncreated:
                    self.pods.unexpect(manifest)
        else:
            self._apply(raw, job, decision, observation.pods)
        JOBS.observe(namespace, name, decision.status.phase.value, decision.status.pool or "")

    def _left_running(self, job: TrainingJob, fresh: bool) -> bool:
        """Does a pod of this finished job still run or wait to (the delete that went with the verdict failed)?"""
        return any(holds_node(p) for p in self._job_pods(job.metadata, fresh))

    def _job_pods(self, meta: Obj, fresh: bool) -> list[Obj]:
        """The job's pods: listed from the API (and the index corrected with that list), or, on the caches' view,
        from the index."""
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        if fresh:
            pods = self.kube.list_job_pods(namespace, name, uid)
            self.pods.correct(namespace, name, uid, pods)
            return pods
        if not self.pods.seeded:
            self.list_pods()
        return self.pods.job_pods(namespace, name, uid)

    def _observe(self, job: TrainingJob, fresh: bool) -> Observation:
        meta = job.metadata
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        view = self.view.refresh()
        service = None if fresh else self.services.get(namespace, name)
        service = service if service is not None else self.kube.get_service(namespace, name)
        if not self.watching or not self.pods.seeded:  # at start-up: one list of every pool pod; the watch keeps it
            self.list_pods()
        pods = self._job_pods(meta, fresh)
        logged = self.logs.rank_zero(job, pods)
        return Observation(
            supervisors=self.logs.supervisors(job, pods),
            logged_checkpoint=committed_in_log(logged) if logged else None,
            foreign_checkpoint=foreign_in_log(logged) if logged else None,
            quarantined=quarantined_in_log(logged) if logged else (),
            job=job,
            pools=self._pools(),
            nodes=view.nodes,
            pods=pods,
            departed=self.pods.departed(namespace, name, uid),
            # Where the other jobs' pods are: the pool a fault or a long wait moves the job to must have room for it.
            others=self.pods.others(self.namespaces, uid),
            service_exists=service is not None and owned_by(service, uid),
            service_foreign=service is not None and not owned_by(service, uid),
            now=self.clock(),
            device_faults=view.device_faults,
            force_delete_after=self.force_delete_after,
        )

    def _pools(self) -> dict[str, AcceleratorPool]:
        if self.watching and not self.pool_cache.seeded:
            self.pool_cache.listing()
            self.pool_cache.seed(self.kube.list_pools())
        pools = {}
        for raw in self.pool_cache.values() if self.watching else self.kube.list_pools():
            try:
                pools[raw["metadata"]["name"]] = AcceleratorPool.model_validate(raw)
            except pydantic.ValidationError as exc:  # one bad pool must not stop the jobs on others
                log.warning("pool_invalid", pool=raw["metadata"]["name"], error=str(exc))
        return pools

    def room_freed(self) -> None:
        """A pod of some job finished or went: the jobs waiting for room look again (the earliest timer wins)."""
        with self._health_lock:
            waiting = list(self._waiting)
        for namespace, name in waiting:
            self.requeue.after(namespace, name, RESYNC_DELAY_SECONDS)

    def _write(self, raw: Obj, status: TrainingJobStatus) -> Obj:
        """Write the whole status, guarded by the resourceVersion it was decided on; the job as it now is."""
        meta = raw["metadata"]
        version = self.kube.patch_job_status(meta["namespace"], meta["name"], meta["resourceVersion"],
                                             status.to_patch())
        written = {**raw, "metadata": {**meta, "resourceVersion": version}, "status": status.to_dict()}
        self.jobs.keep(written)  # the next reconcile starts from it, not from the version the watch has yet
        return written

    def _post_pending(self, raw: Obj, status: TrainingJobStatus) -> Obj:
        """Post the Events the status holds, then clear them (each has a stable name: a replay posts none twice).
        Events are best effort, as client-go's recorder makes them: one the API refuses (an events quota, RBAC, a
        rate limit: a 4xx) is dropped, one it fails to store (5xx, no answer) is posted by a later reconcile; the
        job's own reconcile never waits for them."""
        kept = [event for event in status.pending_events if not self._posted(raw, status, event)]
        if kept == status.pending_events:
            return raw
        return self._write(raw, status.model_copy(update={"pending_events": kept}))

    def _posted(self, raw: Obj, status: TrainingJobStatus | None, event: PendingEvent) -> bool:
        """Posted, or dropped for good; False: try again later."""
        meta = raw["metadata"]
        where = {"namespace": meta["namespace"], "job": meta["name"], "type": event.type, "reason": event.reason,
                 "message": event.message}
        try:
            self.kube.post_event(raw, event)
        except ApiException as error:
            if error.status is not None and 400 <= error.status < 500:
                log.warning("job_event_dropped", **where, status=error.status, error=str(error.reason)[:300])
                return True
            log.warning("job_event_not_posted", **where, status=error.status, retry="next reconcile")
            return False
        except (urllib3.exceptions.HTTPError, OSError) as error:
            log.warning("job_event_not_posted", **where, error=str(error)[:300], retry="next reconcile")
            return False
        if status is not None:
            where.update(attempt=status.attempt, pool=status.pool, phase=status.phase.value)
        log.info("job_event", **where)
        return True

    def _apply(self, raw: Obj, job: TrainingJob, decision: Decision, pods: Sequence[Obj],
               uncreated: list[Obj] | None = None) -> None:
        """`uncreated`: the pod manifests the admission counted; each leaves the list once created."""
        meta = raw["metadata"]
        namespace, name = meta["namespace"], meta["name"]
        now = self.clock()
        status = decision.status.model_copy(update={"pending_events": [
            *decision.status.pending_events,
            *(PendingEvent(type=e.type, reason=e.reason, message=e.message, time=now) for e in decision.events)]})
        held = self._refused_until.get((namespace, name), 0.0) - self.monotonic()
        holding = bool(decision.create) and held > 0  # a refused create waits out its backoff
        refused = next((c for c in status.conditions if c.type == "Reconciled" and c.status.value == "False"), None)
        if refused is not None and not holding:  # the last refusal or error is over once a decision goes through
            set_condition(status, "Reconciled", True, "Reconciled", f"reconciled again after {refused.reason}", now,
                          int(meta.get("generation", 1)))
        if status != job.status:  # the write-ahead log: the decision and its Events, before any action
            raw = self._write(raw, status)
        # Only the pod as it was observed, on a fresh read (a decision that deletes or moves pods is never taken on
        # the caches): its uid and resourceVersion are preconditions the API server checks; a pod that changed since
        # (moved to a newer attempt, say) answers 409 and the job is observed again.
        seen = {p["metadata"]["name"]: p["metadata"] for p in pods}

        def guard(pod: str) -> dict[str, str | None]:
            meta = seen.get(pod) or {}
            return {"uid": meta.get("uid"), "resource_version": meta.get("resourceVersion")}

        for pod in decision.delete:
            self.kube.delete_pod(namespace, pod, **guard(pod))
        for pod in decision.relabel:  # the supervisors restart when they see it (tandem.in_place)
            self.kube.label_pod_attempt(namespace, pod, decision.status.attempt, **guard(pod))
        for pod in decision.force_delete:
            log.warning("pod_force_deleted", namespace=namespace, job=name, pod=pod,
                        reason="Terminating on a node that no longer answers")
            self.kube.delete_pod(namespace, pod, force=True, **guard(pod))
        try:
            if holding:
                self.requeue.after(namespace, name, held)
            else:
                for manifest in decision.create:
                    if manifest.get("kind") == "Pod":
                        self.pods.expect(manifest)  # counted by the next admission before the watch brings it
                    self.kube.create(manifest)
                    if uncreated is not None and manifest in uncreated:
                        uncreated.remove(manifest)
                    if manifest.get("kind") == "Service":
                        self.services.keep(manifest)  # not created again before the watch brings it
                self._failures.pop((namespace, name), None)  # the backoff of refusals and errors starts over
                self._refused_until.pop((namespace, name), None)
        except (Refused, Foreign) as refused:
            raw = self._create_failed(raw, refused)
        self._count(decision)
        admitted = next((c for c in status.conditions if c.type == "Admitted"), None)
        waiting = (admitted is not None and admitted.status.value == "False"
                   and (status.attempt == 0 or status.phase == JobPhase.RESTARTING))
        with self._health_lock:
            (self._waiting.add if waiting else self._waiting.discard)((namespace, name))
        written = TrainingJob.model_validate(raw).status if raw.get("status") else status
        if written.pending_events:  # this decision's, and a refusal's the creates just recorded
            self._post_pending(raw, written)
        if decision.requeue_after is not None:
            self.requeue.after(namespace, name, decision.requeue_after)

    def _create_failed(self, raw: Obj, error: Refused | Foreign) -> Obj:
        """The API server refused an object (a quota, Pod Security, a name another owner holds): the job says so,
        in a condition and a Warning Event with the server's words, and tries again later with a backoff;
        never a silent loop."""
        meta = raw["metadata"]
        retry = self._backoff(meta["namespace"], meta["name"])
        reason = "CreateRefused" if isinstance(error, Refused) else "NameTaken"
        message = f"{error}; retry in {retry:.0f}s"[:1000]
        log.warning("create_refused", namespace=meta["namespace"], job=meta["name"], error=str(error)[:500],
                    retry_in=retry)
        self.requeue.after(meta["namespace"], meta["name"], retry)
        self._refused_until[(meta["namespace"], meta["name"])] = self.monotonic() + retry
        return self._write(raw, self._not_reconciled(raw, reason, message))

    def _not_reconciled(self, raw: Obj, reason: str, message: str) -> TrainingJobStatus:
        """The job's status with `Reconciled=False` and a Warning Event pending, both saying why."""
        now = self.clock()
        status = TrainingJob.model_validate(raw).status.model_copy(deep=True)
        set_condition(status, "Reconciled", False, reason, message, now, int(raw["metadata"].get("generation", 1)))
        status.pending_events.append(PendingEvent(type="Warning", reason=reason, message=message, time=now))
        return status

    def _delete_pods(self, raw: Obj, unfinished_only: bool, fresh: bool = True) -> int:
        """Delete the job's pods (those still running or waiting to, or all of them); how many there were. Each
        delete carries the uid and resourceVersion seen: a stale view answers 409 and is observed again."""
        meta = raw["metadata"]
        pods = [p for p in self._job_pods(meta, fresh)
                if (holds_node(p) if unfinished_only else not is_terminating(p))]
        for pod in pods:
            self.kube.delete_pod(meta["namespace"], pod["metadata"]["name"], uid=pod["metadata"].get("uid"),
                                 resource_version=pod["metadata"].get("resourceVersion"))
        return len(pods)

    def _restart_fixed(self, raw: Obj, job: TrainingJob) -> None:
        """A job Failed for an invalid spec that its owner then fixed: it starts again, from a fresh status. The
        earlier run's pods go first: their attempts are past the fresh status's, which waits until they are gone
        (reconcile's guard against a stale view) and then reuses their names."""
        now = self.clock()
        earlier = self._delete_pods(raw, unfinished_only=False)
        gone = f" (the {earlier} pod(s) of the earlier run are deleted)" if earlier else ""
        message = f"the spec (generation {job.metadata.get('generation')}) is valid now: starting again{gone}"
        status = TrainingJobStatus(pending_events=[PendingEvent(type="Normal", reason="SpecFixed", message=message,
                                                                time=now)])
        raw = self._write(raw, status)
        self._post_pending(raw, status)
        self.requeue.after(raw["metadata"]["namespace"], raw["metadata"]["name"], 0.1)

    @staticmethod
    def _count(decision: Decision) -> None:
        if decision.restarted:
            RESTARTS.labels(pool=decision.restarted[0], **{"class": decision.restarted[1]}).inc()
        if decision.failed_over:
            FAILOVERS.labels(from_pool=decision.failed_over[0], to_pool=decision.failed_over[1]).inc()
        if decision.recovered_after is not None:
            RECOVERY_SECONDS.observe(decision.recovered_after)
        if decision.in_place is not None:
            IN_PLACE_RESTARTS.labels(pool=decision.status.pool or "", outcome=decision.in_place).inc()

    def _reject(self, raw: Obj, error: pydantic.ValidationError, fresh: bool) -> None:
        """A spec the API server let through but the operator cannot run (e.g. stored before the CRD's
        current schema): Failed with the reason, and the operator goes on with other jobs."""
        meta = raw["metadata"]
        message = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in error.errors())[:1000]
        status = dict(raw.get("status") or {})
        if status.get("phase") == JobPhase.FAILED.value:
            self._delete_pods(raw, unfinished_only=True, fresh=fresh)  # a delete that failed when it was rejected
            return
        now = self.clock()
        holder = TrainingJobStatus()
        set_condition(holder, "Failed", True, "InvalidSpec", message, now, int(meta.get("generation", 1)))
        status.update(phase=JobPhase.FAILED.value, message=f"invalid spec: {message}",
                      completionTime=now.strftime("%Y-%m-%dT%H:%M:%SZ"),
                      conditions=[c.to_dict() for c in holder.conditions])
        version = self.kube.patch_job_status(meta["namespace"], meta["name"], meta["resourceVersion"], status)
        self.jobs.keep({**raw, "metadata": {**meta, "resourceVersion": version}, "status": status})
        self._posted(raw, None, PendingEvent(type="Warning", reason="InvalidSpec", message=message, time=now))
        log.warning("job_rejected", namespace=meta["namespace"], job=meta["name"], reason=message)
        self._delete_pods(raw, unfinished_only=True, fresh=fresh)  # a Failed job holds no accelerators
