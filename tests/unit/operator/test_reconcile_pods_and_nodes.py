"""The core on what pods and nodes really look like: sidecars that keep a pod Running after its rank ended, nodes
the scheduler will not use (cordoned, tainted, reporting a fault), exclusions released only after a healthy spell,
and pods deleted by hand. Each case compares the whole decision."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import NOW, make_job, make_node, make_pod, make_pool
from decisions import condition, nothing, summary, zulu

from tandem.operator.capacity import room
from tandem.operator.reconcile import Observation, reconcile

POOLS = {"ascend-910b": make_pool()}
NODES = [make_node(f"ascend-{i}", "ascend-910b") for i in range(2)]
START = "2026-11-23T11:00:00Z"
NOW_Z = zulu(NOW)
SIDECAR = {"name": "log-shipper", "image": "fluent/fluent-bit:3.0"}


def status(**fields: Any) -> dict[str, Any]:
    base = {"observedGeneration": 1, "phase": "Running", "message": "all 2 rank(s) running", "pool": "ascend-910b",
            "attempt": 1, "restarts": 0, "failovers": 0, "lastCheckpoint": {"step": 0}, "faults": [],
            "excludedNodes": [], "exclusions": [], "poolFaults": 0, "pendingEvents": [], "conditions": [],
            "startTime": START}
    return {key: value for key, value in {**base, **fields}.items() if value is not None}


def beside_a_sidecar(rank: int, trainer_exit: int | None, message: str = "") -> dict[str, Any]:
    """A rank's pod as the kubelet reports it with restartPolicy Never: Running while the sidecar runs."""
    pod = make_pod("llama", 1, rank, node=f"ascend-{rank}")
    trainer = ({"running": {"startedAt": START}} if trainer_exit is None else
               {"terminated": {"exitCode": trainer_exit, "reason": "Completed" if trainer_exit == 0 else "Error",
                               "message": message, "finishedAt": "2026-11-23T11:59:00Z"}})
    pod["status"] = {"phase": "Running", "containerStatuses": [
        {"name": "log-shipper", "state": {"running": {"startedAt": START}}},
        {"name": "trainer", "state": trainer}]}
    return pod


def with_sidecars(**fields: Any) -> Any:
    return make_job(status=status(**fields), podTemplate={"spec": {"containers": [SIDECAR]}},
                    faultPolicy={"inPlaceRestart": False})


def decide(job: Any, pods: list[dict[str, Any]]) -> dict[str, Any]:
    return summary(reconcile(Observation(job=job, pools=POOLS, nodes=NODES, pods=pods, service_exists=True,
                                         now=NOW)))


def test_a_rank_whose_trainer_failed_beside_a_running_sidecar_ends_the_attempt() -> None:
    """The job showed `all 2 rank(s) running` for ever, holding its accelerators, while rank 1's trainer was dead."""
    report = json.dumps({"class": "device", "reason": "NpuChipFault", "message": "EL0001 chip", "rank": 1,
                         "step": 130, "checkpointStep": 100, "resumedFrom": None})
    message = ("device fault NpuChipFault: restart 1 of 10 on ascend-910b 10s after the attempt's pods stop; no other "
               "pool has room for 2 pod(s)")
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "device", "reason": "NpuChipFault", "message": "EL0001 chip", "step": 130, "checkpointStep": 100}
    assert decide(with_sidecars(), [beside_a_sidecar(0, None), beside_a_sidecar(1, 4, report)]) == nothing(
        status(phase="Restarting", message=message, restarts=1, poolFaults=1, restartDelaySeconds=10, faults=[fault],
               lastCheckpoint={"step": 100, "time": NOW_Z}, excludedNodes=["ascend-1"],
               exclusions=[{"node": "ascend-1", "since": NOW_Z, "reason": "device/NpuChipFault"}],
               conditions=[condition("Ready", False, "Restarting", message)]),
        delete=["llama-a1-0", "llama-a1-1"], requeue_after=2.0, restarted=("ascend-910b", "device"),
        events=[("Warning", "FaultDetected",
                 "attempt 1, llama-a1-1 on node ascend-1: device/NpuChipFault: EL0001 chip"),
                ("Normal", "Restarting", message)])


def test_ranks_whose_trainers_all_finished_beside_sidecars_succeed_and_their_pods_go() -> None:
    done = json.dumps({"class": "none", "reason": "Completed", "message": "trained", "step": 1000,
                       "checkpointStep": 1000})
    message = "all 2 rank(s) finished"
    assert decide(with_sidecars(), [beside_a_sidecar(r, 0, done) for r in range(2)]) == nothing(
        status(phase="Succeeded", message=message, completionTime=NOW_Z, lastCheckpoint={"step": 1000, "time": NOW_Z},
               conditions=[condition("Ready", False, "Succeeded", message),
                           condition("Succeeded", True, "Succeeded", message)]),
        delete=["llama-a1-0", "llama-a1-1"], events=[("Normal", "Succeeded", message)])


