"""Fault scenarios with the real operator against the local cluster: each job's pods run a short
Python program that fails the way the runtime (or the machine) fails, on the attempts it is told to."""

from __future__ import annotations

import json
import signal
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from functools import partial
from typing import Any

import clusters
import operator_jobs
import pytest
from manifests import ascend_fault_report
from operator_jobs import event_reasons
from operator_process import OperatorProcess

GROUP, VERSION, PLURAL = "tandem.dev", "v1alpha1", "trainingjobs"
NS = "default"
# How long this module waits for a job to reach a phase: a fault scenario takes longer.
wait_phase = partial(operator_jobs.wait_phase, timeout=90)
HCCL_REPORT = {"class": "interconnect", "reason": "HcclSocketTimeout", "rank": 1, "step": 37, "checkpointStep": 30,
               "message": "EI0006: Getting socket times out. Reason: 1. The remote does not initiate a connect "
                          "request. some NPUs in the cluster are abnormal."}

# A rank that fails on the attempts in FAIL_ON by writing the runtime's termination report, exits
# with the runtime's exit code for the class; every other rank trains (sleeps) and finishes.
PROGRAM = textwrap.dedent('''
    import json, os, sys, time
    attempt, rank = int(os.environ["TANDEM_ATTEMPT"]), int(os.environ["TANDEM_NODE_RANK"])
    plan = json.loads(os.environ["FAULT_PLAN"])
    if rank == plan["rank"] and (plan["attempts"] == "all" or attempt in plan["attempts"]):
        time.sleep(plan.get("after", 0.5))
        if plan.get("report"):
            with open(os.environ["TANDEM_TERMINATION_LOG"], "w") as out:
                json.dump(plan["report"], out)
        if plan.get("stderr"):
            sys.stderr.write(plan["stderr"])
        sys.exit(plan.get("exit", 3))
    time.sleep(plan.get("train", 2.0))
''')




def fault_job(name: str, plan: dict[str, Any], nodes: int = 2, **policy: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
        "spec": {"nodes": nodes, "pools": ["ascend-910b", "h20"],
                 "container": {"command": [sys.executable, "-P", "-c", PROGRAM],
                               "env": [{"name": "FAULT_PLAN", "value": json.dumps(plan)}]},
                 "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "ckpt"}}},
                 "faultPolicy": {"backoffSeconds": 0, "maxBackoffSeconds": 0, **policy}},
    }


# A spare Ascend node, so that a job that lost a node to exclusion can restart on its pool.
cluster = pytest.fixture(scope="module", name="cluster")(clusters.three_ascend_nodes)


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    """Overrides tests/conftest.py's: force-deletes a pod that stays Terminating on a dead node after 1 s."""
    process = OperatorProcess(cluster.kubeconfig_path, tmp_path_factory.mktemp("operator"),
                              env={"TANDEM_FORCE_DELETE_SECONDS": "1"}).start()
    yield process
    process.stop()


def submit(custom: Any, name: str, plan: dict[str, Any], **options: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, fault_job(name, plan, **options))


def test_an_interconnect_fault_restarts_the_job_on_the_same_pool(custom: Any, core: Any, wait_for: Any) -> None:
    submit(custom, "hccl-once", {"rank": 1, "attempts": [1], "report": HCCL_REPORT, "exit": 3})
    done = wait_phase(custom, wait_for, "hccl-once", "Succeeded")
    status = done["status"]
    assert (status["attempt"], status["restarts"], status["failovers"], status["pool"]) == (2, 1, 0, "ascend-910b")
    fault = status["faults"][0]
    assert (fault["class"], fault["reason"], fault["pod"], fault["checkpointStep"]) == (
        "interconnect", "HcclSocketTimeout", "hccl-once-a1-1", 30)
    assert status["lastCheckpoint"]["step"] == 30
    # A socket timeout says a peer did not answer, nothing against this rank's own node: no exclusion.
    assert status["excludedNodes"] == []
    # The Events follow the status (written ahead in pendingEvents, posted after it): wait for the last one.
    seen = wait_for(lambda: (r := event_reasons(core, "hccl-once")) and r[-1] == "Succeeded" and r, timeout=15,
                    what="the Succeeded Event")
    assert seen.index("FaultDetected") < seen.index("Restarting") < len(seen) - 1
    assert seen.count("AttemptStarted") == 2 and seen[-1] == "Succeeded"


