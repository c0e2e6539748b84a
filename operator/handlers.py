"""kopf handlers: one per concern, each small, each calling the Controller. They only say *when*
to reconcile; *what* to do is decided by `tandem.operator.reconcile`."""

from __future__ import annotations

from typing import Any

import kopf

from tandem.operator.api import GROUP, VERSION, AcceleratorPool, TrainingJob
from tandem.operator.controller import Controller
from tandem.operator.podspec import JOB_LABEL

JOBS = kopf.Resource(GROUP, VERSION, TrainingJob.PLURAL)
POOLS = kopf.Resource(GROUP, VERSION, AcceleratorPool.PLURAL)


def register(registry: kopf.OperatorRegistry, controller: Controller) -> None:
    """Handlers bound to one Controller; a registry per operator keeps tests independent. They feed the
    controller's caches and queue the jobs concerned; the controller's workers reconcile them."""
    controller.watching = True

    @kopf.on.event(GROUP, VERSION, TrainingJob.PLURAL, registry=registry)
    def job_changed(type: str | None, body: kopf.Body, name: str, namespace: str, **_: Any) -> None:
        """Created, resumed after an operator restart (kopf lists every job first), or updated."""
        controller.jobs.observe(type, dict(body))
        if type == "DELETED":
            controller.forget(namespace, name)
            return
        controller.queue.add(namespace, name)

    @kopf.on.event("", "v1", "pods", labels={JOB_LABEL: kopf.PRESENT}, registry=registry)
    def job_pod_changed(type: str | None, body: kopf.Body, labels: dict[str, str], namespace: str,
                        **_: Any) -> None:
        controller.pods.observe(type, dict(body))  # before the reconcile: it reads this pod from the index
        controller.queue.add(namespace, labels[JOB_LABEL])
        if type == "DELETED" or (body.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
            controller.room_freed()  # jobs waiting for room look again now, not at their next recheck

    @kopf.on.event("", "v1", "services", labels={JOB_LABEL: kopf.PRESENT}, registry=registry)
    def job_service_changed(type: str | None, body: kopf.Body, labels: dict[str, str], namespace: str,
                            **_: Any) -> None:
        controller.services.observe(type, dict(body))
        if type == "DELETED":  # someone removed it: rank 0's name must resolve again
            controller.queue.add(namespace, labels[JOB_LABEL])

    @kopf.on.event(GROUP, VERSION, AcceleratorPool.PLURAL, registry=registry)
    def pool_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
        controller.pool_cache.observe(type, dict(body))
        if type != "DELETED":
            controller.sync_pool(dict(body))
        if type in ("ADDED", "DELETED", None):
            # Jobs waiting for this pool to exist, or running on one just deleted, look again.
            controller.cluster_changed()

    @kopf.on.event("", "v1", "nodes", registry=registry)
    def node_changed(type: str | None, body: kopf.Body, **_: Any) -> None:
        controller.view.observe_node(type, dict(body))
        # A node's health decides pool capacity and whether ranks on it are still alive; heartbeats that
        # change nothing of that are ignored.
        if controller.node_health_changed(dict(body), deleted=type == "DELETED"):
            controller.cluster_changed()

    @kopf.on.startup(registry=registry)
    def watch_device_reports(**_: Any) -> None:
        """The Ascend device plugin's per-node fault ConfigMaps live in one namespace: polled there
        (a thread: a kopf timer would put finalizers on pools, a kopf handler would watch ConfigMaps
        in every namespace the operator serves)."""
        controller.start_device_report_poll()

    @kopf.on.cleanup(registry=registry)
    def stop_reconciling(**_: Any) -> None:
        controller.stop()