def test_a_rank_that_finished_first_beside_a_sidecar_waits_for_the_others() -> None:
    assert decide(with_sidecars(), [beside_a_sidecar(0, 0), beside_a_sidecar(1, None)]) == nothing(
        status(), requeue_after=30.0)


def test_a_rank_stopped_by_sigterm_alone_restarts_without_blaming_its_node() -> None:
    """`kubectl delete pod llama-a1-1` on a custom command: Failed with exit 143 and no DisruptionTarget before it
    goes. A SIGTERM alone is no evidence against the node (seen a moment later, the same deletion is PodLost, which
    excludes nothing either): it was excluded, shrinking the pool for nodeExclusionSeconds."""
    job = make_job(status=status(), container={"command": ["torchrun", "train.py"]})
    deleted = make_pod("llama", 1, 1, "Failed", "ascend-1", exit_code=143, reason="Error")
    deleted["metadata"]["deletionTimestamp"] = "2026-11-23T11:59:30Z"
    deleted["spec"]["containers"] = [{"name": "trainer", "command": ["torchrun", "train.py"]}]
    message = "node fault Terminated: restart 1 of 10 on ascend-910b 10s after the attempt's pods stop"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "node", "reason": "Terminated", "checkpointStep": 0,
             "message": "container trainer was stopped by SIGTERM (exit code 143)"}
    assert decide(job, [make_pod("llama", 1, 0, "Running", "ascend-0"), deleted]) == nothing(
        status(phase="Restarting", message=message, restarts=1, restartDelaySeconds=10, faults=[fault],
               conditions=[condition("Ready", False, "Restarting", message)]),
        delete=["llama-a1-0"], requeue_after=2.0, restarted=("ascend-910b", "node"),
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: node/Terminated: "
                 f"{fault['message']}"), ("Normal", "Restarting", message)])


# --- nodes the scheduler will not use are no room ----------------------------------------------------------------

