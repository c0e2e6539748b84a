"""The pure decisions behind node faults and force deletion in the local cluster."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from tandem.localcluster.api import pod_deletion_grace
from tandem.localcluster.containers import lost_status, running_status
from tandem.localcluster.errors import KubernetesError
from tandem.localcluster.node_lifecycle import controller_taints, event, is_down, pod_not_ready, ready_status
from tandem.localcluster.resources import ResourceType
from tandem.localcluster.store import Store

T0, T1 = "2026-11-23T12:00:00Z", "2026-11-23T12:05:00Z"
PODS = ResourceType(group="", version="v1", plural="pods", kind="Pod", singular="pod", namespaced=True,
                    verbs=["get"], subresources=["status"])


def _node(ready: str | None, taints: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    conditions = [{"type": "MemoryPressure", "status": "False"}]
    if ready is not None:
        conditions.append({"type": "Ready", "status": ready})
    return {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "n0", "uid": "u-n0"},
            "spec": {"taints": taints} if taints is not None else {}, "status": {"conditions": conditions}}


def _pod(phase: str = "Pending", node: str | None = "n0", **meta: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"restartPolicy": "Never", "terminationGracePeriodSeconds": 30,
                            "containers": [{"name": "main", "image": "img", "command": ["python"]}]}
    if node:
        spec["nodeName"] = node
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ml", "uid": "u-p", **meta},
            "spec": spec, "status": {"phase": phase}}


def _running_pod(**meta: Any) -> dict[str, Any]:
    pod = _pod(**meta)
    pod["status"] = running_status(pod, "127.0.0.5", "tandem-local://u-p/42", T0, T0)
    return pod


# --- node readiness and taints ----------------------------------------------------------------
@pytest.mark.parametrize(("ready", "status", "down"), [("True", "True", False), ("False", "False", True),
                                                        ("Unknown", "Unknown", True), (None, "True", False)])
def test_ready_status_and_down(ready: str | None, status: str, down: bool) -> None:
    assert ready_status(_node(ready)) == status and is_down(_node(ready)) is down


def test_no_node_is_not_down() -> None:
    assert is_down(None) is False


def test_unknown_adds_unreachable_for_both_effects_after_other_taints() -> None:
    own = {"key": "dedicated", "value": "ml", "effect": "NoSchedule"}
    assert controller_taints(_node("Unknown", [own]), T0) == [
        own, {"key": "node.kubernetes.io/unreachable", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "effect": "NoExecute", "timeAdded": T0}]


def test_false_swaps_unreachable_for_not_ready() -> None:
    tainted = _node("Unknown", controller_taints(_node("Unknown"), T0))
    swapped = controller_taints({**tainted, "status": _node("False")["status"]}, T1)
    assert swapped == [{"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"},
                       {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute", "timeAdded": T1}]


def test_taints_already_there_are_kept_with_their_time() -> None:
    tainted = controller_taints(_node("False"), T0)
    assert controller_taints(_node("False", tainted), T1) == tainted


def test_ready_again_removes_only_the_controllers_taints() -> None:
    own = {"key": "node.kubernetes.io/not-ready", "effect": "PreferNoSchedule"}  # not the controller's effect
    tainted = _node("True", [*controller_taints(_node("Unknown"), T0), own])
    assert controller_taints(tainted, T1) == [own]


# --- pods on a node that is down --------------------------------------------------------------
def test_pod_not_ready_flips_only_the_ready_condition() -> None:
    pod = _running_pod()
    status = pod_not_ready(pod, T1)
    assert status is not None and status["phase"] == "Running"
    conditions = {c["type"]: c for c in status["conditions"]}
    assert conditions["Ready"] == {"type": "Ready", "status": "False", "lastTransitionTime": T1}
    assert conditions["ContainersReady"]["status"] == "True"  # MarkPodsNotReady leaves the rest alone
    assert status["containerStatuses"] == pod["status"]["containerStatuses"]


def test_pod_not_ready_leaves_pods_without_a_true_ready_condition() -> None:
    assert pod_not_ready(_pod(), T1) is None
    marked = _running_pod()
    marked["status"] = pod_not_ready(marked, T0)
    assert pod_not_ready(marked, T1) is None


def test_events_name_pods_in_their_namespace_and_nodes_in_default() -> None:
    on_pod = event(_pod(), "NodeNotReady", "Node is not ready", "Warning", T0, "abc")
    kubernetes_validate.validate(on_pod, "1.32", strict=True)
    assert on_pod["metadata"] == {"name": "p.abc", "namespace": "ml"}
    assert on_pod["involvedObject"] == {"apiVersion": "v1", "kind": "Pod", "name": "p", "uid": "u-p", "namespace": "ml"}
    on_node = event(_node("Unknown"), "NodeNotReady", "Node n0 status is now: NodeNotReady", "Normal", T0, "d")
    assert on_node["metadata"]["namespace"] == "default" and "namespace" not in on_node["involvedObject"]


# --- what a restarted kubelet reports ----------------------------------------------------------
def test_lost_status_of_a_running_pod() -> None:
    pod = _running_pod()
    status = lost_status(pod, T1)
    container = status["containerStatuses"][0]
    assert status["phase"] == "Failed" and status["podIP"] == "127.0.0.5"
    assert container["state"] == {"terminated": {"exitCode": 137, "reason": "ContainerStatusUnknown",
                                                 "message": "The container could not be located when the pod "
                                                            "was terminated"}}
    assert container["lastState"]["terminated"]["exitCode"] == 137 and container["restartCount"] == 1
    assert not container["ready"] and "containerID" not in container
    assert {c["type"]: c["status"] for c in status["conditions"]}["Ready"] == "False"
    kubernetes_validate.validate({**pod, "status": status}, "1.32", strict=True)


def test_lost_status_of_a_deleted_pod_counts_no_restart() -> None:
    pod = _running_pod(deletionTimestamp=T1)
    assert lost_status(pod, T1)["containerStatuses"][0]["restartCount"] == 0


def test_lost_status_of_a_pod_that_never_ran_has_no_last_state() -> None:
    container = lost_status(_pod(), T1)["containerStatuses"][0]
    assert "lastState" not in container and container["restartCount"] == 0


def test_lost_status_keeps_a_finished_pod() -> None:
    pod = _pod(phase="Succeeded")
    assert lost_status(pod, T1) == pod["status"]


# --- deletion ----------------------------------------------------------------------------------
@pytest.mark.parametrize(("pod", "requested", "seconds"), [
    (_pod("Running"), None, 30), (_pod("Running"), "0", 0), (_pod("Running"), 7, 7),
    (_pod("Pending", node=None), 10, 0), (_pod("Succeeded"), 10, 0), (_pod("Failed"), None, 0)])
def test_pod_deletion_grace(pod: dict[str, Any], requested: Any, seconds: int) -> None:
    assert pod_deletion_grace(pod, requested) == seconds


def test_pod_deletion_grace_refuses_garbage() -> None:
    with pytest.raises(KubernetesError) as exc:
        pod_deletion_grace(_pod("Running"), "soon")
    assert exc.value.status == 400


def test_a_pending_graceful_deletion_may_only_be_shortened() -> None:
    store = Store()
    store.create(PODS, "ml", {"metadata": {"name": "p"}})
    key = (PODS.group_resource, "ml", "p")
    first = store.mark_terminating(key, 30)
    assert store.mark_terminating(key, 60) is first
    shorter = store.mark_terminating(key, 0)
    assert shorter["metadata"]["deletionGracePeriodSeconds"] == 0


def test_status_writes_keep_a_pod_in_its_grace_period() -> None:
    store = Store()
    store.create(PODS, "ml", {"metadata": {"name": "p"}, "status": {"phase": "Running"}})
    key = (PODS.group_resource, "ml", "p")
    marked = store.mark_terminating(key, 30)
    store.update(PODS, marked, {**marked, "status": {"phase": "Running", "reason": "x"}}, "status")
    assert store.find(PODS.group_resource, "ml", "p") is not None  # only the kubelet's removal ends it
