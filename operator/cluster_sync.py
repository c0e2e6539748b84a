"""What the operator does for the cluster as a whole, beside each job's reconcile: the pools' status, the nodes'
health and the device plugins' fault reports, and the pass over every job when one of those changed. A part of
`Controller` (operator/controller.py), kept apart so that each file reads as one concern."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import datetime

import pydantic
import structlog

from tandem.operator.api import AcceleratorPool
from tandem.operator.cluster_view import ClusterView
from tandem.operator.kube import Kube, Obj
from tandem.operator.pod_index import PodIndex
from tandem.operator.pools import pool_status
from tandem.operator.reconcile import TERMINAL
from tandem.operator.requeue import Requeue
from tandem.operator.workqueue import WorkQueue

log = structlog.get_logger("tandem.operator")
RESYNC_DELAY_SECONDS = 0.5
RESYNC_RETRY_SECONDS = 5.0
DEVICE_REPORT_POLL_SECONDS = 5.0


class ClusterSync:
    kube: Kube
    view: ClusterView
    clock: Callable[[], datetime]
    namespaces: list[str]
    queue: WorkQueue
    pods: PodIndex
    watching: bool
    stopping: threading.Event
    _resyncs: Requeue
    _health_lock: threading.Lock
    _node_health: dict[str, object]
    _device_reports: tuple[tuple[str, str], ...] | None

    def sync_pool(self, raw_pool: Obj) -> None:
        try:
            pool = AcceleratorPool.model_validate(raw_pool)
        except pydantic.ValidationError as exc:
            log.warning("pool_invalid", pool=raw_pool["metadata"]["name"], error=str(exc))
            return
        view = self.view.refresh()
        status = pool_status(pool, view.nodes, self.clock(), view.device_faults)
        if status != pool.status:
            self.kube.patch_pool_status(raw_pool["metadata"]["name"], status.to_dict())

    def sync_all_pools(self) -> None:
        for raw_pool in self.kube.list_pools():
            self.sync_pool(raw_pool)

    def node_health_changed(self, node: Obj, deleted: bool) -> bool:
        """Remembers each node's health signature (derived, rebuilt from the watch after a restart)."""
        name = node["metadata"]["name"]
        signature = None if deleted else (
            tuple(sorted((c.get("type"), c.get("status")) for c in node.get("status", {}).get("conditions") or [])),
            tuple(sorted((t.get("key"), t.get("effect")) for t in node.get("spec", {}).get("taints") or [])),
        )
        with self._health_lock:
            changed = self._node_health.get(name) != signature
            self._node_health[name] = signature
        return changed

    def cluster_changed(self) -> None:
        """Nodes or fault reports changed: pools report it, and every active job looks again, once
        for a burst of changes (at start-up kopf reports every node; a rack going down, many)."""
        self._resyncs.after("", "cluster", RESYNC_DELAY_SECONDS)

    def _resync(self) -> None:
        """Every pool's status and every active job, again. A failure (a 500, a timeout) is retried: device
        reports and node faults are acted on only through this pass."""
        try:
            self.view.invalidate()
            self.sync_all_pools()
            self.reconcile_all()
        except Exception:
            log.exception("resync_failed", retry_in=RESYNC_RETRY_SECONDS)
            self._resyncs.after("", "cluster", RESYNC_RETRY_SECONDS)

    def start_device_report_poll(self) -> threading.Thread:
        def poll() -> None:
            while True:  # at once, then every DEVICE_REPORT_POLL_SECONDS: reconciles read the last list
                try:
                    self.poll_device_reports()
                except Exception as exc:  # the API may be away for a while; keep polling
                    log.warning("device_reports_unreadable", namespace=self.view.namespace, error=str(exc)[:300])
                try:
                    self.reseed_pods()
                except Exception as exc:
                    log.warning("pod_list_failed", error=str(exc)[:300])
                if self.stopping.wait(DEVICE_REPORT_POLL_SECONDS):
                    return

        thread = threading.Thread(target=poll, name="device-reports", daemon=True)
        thread.start()
        return thread

    def list_pods(self) -> None:
        """Every pool pod, listed, merged into the index with what the pod watch brought meanwhile."""
        self.pods.listing()
        self.pods.seed(self.kube.list_pool_pods(self.namespaces), merge=self.watching)

    def reseed_pods(self) -> None:
        """Every RESEED_SECONDS, here and not in a reconcile: the whole list of pool pods (operator/pod_index.py)."""
        if self.watching and self.pods.seeded and self.pods.due():
            started = time.monotonic()
            self.list_pods()
            log.info("pod_index_listed", pods=len(self.pods.pods(self.namespaces)),
                     seconds=round(time.monotonic() - started, 2))

    def poll_device_reports(self) -> None:
        """Resync when the device-info ConfigMaps changed since the last poll (one per pool timer)."""
        listed = self.view.device_reports()
        self.view.observe_reports(listed)
        reports = tuple(sorted((cm["metadata"]["name"], cm["metadata"].get("resourceVersion", "")) for cm in listed))
        with self._health_lock:
            changed = self._device_reports is not None and reports != self._device_reports
            self._device_reports = reports
        if changed:
            log.info("device_reports_changed", namespace=self.view.namespace, reports=len(reports))
            self.cluster_changed()

    def reconcile_all(self) -> None:
        for raw in self.kube.list_jobs(self.namespaces):
            if self.stopping.is_set():
                return
            if (raw.get("status") or {}).get("phase") in TERMINAL:
                continue
            self.queue.add(raw["metadata"]["namespace"], raw["metadata"]["name"])

