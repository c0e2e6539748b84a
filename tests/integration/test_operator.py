"""The real operator (a `tandem operator` subprocess) against the local cluster with its simulated
scheduler and kubelet: jobs run as local processes and end Succeeded or Failed."""

from __future__ import annotations

import json
import sys
import urllib.request
from functools import partial
from pathlib import Path
from typing import Any

import kubernetes_validate
import operator_jobs
from operator_jobs import event_reasons

from tandem.operator.api import AcceleratorPool, TrainingJob
from tandem.operator.podspec import attempt_pod

GROUP, VERSION, PLURAL = "tandem.dev", "v1alpha1", "trainingjobs"
NS = "default"
# How long this module waits for a job to reach a phase.
wait_phase = partial(operator_jobs.wait_phase, timeout=60)


def python_job(name: str, code: str, nodes: int = 2, pools: list[str] | None = None) -> dict[str, Any]:
    """A job whose pods run a short Python program instead of the training runtime."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
        "spec": {"nodes": nodes, "pools": pools or ["ascend-910b", "h20"],
                 "container": {"command": [sys.executable, "-P", "-c", code]},
                 "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "ckpt"}}}},
    }


def submit(custom: Any, name: str, code: str, **options: Any) -> dict[str, Any]:
    return custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, python_job(name, code, **options))


def until_exists(flag: Path) -> str:
    """Python that waits for the test to create `flag`: a pod that runs until the test has seen what it must."""
    return f"import os, time\nwhile not os.path.exists({str(flag)!r}): time.sleep(0.05)\n"


def test_a_job_runs_to_success_through_every_phase(custom: Any, core: Any, wait_for: Any, tmp_path: Path) -> None:
    flag = tmp_path / "finish"
    submit(custom, "ok", until_exists(flag) + "print('rank', os.environ['TANDEM_NODE_RANK'], 'done')")
    running = wait_phase(custom, wait_for, "ok", "Running")
    assert running["status"]["pool"] == "ascend-910b" and running["status"]["attempt"] == 1
    flag.touch()
    done = wait_phase(custom, wait_for, "ok", "Succeeded")
    assert done["status"]["completionTime"]
    pods = core.list_namespaced_pod(NS, label_selector="tandem.dev/job=ok").items
    assert sorted(p.metadata.name for p in pods) == ["ok-a1-0", "ok-a1-1"]
    assert {p.spec.node_name for p in pods} <= {"ascend-910b-node-0", "ascend-910b-node-1"}
    # The Events follow the status (written ahead in pendingEvents, posted after it): wait for the last one.
    reasons = wait_for(lambda: (r := event_reasons(core, "ok")) and r[-1] == "Succeeded" and r, timeout=15,
                       what="the Succeeded Event")
    assert reasons[0] == "AttemptStarted" and "Running" in reasons and reasons[-1] == "Succeeded"
    log = core.read_namespaced_pod_log("ok-a1-1", NS)
    assert "rank 1 done" in log


def test_a_rank_failing_with_a_user_error_fails_the_job_with_its_reason(custom: Any, core: Any, wait_for: Any) -> None:
    code = ("import os, sys, time\n"
            "if os.environ['TANDEM_NODE_RANK'] == '1':\n"
            "    raise ValueError('boom on rank 1')\n"
            "time.sleep(120)\n")
    submit(custom, "bad", code)
    failed = wait_phase(custom, wait_for, "bad", "Failed")
    assert "ValueError: boom on rank 1" in failed["status"]["message"]
    assert failed["status"]["faults"][0]["pod"] == "bad-a1-1" and failed["status"]["restarts"] == 0
    assert any(c["type"] == "Failed" and c["status"] == "True" for c in failed["status"]["conditions"])
    # Gang semantics: the rank that was still running is stopped and removed.
    wait_for(lambda: [p.metadata.name for p in core.list_namespaced_pod(
        NS, label_selector="tandem.dev/job=bad").items] == ["bad-a1-1"], what="rank 0 to be torn down")


def test_a_job_on_a_missing_pool_waits_for_it_and_others_keep_running(custom: Any, core: Any, wait_for: Any) -> None:
    """A missing pool is a condition, not a verdict: the job waits, says why, and runs once the pool exists."""
    submit(custom, "lost", "pass", pools=["tpu"], nodes=1)
    submit(custom, "fine", "pass", nodes=1)
    wait_phase(custom, wait_for, "fine", "Succeeded")

    def waiting() -> dict[str, Any] | None:
        job = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "lost")
        return job if job.get("status", {}).get("message") else None

    lost = wait_for(waiting, timeout=30, what="lost to say why it waits")
    message = "none of the pools tpu exists: waiting for one to be created"
    assert (lost["status"]["phase"], lost["status"]["message"]) == ("Pending", message)
    wait_for(lambda: "PoolNotFound" in event_reasons(core, "lost"), timeout=15, what="the PoolNotFound Warning")
    ascend = custom.get_cluster_custom_object(GROUP, VERSION, "acceleratorpools", "ascend-910b")
    custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "AcceleratorPool", "metadata": {"name": "tpu"},
        "spec": ascend["spec"]})
    try:
        done = wait_phase(custom, wait_for, "lost", "Succeeded")
        assert done["status"]["pool"] == "tpu"
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "acceleratorpools", "tpu")


def test_deleting_a_job_removes_its_pods_and_service(custom: Any, core: Any, wait_for: Any) -> None:
    submit(custom, "gone", "import time; time.sleep(300)")
    wait_phase(custom, wait_for, "gone", "Running")
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "gone")
    wait_for(lambda: not core.list_namespaced_pod(NS, label_selector="tandem.dev/job=gone").items,
             what="the pods to be gone")
    assert "gone" not in [s.metadata.name for s in core.list_namespaced_service(NS).items]


def test_an_operator_restarted_mid_creation_creates_no_duplicates(
    custom: Any, core: Any, operator: Any, wait_for: Any
) -> None:
    operator.kill()
    # What a dead operator leaves behind: the attempt recorded, one of its two pods created.
    job = submit(custom, "resumed", "import time; time.sleep(2)")
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, NS, PLURAL, "resumed", {"status": {
        "phase": "Pending", "attempt": 1, "pool": "ascend-910b"}})
    pool = custom.get_cluster_custom_object(GROUP, VERSION, "acceleratorpools", "ascend-910b")
    core.create_namespaced_pod(NS, attempt_pod(TrainingJob.model_validate(job), AcceleratorPool.model_validate(pool),
                                               1, 0))
    operator.start()
    done = wait_phase(custom, wait_for, "resumed", "Succeeded")
    assert done["status"]["attempt"] == 1
    pods = core.list_namespaced_pod(NS, label_selector="tandem.dev/job=resumed").items
    assert sorted(p.metadata.name for p in pods) == ["resumed-a1-0", "resumed-a1-1"]


def test_an_operator_killed_while_a_job_runs_carries_on(custom: Any, core: Any, operator: Any, wait_for: Any,
                                                       tmp_path: Path) -> None:
    flag = tmp_path / "finish"
    submit(custom, "survivor", until_exists(flag))
    wait_phase(custom, wait_for, "survivor", "Running")
    operator.kill()
    operator.start()
    flag.touch()  # the job ends under the new operator, which must pick it up where it was
    done = wait_phase(custom, wait_for, "survivor", "Succeeded")
    assert done["status"]["attempt"] == 1 and done["status"]["restarts"] == 0
    assert event_reasons(core, "survivor").count("AttemptStarted") == 1


def test_pools_report_their_nodes(custom: Any, wait_for: Any) -> None:
    def counted() -> dict[str, Any] | None:
        pool = custom.get_cluster_custom_object(GROUP, VERSION, "acceleratorpools", "h20")
        return pool if pool.get("status", {}).get("readyNodes") == 2 else None

    pool = wait_for(counted, what="h20's status")
    assert pool["status"]["nodes"] == 2
    assert pool["status"]["conditions"][0]["type"] == "Ready"


def test_every_object_the_operator_created_is_valid(core: Any) -> None:
    pods = json.loads(core.list_namespaced_pod(NS, _preload_content=False).data)["items"]
    services = json.loads(core.list_namespaced_service(NS, _preload_content=False).data)["items"]
    assert pods and services
    for kind, objects in (("Pod", pods), ("Service", services)):
        for obj in objects:
            kubernetes_validate.validate({**obj, "apiVersion": "v1", "kind": kind}, "1.32", strict=True)


def test_metrics_and_health_are_served(operator: Any) -> None:
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    assert 'tandem_jobs{phase="Succeeded",pool="ascend-910b"}' in text
    assert "tandem_reconcile_seconds_count" in text
    with urllib.request.urlopen(f"http://127.0.0.1:{operator.health_port}/healthz", timeout=10) as response:
        assert response.status == 200


def test_the_operator_logged_no_traceback(operator: Any) -> None:
    assert "Traceback" not in operator.logs()