def test_a_second_interconnect_fault_fails_over_to_the_gpu_pool(custom: Any, core: Any, wait_for: Any) -> None:
    submit(custom, "hccl-twice", {"rank": 1, "attempts": [1, 2], "report": HCCL_REPORT, "exit": 3})
    done = wait_phase(custom, wait_for, "hccl-twice", "Succeeded")
    status = done["status"]
    assert (status["attempt"], status["restarts"], status["failovers"], status["pool"]) == (3, 2, 1, "h20")
    pods = core.list_namespaced_pod(NS, label_selector="tandem.dev/job=hccl-twice,tandem.dev/attempt=3").items
    assert len(pods) == 2
    for pod in pods:
        env = {e.name: e.value for e in pod.spec.containers[0].env}
        assert pod.spec.node_selector == {"tandem.dev/pool": "h20"} and pod.spec.node_name.startswith("h20-")
        assert pod.spec.containers[0].resources.limits == {"nvidia.com/gpu": "8"}
        assert (env["TANDEM_BACKEND"], env["TANDEM_POOL"]) == ("nccl", "h20")
    assert "FailedOver" in event_reasons(core, "hccl-twice")


def test_a_user_error_fails_the_job_without_a_restart(custom: Any, wait_for: Any) -> None:
    traceback = ('Traceback (most recent call last):\n  File "/app/train.py", line 12, in <module>\n'
                 '    config = load(args.config)\n  File "/app/train.py", line 7, in load\n'
                 "    raise ValueError(f\"unknown optimizer: {name!r}\")\nValueError: unknown optimizer: 'adamw8'\n")
    submit(custom, "typo", {"rank": 0, "attempts": "all", "stderr": traceback, "exit": 1})
    failed = wait_phase(custom, wait_for, "typo", "Failed")
    status = failed["status"]
    assert status["restarts"] == 0 and status["faults"][0]["class"] == "user"
    assert "unknown optimizer" in status["message"]


def test_oom_killed_is_restarted(custom: Any, core: Any, cluster: Any, wait_for: Any) -> None:
    submit(custom, "oom", {"rank": 0, "attempts": [], "train": 60})
    wait_phase(custom, wait_for, "oom", "Running")
    assert cluster.kubelet.kill(NS, "oom-a1-0", signal.SIGKILL, reason="OOMKilled")

    def restarted() -> dict[str, Any] | None:
        job = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "oom")
        return job if job["status"].get("restarts") == 1 else None

    status = wait_for(restarted, timeout=60, what="a restart after OOMKilled")["status"]
    assert status["faults"][0]["class"] == "oom" and status["faults"][0]["reason"] == "OOMKilled"
    assert status["excludedNodes"] == []
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "oom")


def test_max_restarts_exhausted_fails_the_job(custom: Any, wait_for: Any) -> None:
    submit(custom, "hopeless", {"rank": 1, "attempts": "all", "report": {**HCCL_REPORT, "reason": "HcclLinkError"},
                                "exit": 3}, maxRestarts=1, failoverAfterFaults=5, excludeFaultyNodes=False)
    failed = wait_phase(custom, wait_for, "hopeless", "Failed")
    status = failed["status"]
    assert status["restarts"] == 1 and len(status["faults"]) == 2
    assert "maxRestarts (1) reached" in status["message"]