CORDONED = {"unschedulable": True, "taints": [{"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}]}
NPU_TAINT = {"key": "huawei.com/Ascend910", "value": "present", "effect": "NoSchedule"}


def node_with(spec: dict[str, Any], name: str = "ascend-1") -> dict[str, Any]:
    return {**make_node(name, "ascend-910b"), "spec": spec}


@pytest.mark.parametrize(("spec", "tolerations", "counts"), [
    ({}, [], True),
    (CORDONED, [], False),
    ({"taints": [NPU_TAINT]}, [], False),
    ({"taints": [NPU_TAINT]}, [{"key": "huawei.com/Ascend910", "operator": "Exists"}], True),
    ({"taints": [NPU_TAINT]}, [{"key": "huawei.com/Ascend910", "value": "present", "effect": "NoSchedule"}], True),
    ({"taints": [NPU_TAINT]}, [{"key": "huawei.com/Ascend910", "value": "absent"}], False),
    ({"taints": [NPU_TAINT]}, [{"key": "huawei.com/Ascend910", "operator": "Exists", "effect": "NoExecute"}], False),
    ({"taints": [NPU_TAINT]}, [{"operator": "Exists"}], True),
    ({"taints": [{**NPU_TAINT, "effect": "PreferNoSchedule"}]}, [], True),
    ({"taints": [{**NPU_TAINT, "effect": "NoExecute"}]}, [], False),
], ids=["plain", "cordoned", "tainted", "exists", "equal", "other-value", "other-effect", "everything",
        "prefer-no-schedule", "no-execute"])
def test_a_node_counts_as_room_only_where_the_scheduler_would_place_the_pod(
        spec: dict[str, Any], tolerations: list[dict[str, Any]], counts: bool) -> None:
    pool = make_pool(tolerations=tolerations)
    assert room(pool, [make_node("ascend-0", "ascend-910b"), node_with(spec)], {}, [], []).free == (2 if counts else 1)


def test_the_jobs_own_tolerations_count_beside_the_pools() -> None:
    job = make_job(podTemplate={"spec": {"tolerations": [{"key": "huawei.com/Ascend910", "operator": "Exists"}]}})
    nodes = [node_with({"taints": [NPU_TAINT]}, f"ascend-{i}") for i in range(2)]
    decision = reconcile(Observation(job=job, pools=POOLS, nodes=nodes, pods=[], service_exists=False, now=NOW))
    assert (decision.status.pool, decision.starts_attempt) == ("ascend-910b", True)


def assert_starts_on_h20_at_once(decision: Any) -> None:
    """The whole decision of a 2-node gang that ascend-910b has no room for: attempt 1 starts on h20."""
    message = ("attempt 1 on pool h20: 2 pod(s) of 4 device(s) (ascend-910b without room); image "
               "example.org/tandem-runtime:gpu, command tandem-train")
    assert summary(decision) == nothing(
        {**status(phase="Pending", message=message, pool="h20", startTime=NOW_Z), "conditions": [
            condition("Admitted", True, "Admitted", "pool h20 has room for 2 pod(s) on 2 usable node(s)"),
            condition("Ready", False, "AttemptStarted", message)]},
        create=["Service/llama", "Pod/llama-a1-0", "Pod/llama-a1-1"], events=[("Normal", "AttemptStarted", message)],
        starts_attempt=True)


def test_a_pool_whose_room_is_a_cordoned_node_is_skipped_at_once() -> None:
    """A 2-node gang on ascend-910b with one node cordoned: it sat Pending for pendingTimeoutSeconds and then spent
    a failover; it starts on h20 at once."""
    pools = {**POOLS, "h20": make_pool("h20", "gpu", devices=4)}
    nodes = [make_node("ascend-0", "ascend-910b"), node_with(CORDONED), make_node("h20-0", "h20"),
             make_node("h20-1", "h20")]
    decision = reconcile(Observation(job=make_job(), pools=pools, nodes=nodes, pods=[], service_exists=False, now=NOW))
    assert_starts_on_h20_at_once(decision)


def in_zone(node: dict[str, Any], zone: str) -> dict[str, Any]:
    return {**node, "metadata": {**node["metadata"], "labels": {**node["metadata"]["labels"], "zone": zone}}}


def test_a_pool_whose_room_is_outside_the_jobs_own_node_selector_is_skipped_at_once() -> None:
    """The job's podTemplate.nodeSelector narrows the pool's nodes for its pods: ascend-910b has two free nodes but
    one in the zone the job asks for, so the 2-node gang would sit Pending there and then spend a failover; it
    starts on h20, whose two nodes are in that zone, at once."""
    pools = {**POOLS, "h20": make_pool("h20", "gpu", devices=4)}
    nodes = [in_zone(make_node("ascend-0", "ascend-910b"), "a"), in_zone(make_node("ascend-1", "ascend-910b"), "b"),
             in_zone(make_node("h20-0", "h20"), "a"), in_zone(make_node("h20-1", "h20"), "a")]
    job = make_job(podTemplate={"spec": {"nodeSelector": {"zone": "a"}}})
    decision = reconcile(Observation(job=job, pools=pools, nodes=nodes, pods=[], service_exists=False, now=NOW))
    assert_starts_on_h20_at_once(decision)


def test_the_pools_own_selector_wins_over_the_jobs_on_the_same_key() -> None:
    """The pods carry the pool's value where both name a key (operator/podtemplate.py), so room counts it too."""
    nodes = [make_node(f"ascend-{i}", "ascend-910b") for i in range(2)]
    assert room(make_pool(), nodes, {}, [], [], node_selector={"tandem.dev/pool": "h20"}).free == 2
    assert room(make_pool(), nodes, {}, [], [], node_selector={"zone": "a"}).free == 0


def test_new_pods_keep_off_a_node_that_reports_a_fault_now() -> None:
    """Admission counts a node with an open fault report (a RoCE port down, while the node stays Ready) as no room;
    the pods must keep off it too, or a rank bound there faults at once and spends the failover budget."""
    from tandem.operator.api import FaultClass
    from tandem.operator.device_reports import DeviceFault

    link_down = DeviceFault(node="ascend-2", fault_class=FaultClass.INTERCONNECT, reason="NpuNetworkUnhealthy",
                            message="network unhealthy", source="ascend-device-plugin")
    nodes = [make_node(f"ascend-{i}", "ascend-910b") for i in range(3)]
    job = make_job(status={"excludedNodes": ["ascend-0"], "exclusions": [
        {"node": "ascend-0", "since": NOW_Z, "reason": "device/X"}]})
    nodes.append(make_node("ascend-3", "ascend-910b"))
    decision = reconcile(Observation(job=job, pools=POOLS, nodes=nodes, pods=[], service_exists=True, now=NOW,
                                     device_faults={"ascend-2": [link_down]}))
    kept_off = [m["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
                ["nodeSelectorTerms"][0]["matchFields"][0]["values"] for m in decision.create if m["kind"] == "Pod"]
    assert (decision.status.pool, kept_off) == ("ascend-910b", [["ascend-0", "ascend-2"]] * 2)
