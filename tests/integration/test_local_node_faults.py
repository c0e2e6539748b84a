"""Node faults and force deletion in the local cluster, injected only through the Kubernetes API
(kubectl and the `kubernetes` client), as a user or the operator would on a real cluster."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import kubernetes
import kubernetes_validate
from processes import pod_pid, process_alive

NS = "default"
SLEEP = "import time; time.sleep(600)"
# Ignores SIGTERM, so only a SIGKILL (the end of a grace period, or a force deletion) stops it.
# It says "up" once the handler is set: a SIGTERM before that would still end it.
STUBBORN = ("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True);"
            "time.sleep(600)")
WaitFor = Callable[..., Any]


def _pod(name: str, code: str = SLEEP, *, node: str | None = None, grace: int = 5, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "tandem-runtime:test", "command": ["python", "-c", code]}
    if node is not None:
        spec.setdefault("nodeSelector", {"kubernetes.io/hostname": node})
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": grace, "containers": [container],
                     **spec}}


def _get(core: kubernetes.client.CoreV1Api, name: str) -> dict[str, Any] | None:
    try:
        return json.loads(core.read_namespaced_pod(name, NS, _preload_content=False).data)
    except kubernetes.client.ApiException as exc:
        if exc.status == 404:
            return None
        raise


def _node(core: kubernetes.client.CoreV1Api, name: str) -> dict[str, Any]:
    return json.loads(core.read_node(name, _preload_content=False).data)


def _running(core: Any, name: str, wait_for: WaitFor) -> dict[str, Any]:
    return wait_for(lambda: (p := _get(core, name)) and p["status"].get("phase") == "Running" and p,
                    what=f"pod {name} running")




def _condition(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    return next(c for c in obj["status"].get("conditions") or [] if c["type"] == kind)


def _set_ready(kubectl: Any, node: str, status: str, reason: str, message: str) -> None:
    patch = {"status": {"conditions": [{"type": "Ready", "status": status, "reason": reason, "message": message}]}}
    kubectl("patch", "node", node, "--subresource=status", "--type=merge", "-p", json.dumps(patch))


def _taints(core: Any, node: str) -> set[tuple[str, str]]:
    return {(t["key"], t["effect"]) for t in _node(core, node)["spec"].get("taints") or []}


def _force_delete_all(core: Any, *names: str) -> None:
    for name in names:
        try:
            core.delete_namespaced_pod(name, NS, grace_period_seconds=0)
        except kubernetes.client.ApiException as exc:
            if exc.status != 404:
                raise


def test_force_deletion_removes_a_running_pod_at_once(cluster: Any, core: Any, wait_for: WaitFor) -> None:
    core.create_namespaced_pod(NS, _pod("forced-query", STUBBORN, grace=30))
    core.create_namespaced_pod(NS, _pod("forced-body", STUBBORN, grace=30))
    pids = [pod_pid(_running(core, name, wait_for)) for name in ("forced-query", "forced-body")]
    core.delete_namespaced_pod("forced-query", NS, grace_period_seconds=0)  # ?gracePeriodSeconds=0
    core.delete_namespaced_pod("forced-body", NS, body=kubernetes.client.V1DeleteOptions(grace_period_seconds=0))
    assert _get(core, "forced-query") is None and _get(core, "forced-body") is None
    # The object went first; the kubelet then kills the orphan process without waiting for SIGTERM.
    wait_for(lambda: not any(process_alive(pid) for pid in pids), timeout=10, what="the orphan processes to die")


def test_force_deletion_cuts_a_graceful_deletion_short(cluster: Any, core: Any, kubectl: Any,
                                                        wait_for: WaitFor) -> None:
    core.create_namespaced_pod(NS, _pod("stubborn", STUBBORN, grace=30))
    pid = pod_pid(_running(core, "stubborn", wait_for))
    wait_for(lambda: cluster.kubelet.log_path(NS, "stubborn").read_text() == "up\n", what="the handler set")
    core.delete_namespaced_pod("stubborn", NS)  # 30 s of grace, and SIGTERM is ignored
    terminating = _get(core, "stubborn")
    assert terminating is not None and terminating["metadata"]["deletionGracePeriodSeconds"] == 30
    result = kubectl("delete", "pod", "stubborn", "--grace-period=0", "--force")
    assert "Immediate deletion does not wait for confirmation" in result.stderr
    assert _get(core, "stubborn") is None
    wait_for(lambda: not process_alive(pid), timeout=10, what="the stubborn process to be killed")


def test_a_node_down_kills_freezes_and_hangs_then_comes_back(cluster: Any, core: Any, kubectl: Any,
                                                             wait_for: WaitFor) -> None:
    node, pool = "ascend-910b-node-0", "ascend-910b"
    names = ("stale", "hanging", "late-delete")
    for name in names:
        core.create_namespaced_pod(NS, _pod(name, node=node))
    before = {name: _running(core, name, wait_for) for name in names}
    pids = {name: pod_pid(pod) for name, pod in before.items()}
    try:
        _set_ready(kubectl, node, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")

        # The machine is gone: its processes die at once, the node controller taints the node and
        # marks the pods not ready, and nothing else about them changes (the kubelet is dead).
        wait_for(lambda: not any(process_alive(pid) for pid in pids.values()), timeout=10, what="the processes to die")
        wait_for(lambda: cluster.call(lambda: not any(cluster.kubelet.is_running(NS, n) for n in names)),
                 what="the kubelet to see its processes gone")
        wait_for(lambda: {("node.kubernetes.io/unreachable", "NoExecute"),
                          ("node.kubernetes.io/unreachable", "NoSchedule")} <= _taints(core, node), what="taints")
        noexecute = next(t for t in _node(core, node)["spec"]["taints"] if t["effect"] == "NoExecute")
        assert noexecute["timeAdded"].endswith("Z")
        wait_for(lambda: all(_condition(_get(core, n), "Ready")["status"] == "False" for n in names),
                 what="the pods marked not ready")
        for name in names:
            pod = _get(core, name)
            assert pod["status"]["phase"] == "Running", pod["status"]
            assert pod["status"]["containerStatuses"] == before[name]["status"]["containerStatuses"]
        events = core.list_namespaced_event(NS, field_selector="involvedObject.name=stale").items
        assert [(e.reason, e.type, e.message) for e in events] == [("NodeNotReady", "Warning", "Node is not ready")]
        assert "NotReady" in kubectl("get", "node", node).stdout
        logs = kubectl("logs", "stale", check=False)  # served by the node's kubelet, which is gone
        assert logs.returncode != 0 and "10250: i/o timeout" in logs.stderr

        # A deletion hangs in Terminating: no kubelet confirms it. A pod bound to the dead node by
        # hand never starts. New pods go elsewhere (the scheduler skips the tainted node); that the
        # newcomer runs also shows the kubelet has handled every event before it.
        core.delete_namespaced_pod("hanging", NS)
        core.delete_namespaced_pod("late-delete", NS)
        core.create_namespaced_pod(NS, _pod("bound-by-hand", nodeName=node))
        core.create_namespaced_pod(NS, _pod("newcomer", nodeSelector={"tandem.dev/pool": pool}))
        assert _running(core, "newcomer", wait_for)["spec"]["nodeName"] == "ascend-910b-node-1"
        for name in ("hanging", "late-delete"):
            assert _get(core, name)["metadata"]["deletionTimestamp"]
            assert "Terminating" in kubectl("get", "pod", name).stdout
        bound = _get(core, "bound-by-hand")
        assert bound["status"]["phase"] == "Pending" and "containerStatuses" not in bound["status"]

        # Only a force deletion removes a pod of a dead node.
        kubectl("delete", "pod", "hanging", "--grace-period=0", "--force")
        assert _get(core, "hanging") is None

        # The node comes back: the taints go, the restarted kubelet reports the vanished container
        # as a real one does, finishes the deletion it missed, and starts what was bound to it.
        _set_ready(kubectl, node, "True", "KubeletReady", "kubelet is posting ready status")
        wait_for(lambda: not _taints(core, node), what="the taints to be removed")
        stale = wait_for(lambda: (p := _get(core, "stale"))["status"]["phase"] == "Failed" and p,
                         what="the stale pod reported")
        kubernetes_validate.validate(stale, "1.32", strict=True)
        status = stale["status"]["containerStatuses"][0]
        assert status["state"]["terminated"] == {
            "exitCode": 137, "reason": "ContainerStatusUnknown",
            "message": "The container could not be located when the pod was terminated"}
        assert status["lastState"]["terminated"]["reason"] == "ContainerStatusUnknown"
        assert status["restartCount"] == 1 and not status["ready"]
        assert "ContainerStatusUnknown" in kubectl("get", "pod", "stale").stdout
        kubectl("logs", "stale")  # the kubelet answers again
        wait_for(lambda: _get(core, "late-delete") is None, what="the missed deletion to finish")
        _running(core, "bound-by-hand", wait_for)
    finally:
        _set_ready(kubectl, node, "True", "KubeletReady", "kubelet is posting ready status")
        _force_delete_all(core, *names, "bound-by-hand", "newcomer")


def test_a_not_ready_node_is_tainted_not_ready(cluster: Any, core: Any, kubectl: Any, wait_for: WaitFor) -> None:
    node = "h20-node-1"
    core.create_namespaced_pod(NS, _pod("on-h20", node=node))
    pid = pod_pid(_running(core, "on-h20", wait_for))
    try:
        _set_ready(kubectl, node, "False", "KubeletNotReady", "container runtime is down")
        wait_for(lambda: {("node.kubernetes.io/not-ready", "NoExecute"),
                          ("node.kubernetes.io/not-ready", "NoSchedule")} == _taints(core, node), what="taints")
        wait_for(lambda: not process_alive(pid), timeout=10, what="the process to die")
        # Ready=Unknown next: the controller swaps not-ready for unreachable, as the real one does.
        _set_ready(kubectl, node, "Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")
        wait_for(lambda: {("node.kubernetes.io/unreachable", "NoExecute"),
                          ("node.kubernetes.io/unreachable", "NoSchedule")} == _taints(core, node), what="swap")
        assert _get(core, "on-h20")["status"]["phase"] == "Running"
    finally:
        _set_ready(kubectl, node, "True", "KubeletReady", "kubelet is posting ready status")
        wait_for(lambda: not _taints(core, node), what="the taints to be removed")
        _force_delete_all(core, "on-h20")
