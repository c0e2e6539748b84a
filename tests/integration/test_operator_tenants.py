"""What one tenant's job must not do to itself or to the others, with the real operator on the local cluster:
gangs that deadlock, recreated jobs that adopt old pods, refusals that loop in silence."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from functools import partial
from typing import Any

import operator_jobs
import pytest
from operator_jobs import event_reasons

from tandem.localcluster.cluster import LocalCluster
from tandem.localcluster.nodes import ClusterConfig, SimulatedPool

GROUP, VERSION, PLURAL = "tandem.dev", "v1alpha1", "trainingjobs"
NS = "default"
wait_phase = partial(operator_jobs.wait_phase, timeout=90)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Three Ascend nodes of 8 devices; the pools take all 8 per pod, so each node holds one pod."""
    with LocalCluster(ClusterConfig(pools=[
        SimulatedPool(name="ascend-910b", accelerator="npu", nodes=3, devices_per_node=8),
        SimulatedPool(name="h20", accelerator="gpu", nodes=2, devices_per_node=8),
    ])) as local:
        local.kubeconfig_path = local.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        yield local


def job(name: str, code: str, nodes: int = 2, pools: list[str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
        "spec": {"nodes": nodes, "pools": pools or ["ascend-910b"],
                 "container": {"command": [sys.executable, "-P", "-c", code]},
                 "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "ckpt"}}},
                 "faultPolicy": {"backoffSeconds": 0, "maxBackoffSeconds": 0}},
    }


def test_three_two_node_gangs_on_three_nodes_run_one_after_another(custom: Any, core: Any, wait_for: Any) -> None:
    """Each job used to take one node and wait for a second one for ever."""
    names = ["gang-a", "gang-b", "gang-c"]
    for name in names:
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job(name, "import time; time.sleep(3)"))
    try:
        for name in names:
            done = wait_phase(custom, wait_for, name, "Succeeded")
            assert (done["status"]["attempt"], done["status"]["restarts"], done["status"]["faults"]) == (1, 0, [])
        waited = [name for name in names if "WaitingForRoom" in event_reasons(core, name)]
        assert len(waited) == 2, waited  # one ran at once, the other two waited for room, without pods
        for name in names:  # one pod per node: ranks never pack onto one node
            pods = core.list_namespaced_pod(NS, label_selector=f"tandem.dev/job={name}").items
            assert len({p.spec.node_name for p in pods}) == 2
    finally:
        for name in names:
            custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)


def test_a_job_created_again_under_the_same_name_never_adopts_the_old_pods(
    custom: Any, core: Any, wait_for: Any
) -> None:
    """Used to: 409 on create taken as "mine", so the new job followed the old job's pod (a spurious fault, a
    healthy node excluded, the old lastCheckpoint). Here garbage collection of the old pods is held up (a
    finalizer, as a slow kubelet or a volume detach would) while the job is applied again."""
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job("again", "import time; time.sleep(300)"))
    wait_phase(custom, wait_for, "again", "Running")
    core.patch_namespaced_pod("again-a1-0", NS, {"metadata": {"finalizers": ["example.org/hold"]}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "again")
    wait_for(lambda: not [j for j in custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]
                          if j["metadata"]["name"] == "again"], what="the first job to be gone")
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job("again", "pass"))
    try:
        wait_for(lambda: "NameTaken" in event_reasons(core, "again"), timeout=30,
                 what="the new job to say the pod name is still taken")
        assert custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "again")["status"]["faults"] == []
        core.patch_namespaced_pod("again-a1-0", NS, {"metadata": {"finalizers": None}})  # the GC can finish
        done = wait_phase(custom, wait_for, "again", "Succeeded")["status"]
        assert (done["attempt"], done["faults"], done["excludedNodes"], done["restarts"]) == (1, [], [], 0)
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "again")
