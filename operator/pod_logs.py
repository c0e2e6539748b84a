"""What the operator reads from pod logs (pods/log, read only): rank 0's checkpoint events while an attempt runs
(status.lastCheckpoint, foreign and quarantined checkpoints) and the supervisors' in-place restart reports
(tandem.in_place). Reads are bounded: rank 0 at most every PROGRESS_SECONDS per job, a supervisor only while its
pod runs and is not Ready, or stays through an in-place restart that runs, and then again only once its pod changed
or SUPERVISOR_REREAD_SECONDS passed (a job's burst of pod events must not read every log each time)."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import structlog
import urllib3
from kubernetes.client.exceptions import ApiException

from tandem.in_place import SupervisorReport, last_report
from tandem.operator import restart_in_place as in_place
from tandem.operator.api import JobPhase, TrainingJob
from tandem.operator.kube import Kube, Obj
from tandem.operator.observe import attempt_of, is_finished, phase_of, rank_of
from tandem.operator.podspec import pod_name
from tandem.operator.reconcile import PROGRESS_SECONDS

log = structlog.get_logger("tandem.operator")
SUPERVISOR_LOG_LINES = 200  # a supervisor's report is its last line once its workers stopped or stepped
SUPERVISOR_REREAD_SECONDS = 1.0  # the readiness probe's period: a report is not awaited more often than Ready is
UNREADABLE = (ApiException, urllib3.exceptions.HTTPError, OSError)


class PodLogs:
    def __init__(self, kube: Kube, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.kube, self.monotonic = kube, monotonic
        # When each job's rank 0 log was last read, and the finished rank 0 pod it was read after (if any).
        self._read: dict[tuple[str, str], tuple[float, str]] = {}
        # Per job, per pod: the pod's resourceVersion and the time of the last read of its supervisor, and the report.
        self._heard: dict[tuple[str, str], dict[str, tuple[str, float, SupervisorReport | None]]] = {}

    def forget(self, namespace: str, name: str) -> None:
        self._read.pop((namespace, name), None)
        self._heard.pop((namespace, name), None)

    def rank_zero(self, job: TrainingJob, pods: Sequence[Obj]) -> str | None:
        """While an attempt runs, the tail of rank 0's log (the checkpoints it committed, the checkpoint it
        resumed, the ones it set aside): at most every PROGRESS_SECONDS per job (pod events would otherwise read
        it many times a second), and once more when rank 0 has finished (a short run may end between reads)."""
        meta, status = job.metadata, job.status
        if status.phase != JobPhase.RUNNING:
            return None
        # Rank 0's pod of this attempt: after an in-place restart, a pod of an earlier attempt's name.
        rank_zero = next((p["metadata"]["name"] for p in pods if rank_of(p) == 0 and attempt_of(p) == status.attempt),
                         pod_name(meta["name"], status.attempt, 0))
        key = (meta["namespace"], meta["name"])
        ended = any(p["metadata"]["name"] == rank_zero and is_finished(p) for p in pods)
        last = self._read.get(key)
        due = last is None or time.monotonic() - last[0] >= PROGRESS_SECONDS
        if not (due or (ended and last[1] != rank_zero)):
            return None
        self._read[key] = (time.monotonic(), rank_zero if ended else "")
        try:
            return self.kube.read_log_tail(meta["namespace"], rank_zero)
        except UNREADABLE as exc:  # progress is optional; faults are not
            log.debug("progress_unreadable", namespace=meta["namespace"], job=meta["name"], error=str(exc)[:200])
            return None

    def supervisors(self, job: TrainingJob, pods: Sequence[Obj]) -> dict[str, SupervisorReport]:
        """What the supervisors said last (tandem.in_place), read from the log of each pod that takes part and is
        running but not Ready (its workers faulted, or have not stepped yet), or stays through an in-place restart
        that runs. A log that cannot be read says nothing: the deadline covers a supervisor nobody hears."""
        status, namespace = job.status, job.metadata["namespace"]
        restart = status.in_place_restart
        staying = set(restart.pods) if restart is not None and in_place.in_progress(status) else set()
        before = self._heard.get((namespace, job.metadata["name"]), {})
        heard: dict[str, tuple[str, float, SupervisorReport | None]] = {}
        for pod in pods:
            name = pod["metadata"]["name"]
            if not in_place.takes_part(pod) or phase_of(pod) != "Running":
                continue
            if in_place.is_ready(pod) and name not in staying:
                continue
            version, now = str(pod["metadata"].get("resourceVersion") or ""), self.monotonic()
            last = before.get(name)
            if last is not None and last[0] == version and now - last[1] < SUPERVISOR_REREAD_SECONDS:
                heard[name] = last
                continue
            try:
                text = self.kube.read_log_tail(namespace, name, lines=SUPERVISOR_LOG_LINES)
            except UNREADABLE as exc:
                log.debug("supervisor_log_unreadable", namespace=namespace, pod=name, error=str(exc)[:200])
                continue
            heard[name] = (version, now, last_report(text))
        self._heard[(namespace, job.metadata["name"])] = heard
        return {name: report for name, (_, _, report) in heard.items() if report is not None}