def test_a_node_going_not_ready_restarts_the_job_elsewhere(custom: Any, core: Any, wait_for: Any) -> None:
    # No grace: a node that stops answering ends the attempt at once (the grace has tests of its own).
    submit(custom, "lost-node", {"rank": 0, "attempts": [], "train": 120}, nodes=1, nodeNotReadyGraceSeconds=0)
    running = wait_phase(custom, wait_for, "lost-node", "Running")
    node = core.read_namespaced_pod("lost-node-a1-0", NS).spec.node_name
    core.patch_node_status(node, {"status": {"conditions": [
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown",
         "message": "Kubelet stopped posting node status."}]}})
    try:
        def moved() -> dict[str, Any] | None:
            job = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "lost-node")
            return job if job["status"].get("attempt") == 2 and job["status"]["phase"] == "Running" else None

        status = wait_for(moved, timeout=90, what="attempt 2 running on another node")["status"]
        assert status["faults"][0]["class"] == "node" and status["faults"][0]["node"] == node
        assert node in status["excludedNodes"]
        new_node = core.read_namespaced_pod("lost-node-a2-0", NS).spec.node_name
        assert new_node != node
        # The pod on the dead node never finishes terminating by itself: the operator force-deletes it.
        wait_for(lambda: "lost-node-a1-0" not in [p.metadata.name for p in core.list_namespaced_pod(
            NS, label_selector="tandem.dev/job=lost-node").items], timeout=60, what="the stuck pod to be removed")
        assert running["status"]["attempt"] == 1
    finally:
        core.patch_node_status(node, {"status": {"conditions": [
            {"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "back"}]}})
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "lost-node")


def test_an_ascend_device_fault_report_excludes_the_node_and_marks_the_pool(
    custom: Any, core: Any, wait_for: Any
) -> None:
    submit(custom, "chip", {"rank": 0, "attempts": [], "train": 120}, nodes=1)
    wait_phase(custom, wait_for, "chip", "Running")
    node = core.read_namespaced_pod("chip-a1-0", NS).spec.node_name
    core.create_namespaced_config_map("kube-system", ascend_fault_report(node))
    try:
        def moved() -> dict[str, Any] | None:
            job = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "chip")
            return job if job["status"].get("attempt") == 2 else None

        status = wait_for(moved, timeout=60, what="a restart after the device report")["status"]
        assert (status["faults"][0]["class"], status["faults"][0]["node"]) == ("device", node)
        assert node in status["excludedNodes"]

        def pool_marked() -> dict[str, Any] | None:
            pool = custom.get_cluster_custom_object(GROUP, VERSION, "acceleratorpools", "ascend-910b")
            return pool if node in pool.get("status", {}).get("faultyNodes", []) else None

        pool = wait_for(pool_marked, timeout=30, what="the pool to list the faulty node")
        assert pool["status"]["readyNodes"] == 3
        wait_phase(custom, wait_for, "chip", "Running")
        assert core.read_namespaced_pod("chip-a2-0", NS).spec.node_name != node
    finally:
        core.delete_namespaced_config_map(f"mindx-dl-deviceinfo-{node}", "kube-system")
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "chip")


def test_pods_pending_past_the_timeout_fail_over(custom: Any, core: Any, wait_for: Any) -> None:
    # What the operator cannot see ahead of the scheduler: the CPU its pods ask for on Ascend, more than an Ascend
    # node has (the operator counts devices, nodes, taints and the job's nodeSelector, and never admits a gang where
    # those leave no room).
    job = fault_job("stuck", {"rank": 0, "attempts": []}, pendingTimeoutSeconds=2)
    job["spec"]["container"]["byAccelerator"] = {"npu": {"resources": {"requests": {"cpu": "1000"}}}}
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job)
    done = wait_phase(custom, wait_for, "stuck", "Succeeded")
    status = done["status"]
    assert (status["pool"], status["failovers"], status["restarts"], status["faults"]) == ("h20", 1, 0, [])
    assert "FailedOver" in event_reasons(core, "stuck")


def test_the_operator_counted_restarts_and_failovers(operator: OperatorProcess) -> None:
    """Before the operator is restarted below: counters live in its process."""
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'tandem_restarts_total{class="interconnect",pool="ascend-910b"}' in text
    assert 'tandem_failovers_total{from_pool="ascend-910b",to_pool="h20"}' in text
    assert "tandem_recovery_seconds_count" in text


def test_an_operator_killed_mid_failover_finishes_it_exactly_once(
    custom: Any, core: Any, operator: OperatorProcess, wait_for: Any
) -> None:
    operator.kill()
    try:
        # What the operator had written before it died: attempt 1 ended with a second pool fault, the
        # job moves to h20; its rank 0 still runs and nothing of attempt 2 exists yet.
        submit(custom, "midway", {"rank": 0, "attempts": [], "train": 1.0})
        fault = {"time": "2026-11-23T12:00:00Z", "attempt": 1, "pool": "ascend-910b", "class": "interconnect",
                 "reason": "HcclSocketTimeout", "node": "ascend-910b-node-2", "checkpointStep": 40}
        custom.patch_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "midway", {"status": {
            "phase": "Restarting", "attempt": 1, "pool": "h20", "restarts": 2, "failovers": 1,
            "faults": [fault, fault], "lastCheckpoint": {"step": 40}, "nextAttemptTime": "2026-11-23T12:00:00Z"}})
    finally:
        operator.start()
    done = wait_phase(custom, wait_for, "midway", "Succeeded")
    status = done["status"]
    assert (status["attempt"], status["restarts"], status["failovers"], len(status["faults"])) == (2, 2, 1, 2)
    pods = core.list_namespaced_pod(NS, label_selector="tandem.dev/job=midway").items
    assert sorted(p.metadata.name for p in pods) == ["midway-a2-0", "midway-a2-1"]
    assert all(p.spec.node_selector == {"tandem.dev/pool": "h20"} for p in pods)
