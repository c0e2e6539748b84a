"""Pods cannot make the local kubelet write outside the folders it maps: a claim no PVC can be called is never
found (the pod stays Pending, or waits with FailedMount Events when bound by hand), and a hostPath is the
simulated node's own folder, not this machine's path."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kubernetes.client.exceptions import ApiException

NS = "default"


def _pod(name: str, volume: dict[str, Any], code: str = "pass", **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "i", "command": ["python", "-c", code],
                 "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                 "env": [{"name": "OUT", "value": "/data/out.txt"}]}
    return {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                                 "containers": [container], "volumes": [{"name": "data", **volume}],
                                                 **spec}}


def _claim(name: str) -> dict[str, Any]:
    return {"persistentVolumeClaim": {"claimName": name}}


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")} if root.exists() else set()


@pytest.mark.parametrize("claim", ["../other-namespace/ckpt", "a/b", ".."])
def test_a_claim_that_cannot_exist_keeps_the_pod_pending(cluster: Any, core: Any, wait_for: Callable[..., Any],
                                                         claim: str) -> None:
    name = f"claim-{abs(hash(claim)) % 10_000}"
    core.create_namespaced_pod(NS, _pod(name, _claim(claim), "open(__import__('os').environ['OUT'], 'w')"))
    condition = wait_for(lambda: next((c for c in core.read_namespaced_pod(name, NS).status.conditions or []
                                       if c.type == "PodScheduled"), None), what="the scheduler's verdict")
    assert (condition.status, condition.reason) == ("False", "Unschedulable")
    nodes = len(core.list_node().items)
    assert condition.message == f'0/{nodes} nodes are available: persistentvolumeclaim "{claim}" not found.'
    pod = core.read_namespaced_pod(name, NS)
    assert pod.status.phase == "Pending" and not pod.spec.node_name
    assert not (cluster.state_dir / "volumes").exists() or not any(
        (cluster.state_dir / "volumes").rglob("out.txt"))


def test_a_pod_bound_by_hand_to_an_impossible_claim_waits_with_failed_mount(
        cluster: Any, core: Any, wait_for: Callable[..., Any]) -> None:
    node = core.list_node().items[0].metadata.name
    before = _files(cluster.state_dir / "volumes")
    core.create_namespaced_pod(NS, _pod("hand-bound", _claim("../escape"), "open(__import__('os').environ['OUT'], 'w')",
                                        nodeName=node))
    events = wait_for(lambda: core.list_namespaced_event(
        NS, field_selector="involvedObject.name=hand-bound,reason=FailedMount").items, what="a FailedMount event")
    assert events[0].type == "Warning" and events[0].source.component == "kubelet"
    assert events[0].message.endswith(
        'failed to fetch PVC from API server: persistentvolumeclaims "../escape" not found')
    status = core.read_namespaced_pod("hand-bound", NS).status
    assert status.phase == "Pending"
    assert status.container_statuses[0].state.waiting.reason == "ContainerCreating"
    assert _files(cluster.state_dir / "volumes") == before
    assert not (cluster.state_dir / "escape").exists()


def test_host_paths_are_the_simulated_nodes_own_folders(cluster: Any, core: Any, wait_for: Callable[..., Any],
                                                        tmp_path: Path) -> None:
    real = tmp_path / "host-data"  # a path of this machine: the pod must not write there
    code = "import os; open(os.environ['OUT'], 'w').write('from the pod')"
    core.create_namespaced_pod(NS, _pod("host-writer", {"hostPath": {"path": str(real)}}, code))
    pod = wait_for(lambda: (p := core.read_namespaced_pod("host-writer", NS)).status.phase in ("Succeeded", "Failed")
                   and p, what="the pod to finish")
    assert pod.status.phase == "Succeeded"
    written = cluster.kubelet.host_dir(pod.spec.node_name, str(real)) / "out.txt"
    assert written.read_text() == "from the pod" and written.is_relative_to(cluster.state_dir)
    assert not real.exists()


@pytest.mark.parametrize(("volume", "field"), [
    ({"hostPath": {"path": "/data/../../etc"}}, "spec.volumes[0].hostPath.path"),
    ({"name": "../up", "emptyDir": {}}, "spec.volumes[0].name"),
])
def test_paths_that_would_leave_their_folder_are_refused(core: Any, volume: dict[str, Any], field: str) -> None:
    pod = _pod("escaping", {k: v for k, v in volume.items() if k != "name"})
    pod["spec"]["volumes"][0]["name"] = volume.get("name", "data")
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(NS, pod)
    assert exc.value.status == 422 and field in [c["field"] for c in json.loads(exc.value.body)["details"]["causes"]]


def test_a_sub_path_that_climbs_out_is_refused(core: Any) -> None:
    pod = _pod("climbing", {"emptyDir": {}})
    pod["spec"]["containers"][0]["volumeMounts"][0]["subPath"] = "../../../tmp"
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_pod(NS, pod)
    body = json.loads(exc.value.body)
    assert body["message"].endswith("spec.containers[0].volumeMounts.subPath: Invalid value: \"../../../tmp\": "
                                    "must not contain '..'")
