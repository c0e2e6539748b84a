"""In-place restarts with the real operator, the real tandem-run and the local kubelet (issue 18): the supervisors
learn the new attempt from their pod's labels (a downwardAPI file the kubelet keeps current) and tell the operator
through their log and their readiness probe. Each job is 2 pods of a short Python script under tandem-run that
prints its steps and keeps a torchtitan-style checkpoint every 2 steps; FAULT_PLAN makes one rank fail on the
attempts it names, `after` steps into the attempt (once rank 0 has saved the step before), with HCCL's real EI0006
text, while the other ranks wait there for their peer until a restart stops them: nothing depends on how soon the
operator sees the fault."""

from __future__ import annotations

import json
import sys
import textwrap
import time
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
wait_phase = partial(operator_jobs.wait_phase, timeout=120)
EI0006 = ("EI0006: [PID: 1292363] 2025-04-08-18:07:20.444.436 Getting socket times out. Reason: Remote Rank did "
          "not send the data in time.")  # vllm-project/vllm-ascend#486

SCRIPT = textwrap.dedent("""
    import json, os, sys, time
    from pathlib import Path
    plan = json.loads(os.environ["FAULT_PLAN"])
    root = Path(os.environ["TANDEM_CHECKPOINT_DIR"])
    attempt, rank = int(os.environ["TANDEM_ATTEMPT"]), int(os.environ["TANDEM_NODE_RANK"])
    resume = int(os.environ["TANDEM_RESUME_STEP"] or 0)
    print(f"attempt {attempt} rank {rank} resumes from {resume}", flush=True)
    faulting = attempt in plan["attempts"]
    for step in range(resume + 1, plan["steps"] + 1):
        if faulting and step - resume == plan["after"] + 1:
            if rank == plan["rank"]:
                saved = root / f"step-{(step - 1) // 2 * 2}" / ".metadata"
                while (step - 1) // 2 * 2 > resume and not saved.exists():  # rank 0's newest save, if it is late
                    time.sleep(0.05)
                print(plan.get("stderr", EI), file=sys.stderr, flush=True)
                sys.exit(1)
            time.sleep(300)  # the other ranks wait for the faulted peer, as in a collective, until restarted
        time.sleep(plan.get("pace", 0.4))
        print(f"step {step}", flush=True)
        if rank == 0 and step % 2 == 0:
            (root / f"step-{step}").mkdir(exist_ok=True)
            (root / f"step-{step}" / ".metadata").write_text("{}")
""").replace("EI", json.dumps(EI0006), 1)

cluster = pytest.fixture(scope="module", name="cluster")(clusters.three_ascend_nodes)


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    process = OperatorProcess(cluster.kubeconfig_path, tmp_path_factory.mktemp("operator")).start()
    yield process
    process.stop()


def submit(custom: Any, name: str, plan: dict[str, Any], pool: str = "ascend-910b", **policy: Any) -> None:
    plan = {"steps": 10, "rank": 1, "attempts": [1], "after": 4, **plan}
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
        "spec": {"nodes": 2, "pools": [pool],
                 "container": {"command": ["tandem-run", "--checkpoint-layout", "torchtitan", "--", sys.executable,
                                           "-P", "-c", SCRIPT],
                               "env": [{"name": "FAULT_PLAN", "value": json.dumps(plan)}]},
                 "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": f"{name}-ckpt"}}},
                 "faultPolicy": {"backoffSeconds": 0, "maxBackoffSeconds": 0, **policy}}})


def uids(core: Any, name: str) -> dict[str, str]:
    pods = core.list_namespaced_pod(NS, label_selector=f"tandem.dev/job={name}").items
    return {p.metadata.name: p.metadata.uid for p in pods}


def log_of(core: Any, pod: str) -> str:
    return str(core.read_namespaced_pod_log(pod, NS))


def test_a_transient_hccl_fault_restarts_both_ranks_in_their_pods(custom: Any, core: Any, wait_for: Any) -> None:
    submit(custom, "in-place", {})
    wait_phase(custom, wait_for, "in-place", "Running")
    before = uids(core, "in-place")
    status = wait_phase(custom, wait_for, "in-place", "Succeeded")["status"]
    assert uids(core, "in-place") == before == {"in-place-a1-0": before["in-place-a1-0"],
                                                 "in-place-a1-1": before["in-place-a1-1"]}
    (fault,) = status["faults"]
    assert (fault["class"], fault["reason"], fault["pod"], fault["attempt"]) == (
        "interconnect", "HcclSocketTimeout", "in-place-a1-1", 1)
    assert fault["checkpointStep"] == 4
    assert (status["attempt"], status["restarts"], status["excludedNodes"]) == (2, 1, [])
    record = status["inPlaceRestart"]
    assert (record["attempt"], record["pods"]) == (2, ["in-place-a1-0", "in-place-a1-1"])
    # Attempt 2 resumed in both pods from that checkpoint.
    resumed = {int(log_of(core, pod).split("attempt 2 rank ")[1].split("resumes from ")[1].split()[0])
               for pod in ("in-place-a1-0", "in-place-a1-1")}
    assert resumed == {4}
    assert {core.read_namespaced_pod(p, NS).metadata.labels["tandem.dev/attempt"] for p in before} == {"2"}
    reasons = wait_for(lambda: (r := event_reasons(core, "in-place")) and r[-1] == "Succeeded" and r, timeout=15,
                       what="the Succeeded Event")
    assert reasons.count("AttemptStarted") == 1 and reasons.index("FaultDetected") < reasons.index("InPlace")
    assert "Restarting" not in reasons


