"""Simulated pods (issue 19, KWOK-style): on a pool whose cluster config says `simulatedPods`, the local kubelet runs
no process; each pod follows its script (start-up delay, run time, exit code, termination message), changed per pod
by `sim.tandem.dev/*` annotations; deleting one ends it at once; a script that cannot be read fails the pod. Then the
real operator on simulated pods: a job faulting by its termination message restarts and fails at maxRestarts, and a
smoke of 50 two-pod jobs on 200 simulated nodes all Succeed."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import kubernetes
import kubernetes_validate
import pytest

from tandem.localcluster.cluster import LocalCluster
from tandem.localcluster.nodes import ClusterConfig, SimulatedPool
from tandem.localcluster.simulated import PodScript

NS = "default"
GROUP, VERSION = "tandem.dev", "v1alpha1"
HCCL = json.dumps({"class": "interconnect", "reason": "HcclSocketTimeout", "rank": 1, "step": 12,
                   "checkpointStep": 10, "message": "EI0006: Getting socket times out."})


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """200 simulated Ascend nodes (pods run for 1 s by default) and 2 real ones."""
    with LocalCluster(ClusterConfig(pools=[
        SimulatedPool(name="sim", accelerator="npu", nodes=200, devices_per_node=8,
                      simulated_pods=PodScript(start_seconds=0.2, run_seconds=1.0)),
        SimulatedPool(name="real", accelerator="gpu", nodes=2, devices_per_node=8),
    ])) as local:
        local.kubeconfig_path = local.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        yield local


def _pod(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "annotations": annotations or {}},
            "spec": {"restartPolicy": "Never", "nodeSelector": {"tandem.dev/pool": "sim"},
                     "containers": [{"name": "main", "image": "trainer:1", "command": ["no-such-binary"]}]}}


def _get(core: kubernetes.client.CoreV1Api, name: str) -> dict[str, Any]:
    return json.loads(core.read_namespaced_pod(name, NS, _preload_content=False).data)


def _phase(core: kubernetes.client.CoreV1Api, name: str, phase: str, wait_for: Callable[..., Any]) -> dict[str, Any]:
    return wait_for(lambda: (p := _get(core, name))["status"].get("phase") == phase and p, timeout=30,
                    what=f"pod {name} {phase}")


def test_a_simulated_pod_follows_its_script_without_a_process(cluster: Any, core: Any,
                                                             wait_for: Callable[..., Any]) -> None:
    created = time.monotonic()
    pod = core.create_namespaced_pod(NS, _pod("scripted", {"sim.tandem.dev/run-seconds": "0.5",
                                                           "sim.tandem.dev/exit-code": "3",
                                                           "sim.tandem.dev/termination-message": HCCL}))
    # Every version of the pod from its creation on, from a watch: a poll can miss a 0.5 s Running on a busy VM.
    seen: list[dict[str, Any]] = []
    watch = kubernetes.watch.Watch()
    for event in watch.stream(core.list_namespaced_pod, NS, field_selector="metadata.name=scripted",
                              resource_version=pod.metadata.resource_version, timeout_seconds=30):
        seen.append(event["raw_object"])
        assert not cluster.kubelet.is_running(NS, "scripted")  # no process, though the command does not exist
        if event["raw_object"]["status"].get("phase") in ("Succeeded", "Failed"):
            watch.stop()
    phases = [p["status"].get("phase") for p in seen]
    assert "Running" in phases and phases[-1] == "Failed", phases
    running = next(p for p in seen if p["status"].get("phase") == "Running")
    assert running["status"]["containerStatuses"][0]["containerID"].startswith("tandem-sim://")
    done = seen[-1]
    assert time.monotonic() - created >= 0.7  # 0.2 s start-up + 0.5 s run
    kubernetes_validate.validate(done, "1.32", strict=True)
    terminated = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"], terminated["message"]) == (3, "Error", HCCL)


def test_deleting_a_simulated_pod_that_runs_forever_ends_it(core: Any, wait_for: Callable[..., Any]) -> None:
    core.create_namespaced_pod(NS, _pod("forever", {"sim.tandem.dev/run-seconds": "86400"}))
    _phase(core, "forever", "Running", wait_for)
    core.delete_namespaced_pod("forever", NS)

    def gone() -> bool:
        try:
            core.read_namespaced_pod("forever", NS)
        except kubernetes.client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, timeout=10, what="the deleted simulated pod to go")


def test_a_script_that_cannot_be_read_fails_the_pod(core: Any, wait_for: Callable[..., Any]) -> None:
    core.create_namespaced_pod(NS, _pod("bad-script", {"sim.tandem.dev/exit-code": "three"}))
    terminated = _phase(core, "bad-script", "Failed", wait_for)["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "StartError" and "sim.tandem.dev/exit-code" in terminated["message"]


def _job(name: str, annotations: dict[str, str] | None = None, **policy: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
            "spec": {"nodes": 2, "pools": ["sim-pool"], "container": {"image": "trainer:1"},
                     "podTemplate": {"metadata": {"annotations": annotations or {}}},
                     "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "ckpt"}}},
                     "faultPolicy": {"backoffSeconds": 0, "maxBackoffSeconds": 0, **policy}}}


@pytest.fixture(scope="module")
def sim_pool(custom: Any) -> None:
    custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "AcceleratorPool", "metadata": {"name": "sim-pool"},
        "spec": {"accelerator": "npu", "deviceResource": "huawei.com/Ascend910", "devicesPerNode": 8,
                 "nodeSelector": {"tandem.dev/pool": "sim"}, "image": "trainer:1"}})


def _status(custom: Any, name: str) -> dict[str, Any]:
    return custom.get_namespaced_custom_object(GROUP, VERSION, NS, "trainingjobs", name).get("status") or {}


def test_the_operator_reads_a_simulated_fault_and_restarts(custom: Any, sim_pool: None,
                                                           wait_for: Callable[..., Any]) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, "trainingjobs", _job(
        "sim-fault", {"sim.tandem.dev/exit-code": "3", "sim.tandem.dev/termination-message": HCCL},
        maxRestarts=1, failoverAfterFaults=5))
    status = wait_for(lambda: (s := _status(custom, "sim-fault")).get("phase") == "Failed" and s, timeout=60,
                      what="sim-fault Failed")
    assert [(f["class"], f["reason"], f["checkpointStep"]) for f in status["faults"]] == [
        ("interconnect", "HcclSocketTimeout", 10)] * 2
    assert (status["attempt"], status["restarts"]) == (2, 1)


def test_fifty_two_pod_jobs_on_simulated_nodes_all_succeed(custom: Any, sim_pool: None,
                                                           wait_for: Callable[..., Any]) -> None:
    """The scale smoke of `make test`: 100 pods, no process; the figures at scale are bench/operator_scale.py's."""
    started = time.monotonic()
    for index in range(50):
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, "trainingjobs", _job(f"smoke-{index}"))

    def all_succeeded() -> bool:
        jobs = custom.list_namespaced_custom_object(GROUP, VERSION, NS, "trainingjobs")["items"]
        smoke = [j for j in jobs if j["metadata"]["name"].startswith("smoke-")]
        return len(smoke) == 50 and all((j.get("status") or {}).get("phase") == "Succeeded" for j in smoke)

    wait_for(all_succeeded, timeout=180, interval=0.5, what="50 simulated jobs Succeeded")
    print(f"50 jobs x 2 simulated pods Succeeded in {time.monotonic() - started:.1f} s")
