"""Reading the cluster as the core needs it: what a pod's status says about its rank, which
nodes belong to a pool. Pure functions over plain Kubernetes objects."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from tandem.operator.api import AcceleratorPool
from tandem.operator.api_podtemplate import CONTAINER
from tandem.operator.podspec import ATTEMPT_LABEL, RANK_LABEL

Obj = dict[str, Any]


def labels(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def attempt_of(pod: Obj) -> int:
    try:
        return int(labels(pod).get(ATTEMPT_LABEL, "0"))
    except ValueError:
        return 0


def rank_of(pod: Obj) -> int:
    try:
        return int(labels(pod).get(RANK_LABEL, "-1"))
    except ValueError:
        return -1


def _trainer_status(pod: Obj) -> Obj:
    """The training container's entry in the pod's containerStatuses ({} before it has one)."""
    for status in pod.get("status", {}).get("containerStatuses") or []:
        if isinstance(status, dict) and status.get("name") == CONTAINER:
            return status
    return {}


def phase_of(pod: Obj) -> str:
    """The rank's phase: the pod's, except that a training container that ended in a pod its sidecars keep
    Running (restartPolicy Never) has ended the rank, by its exit code."""
    phase = str(pod.get("status", {}).get("phase") or "Pending")
    ended = (_trainer_status(pod).get("state") or {}).get("terminated")
    if phase == "Running" and isinstance(ended, dict):
        return "Succeeded" if ended.get("exitCode") == 0 else "Failed"
    return phase


def pod_ended(pod: Obj) -> bool:
    """Has the pod itself stopped (every container), so that it holds its node and devices no more? A rank can end
    before its pod does, while a sidecar runs."""
    return str(pod.get("status", {}).get("phase") or "Pending") in ("Succeeded", "Failed")


def holds_node(pod: Obj) -> bool:
    """Does the pod still hold its node and devices with no delete on its way (it runs, or waits to)? What a job that
    ends, or a decision that replaces its pods, deletes."""
    return not pod_ended(pod) and not is_terminating(pod)


def is_bound(pod: Obj) -> bool:
    return bool(pod.get("spec", {}).get("nodeName"))


def is_terminating(pod: Obj) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


def is_finished(pod: Obj) -> bool:
    return phase_of(pod) in ("Succeeded", "Failed")


def disruption_target(pod: Obj) -> Obj:
    """The pod's DisruptionTarget condition when it is True (an eviction, a preemption, a taint or the node's
    shutdown marked the pod for deletion), else {}; {} for a malformed pod too."""
    status = pod.get("status") if isinstance(pod, dict) else None
    conditions = status.get("conditions") if isinstance(status, dict) else None
    return next((c for c in conditions if isinstance(c, dict) and c.get("type") == "DisruptionTarget"
                 and c.get("status") == "True"), {}) if isinstance(conditions, list) else {}


def stopped_from_outside(pod: Obj) -> bool:
    """Did the rank end with exit code 0 after its pod was marked for disruption? A script that saves and exits 0
    when told to stop has not finished: the job restarts from its checkpoint rather than counting the rank done."""
    return phase_of(pod) == "Succeeded" and bool(disruption_target(pod))


def _terminated_state(pod: Obj) -> Obj:
    """How the training container ended ({} while it runs); in a pod without one of that name, the first
    container that ended."""
    trainer = _trainer_status(pod)
    statuses = [trainer] if trainer else pod.get("status", {}).get("containerStatuses") or []
    for status in statuses:
        terminated = (status.get("state") or {}).get("terminated") if isinstance(status, dict) else None
        if terminated:
            return dict(terminated)
    return {}


def ready_condition(node: Obj) -> Obj:
    """The node's Ready condition ({} when it has none)."""
    conditions = node.get("status", {}).get("conditions") or []
    return next((c for c in conditions if isinstance(c, dict) and c.get("type") == "Ready"), {})


def node_is_ready(node: Obj) -> bool:
    return ready_condition(node).get("status") == "True"


def pool_nodes(pool: AcceleratorPool, nodes: list[Obj]) -> list[Obj]:
    selector = pool.spec.node_selector
    return [n for n in nodes if all(labels(n).get(k) == v for k, v in selector.items())]


def parse_time(value: object) -> datetime | None:
    """An RFC 3339 time from an object; None when absent or unreadable (a time the core cannot read decides
    nothing, it never raises)."""
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def parse_report(message: Any) -> dict[str, Any] | None:
    """The runtime's JSON termination message (docs/design.md#termination-message); None for a log tail or garbage."""
    if not isinstance(message, str) or not message.lstrip().startswith("{"):
        return None
    try:
        report = json.loads(message)
    except ValueError:
        return None
    return report if isinstance(report, dict) and "class" in report else None


def termination_report(pod: Obj) -> dict[str, Any] | None:
    return parse_report(_terminated_state(pod).get("message"))


def reported_checkpoint(pods: list[Obj]) -> int | None:
    """The newest complete checkpoint any rank reported on exit."""
    steps = [r.get("checkpointStep") for r in map(termination_report, pods) if r]
    steps = [s for s in steps if isinstance(s, int)]
    return max(steps) if steps else None


def created_at(pod: Obj) -> datetime | None:
    return parse_time(pod.get("metadata", {}).get("creationTimestamp"))


def finished_at(pod: Obj) -> str:
    """When the pod's container terminated, as the kubelet wrote it ("" while it runs)."""
    return str(_terminated_state(pod).get("finishedAt") or "")


def deleted_at(pod: Obj) -> datetime | None:
    return parse_time(pod.get("metadata", {}).get("deletionTimestamp"))