def test_a_device_fault_report_replaces_only_that_nodes_pod(custom: Any, core: Any, wait_for: Any) -> None:
    submit(custom, "chip-move", {"attempts": [], "steps": 40, "pace": 0.5})
    wait_phase(custom, wait_for, "chip-move", "Running")
    before = uids(core, "chip-move")
    node = core.read_namespaced_pod("chip-move-a1-1", NS).spec.node_name
    core.create_namespaced_config_map("kube-system", ascend_fault_report(node))
    try:
        def moved() -> dict[str, Any] | None:
            job = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "chip-move")
            return job if job["status"].get("attempt") == 2 and job["status"]["phase"] == "Running" else None

        status = wait_for(moved, timeout=90, what="attempt 2 running")["status"]
        assert (status["faults"][0]["class"], status["faults"][0]["node"], status["excludedNodes"]) == (
            "device", node, [node])
        now = uids(core, "chip-move")
        assert now["chip-move-a1-0"] == before["chip-move-a1-0"]  # rank 0 stayed
        assert "chip-move-a1-1" not in now and set(now) == {"chip-move-a1-0", "chip-move-a2-1"}
        new = core.read_namespaced_pod("chip-move-a2-1", NS)
        env = {e.name: e.value for e in new.spec.containers[0].env}
        assert new.spec.node_name != node and env["MASTER_ADDR"] == "chip-move-a1-0.chip-move.default.svc"
    finally:
        core.delete_namespaced_config_map(f"mindx-dl-deviceinfo-{node}", "kube-system")
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "chip-move")


def test_a_second_fault_within_the_window_restarts_in_full(custom: Any, core: Any, wait_for: Any) -> None:
    submit(custom, "twice", {"attempts": [1, 2], "steps": 16}, failoverAfterFaults=5)
    status = wait_phase(custom, wait_for, "twice", "Succeeded")["status"]
    assert [(f["attempt"], f["reason"]) for f in status["faults"]] == [(1, "HcclSocketTimeout"),
                                                                        (2, "HcclSocketTimeout")]
    assert (status["attempt"], status["restarts"]) == (3, 2)
    assert {"twice-a3-0", "twice-a3-1"} <= set(uids(core, "twice"))  # the full restart's new pods
    # The second fault hit either before the operator saw every rank step (the in-place restart did not hold) or
    # after (within the window): a full restart in both cases, which the Event says.
    said = next(e.message for e in core.list_namespaced_event(NS, field_selector="involvedObject.name=twice").items
                if e.reason == "Restarting")
    assert ("a full restart: a fault within inPlaceRestartWindowSeconds" in said
            or "a full restart: the in-place restart of attempt 2 did not hold" in said), said


def test_a_supervisor_that_never_hears_the_operator_ends_in_a_full_restart(
        custom: Any, core: Any, wait_for: Any) -> None:
    """The pool's env (the cluster admin's) points the supervisors at a labels file that does not exist: the
    operator's label never reaches them, the restart misses inPlaceRestartDeadlineSeconds, the next is full."""
    pool = custom.get_cluster_custom_object(GROUP, VERSION, "acceleratorpools", "ascend-910b")
    deaf = {**pool, "metadata": {"name": "deaf"}, "status": {}}
    deaf["spec"] = {**pool["spec"], "env": [{"name": "TANDEM_POD_LABELS", "value": "/nowhere/labels"}]}
    custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools", deaf)
    submit(custom, "deaf", {}, pool="deaf", inPlaceRestartDeadlineSeconds=5)
    try:
        status = wait_phase(custom, wait_for, "deaf", "Succeeded")["status"]
        reasons = [f["reason"] for f in status["faults"]]
        assert (reasons, status["attempt"]) == (["HcclSocketTimeout", "InPlaceRestartTimedOut"], 3)
        wait_for(lambda: set(uids(core, "deaf")) == {"deaf-a3-0", "deaf-a3-1"}, timeout=30,
                 what="only the full restart's new pods")
    finally:
        custom.delete_cluster_custom_object(GROUP, VERSION, "acceleratorpools", "deaf")


def test_an_operator_killed_during_an_in_place_restart_finishes_it(custom: Any, core: Any, wait_for: Any,
                                                                  operator: OperatorProcess) -> None:
    submit(custom, "killed", {"steps": 14})
    wait_phase(custom, wait_for, "killed", "Running")
    before = uids(core, "killed")

    def decided() -> dict[str, Any] | None:
        job = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "killed")
        return job if job["status"].get("inPlaceRestart") else None

    wait_for(decided, timeout=60, interval=0.02, what="the in-place decision")
    operator.kill()  # at once: the labels may or may not have moved yet
    time.sleep(1)
    operator.start()
    status = wait_phase(custom, wait_for, "killed", "Succeeded")["status"]
    assert (status["attempt"], status["restarts"], uids(core, "killed")) == (2, 1, before)
