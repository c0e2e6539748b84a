"""Faults through the whole core: detection, recording, teardown, backoff, restart, failover."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from builders import NOW, make_job, make_node, make_pod, make_pool
from decisions import nothing, summary

from tandem.operator.api import FaultClass, JobPhase, TrainingJob
from tandem.operator.device_reports import DeviceFault
from tandem.operator.reconcile import Decision, Observation, reconcile

POOLS = {"ascend-910b": make_pool(), "h20": make_pool("h20", "gpu", devices=4)}
NODES = [*(make_node(f"ascend-{i}", "ascend-910b") for i in range(3)), make_node("h20-0", "h20"),
         make_node("h20-1", "h20")]


def report(cls: str, reason: str, message: str, rank: int = 1, step: int = 130, checkpoint: int = 100) -> str:
    return json.dumps({"class": cls, "reason": reason, "message": message, "rank": rank, "step": step,
                       "checkpointStep": checkpoint, "resumedFrom": None})


def running(status: dict[str, Any] | None = None, **spec: Any) -> TrainingJob:
    base = {"phase": "Running", "attempt": 1, "pool": "ascend-910b", "startTime": "2026-11-23T11:00:00Z"}
    return make_job(status={**base, **(status or {})}, **spec)


def attempt_pods(attempt: int = 1, failed_rank: int | None = 1, message: str = "", exit_code: int = 3,
                 reason: str = "Error", pool_nodes: tuple[str, str] = ("ascend-0", "ascend-1")) -> list[dict[str, Any]]:
    pods = []
    for rank in range(2):
        if rank == failed_rank:
            pods.append(make_pod("llama", attempt, rank, "Failed", pool_nodes[rank], exit_code=exit_code,
                                 reason=reason, message=message))
        else:
            pods.append(make_pod("llama", attempt, rank, "Running", pool_nodes[rank]))
    return pods


def decide(job: TrainingJob, pods: list[dict[str, Any]], nodes: list[dict[str, Any]] | None = None,
           now_offset: float = 0.0, device_faults: dict[str, Any] | None = None) -> Decision:
    return reconcile(Observation(job=job, pools=POOLS, nodes=nodes or NODES, pods=pods, service_exists=True,
                                 now=NOW + timedelta(seconds=now_offset), device_faults=device_faults or {},
                                 force_delete_after=30))


NOW_Z = NOW.isoformat().replace("+00:00", "Z")
HCCL = report("interconnect", "HcclSocketTimeout", "EI0006: Getting socket times out. Reason: Remote Rank did not "
              "send the data in time.")


def test_an_interconnect_fault_records_tears_down_and_schedules_a_restart() -> None:
    """The whole decision: the fault recorded, the gang torn down, the restart scheduled after the backoff."""
    decision = decide(running(faultPolicy={"backoffSeconds": 10}), attempt_pods(message=HCCL))
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "interconnect", "reason": "HcclSocketTimeout", "message": json.loads(HCCL)["message"],
             "step": 130, "checkpointStep": 100}
    restarting = ("interconnect fault HcclSocketTimeout: restart 1 of 10 on ascend-910b 10s after the attempt's "
                  "pods stop")
    ready = {"type": "Ready", "status": "False", "reason": "Restarting", "message": restarting,
             "lastTransitionTime": NOW_Z, "observedGeneration": 1}
    assert summary(decision) == nothing({
        "observedGeneration": 1, "phase": "Restarting", "message": restarting, "pool": "ascend-910b", "attempt": 1,
        "restarts": 1, "failovers": 0, "lastCheckpoint": {"step": 100, "time": NOW_Z}, "faults": [fault],
        # A socket timeout says the peer did not answer: no evidence against this rank's own node.
        "excludedNodes": [], "exclusions": [],
        "poolFaults": 1, "pendingEvents": [], "conditions": [ready], "restartDelaySeconds": 10,
        "startTime": "2026-11-23T11:00:00Z"},
        delete=["llama-a1-0"],  # gang teardown
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: interconnect/"
                 f"HcclSocketTimeout: {fault['message']}"), ("Normal", "Restarting", restarting)],
        requeue_after=2.0, restarted=("ascend-910b", "interconnect"))


def test_the_backoff_runs_from_when_the_old_pods_have_stopped() -> None:
    """The Restarting Event's "10s after the attempt's pods stop" is when the next attempt really starts."""
    job = running({"phase": "Restarting", "restarts": 1, "restartDelaySeconds": 10})
    old = [make_pod("llama", 1, 1, "Failed", "ascend-1", exit_code=3)]
    terminating = make_pod("llama", 1, 0, "Running", "ascend-0")
    terminating["metadata"]["deletionTimestamp"] = NOW.isoformat()
    stopping = decide(job, [*old, terminating], now_offset=30)
    assert summary(stopping) == nothing(stopping.status.to_dict(), requeue_after=2.0)
    assert stopping.status.next_attempt_time is None
    stopped = decide(job, old, now_offset=31)
    assert summary(stopped) == nothing(
        {**stopped.status.to_dict(), "nextAttemptTime": (NOW + timedelta(seconds=41)).isoformat().replace(
            "+00:00", "Z")}, requeue_after=10.0)
    due = running(stopped.status.to_dict())
    assert decide(due, old, now_offset=40).create == []
    started = decide(due, old, now_offset=41)
    assert (started.status.attempt, started.status.phase, started.starts_attempt) == (2, JobPhase.PENDING, True)
    assert [m["metadata"]["name"] for m in started.create] == ["llama-a2-0", "llama-a2-1"]
    assert started.status.next_attempt_time is None and started.status.restart_delay_seconds is None


def test_new_pods_avoid_excluded_nodes() -> None:
    job = running({"phase": "Restarting", "restarts": 1, "excludedNodes": ["ascend-1"],
                   "nextAttemptTime": NOW.isoformat()})
    pods = decide(job, []).create
    affinity = pods[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert affinity["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["ascend-1"]


def test_the_second_interconnect_fault_fails_over_to_the_gpu_pool() -> None:
    earlier = {"time": NOW.isoformat(), "attempt": 1, "pool": "ascend-910b", "class": "interconnect",
               "reason": "HcclSocketTimeout", "node": "ascend-1", "checkpointStep": 100}
    job = running({"attempt": 2, "restarts": 1, "faults": [earlier], "excludedNodes": ["ascend-1"], "poolFaults": 1})
    second = report("interconnect", "HcclExecTimeout", "EI0002", checkpoint=150)
    decision = decide(job, attempt_pods(attempt=2, message=second, pool_nodes=("ascend-0", "ascend-2")))
    status = decision.status
    assert (status.pool, status.failovers, status.restarts, status.phase) == ("h20", 1, 2, JobPhase.RESTARTING)
    assert decision.failed_over == ("ascend-910b", "h20")
    assert any(e.reason == "FailedOver" and "ascend-910b to h20" in e.message for e in decision.events)
    restart = decide(TrainingJob.model_validate({**job.model_dump(by_alias=True), "status": status.to_dict()}), [],
                     now_offset=3600)
    assert restart.create == [] and restart.status.next_attempt_time is not None  # the backoff starts now
    restart = decide(TrainingJob.model_validate({**job.model_dump(by_alias=True), "status": restart.status.to_dict()}),
                     [], now_offset=7200)
    pod = restart.create[0]
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert pod["spec"]["nodeSelector"] == {"tandem.dev/pool": "h20"}
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    assert (env["TANDEM_BACKEND"], env["TANDEM_POOL"], env["TANDEM_ATTEMPT"]) == ("nccl", "h20", "3")


def test_a_user_error_fails_the_job_without_a_restart() -> None:
    message = report("user", "ConfigError", "unknown field 'data.pth'")
    decision = decide(running(), attempt_pods(message=message, exit_code=2))
    assert decision.status.phase == JobPhase.FAILED and decision.status.restarts == 0
    assert "retrying cannot help" in decision.status.message and "data.pth" in decision.status.message
    assert decision.delete == ["llama-a1-0"]


def test_oom_killed_restarts_without_excluding_the_node() -> None:
    decision = decide(running(), attempt_pods(reason="OOMKilled", exit_code=137))
    assert decision.status.faults[-1].fault_class.value == "oom"
    assert decision.status.excluded_nodes == [] and decision.status.phase == JobPhase.RESTARTING


def test_max_restarts_exhausted_fails_the_job() -> None:
    decision = decide(running({"restarts": 3}, faultPolicy={"maxRestarts": 3}), attempt_pods(message=HCCL))
    assert decision.status.phase == JobPhase.FAILED and "maxRestarts (3) reached" in decision.status.message


def test_a_rank_on_a_node_that_went_not_ready_is_a_node_fault() -> None:
    nodes = [*NODES[:1], make_node("ascend-1", "ascend-910b", ready=False), *NODES[2:]]
    pods = [make_pod("llama", 1, 0, "Running", "ascend-0"), make_pod("llama", 1, 1, "Running", "ascend-1")]
    decision = decide(running(), pods, nodes=nodes)
    fault = decision.status.faults[-1]
    assert (fault.fault_class.value, fault.node) == ("node", "ascend-1")
    assert sorted(decision.delete) == ["llama-a1-0", "llama-a1-1"]
    assert decision.status.excluded_nodes == ["ascend-1"]


def test_pods_stuck_terminating_on_a_dead_node_are_force_deleted_after_the_grace() -> None:
    nodes = [*NODES[:1], make_node("ascend-1", "ascend-910b", ready=False), *NODES[2:]]
    stuck = make_pod("llama", 1, 1, "Running", "ascend-1")
    stuck["metadata"]["deletionTimestamp"] = NOW.isoformat()
    job = running({"phase": "Restarting", "restarts": 1, "nextAttemptTime": NOW.isoformat()})
    assert decide(job, [stuck], nodes=nodes, now_offset=10).force_delete == []
    assert decide(job, [stuck], nodes=nodes, now_offset=31).force_delete == ["llama-a1-1"]
    assert decide(job, [stuck], nodes=NODES, now_offset=31).force_delete == []  # a live kubelet will finish it


def test_pods_unschedulable_past_the_timeout_fail_over_without_a_restart() -> None:
    pending = [make_pod("llama", 1, r) for r in range(2)]
    for pod in pending:
        pod["metadata"]["creationTimestamp"] = NOW.isoformat()
    job = running({"phase": "Pending"}, faultPolicy={"pendingTimeoutSeconds": 60})
    assert decide(job, pending, now_offset=30).status.phase == JobPhase.PENDING
    decision = decide(job, pending, now_offset=61)
    assert (decision.status.pool, decision.status.failovers, decision.status.restarts) == ("h20", 1, 0)
    assert decision.status.phase == JobPhase.RESTARTING and decision.status.faults == []
    assert sorted(decision.delete) == ["llama-a1-0", "llama-a1-1"]


def test_a_job_starts_on_the_next_pool_when_the_first_has_no_room() -> None:
    nodes = [make_node("ascend-0", "ascend-910b"), *NODES[3:]]
    decision = decide(make_job(), [], nodes=nodes)
    assert decision.status.pool == "h20" and decision.status.attempt == 1
    assert "(ascend-910b without room)" in decision.events[0].message


def test_recovery_time_is_measured_when_the_next_attempt_runs() -> None:
    fault = {"time": NOW.isoformat(), "attempt": 1, "pool": "ascend-910b", "class": "interconnect", "reason": "X"}
    job = running({"phase": "Starting", "attempt": 2, "restarts": 1, "faults": [fault]})
    pods = [make_pod("llama", 2, r, "Running", f"ascend-{r}") for r in range(2)]
    decision = decide(job, pods, now_offset=42)
    assert decision.status.phase == JobPhase.RUNNING and decision.recovered_after == 42


def test_a_recorded_fault_is_never_counted_twice() -> None:
    """The operator died after writing the Restarting status: the next one only continues the restart."""
    first = decide(running(), attempt_pods(message=HCCL))
    replay = running(first.status.to_dict())
    again = decide(replay, attempt_pods(message=HCCL), now_offset=1)
    assert again.status.restarts == 1 and len(again.status.faults) == 1 and again.status.phase.value == "Restarting"


def test_device_fault_report_on_a_running_ranks_node_ends_the_attempt() -> None:
    report_ = DeviceFault(node="ascend-1", fault_class=FaultClass.DEVICE, reason="AscendDeviceFault",
                          message="card 3: fault code 80E01801, level RestartNPU", source="device-report")
    pods = [make_pod("llama", 1, 0, "Running", "ascend-0"), make_pod("llama", 1, 1, "Running", "ascend-1")]
    decision = decide(running(), pods, device_faults={"ascend-1": [report_]})
    fault = decision.status.faults[-1]
    assert (fault.fault_class.value, fault.node) == ("device", "ascend-1")
    assert decision.status.excluded_nodes == ["ascend-1"]


PEER_LOST = report("interconnect", "PeerConnectionLost", "Connection reset by peer", rank=0)


def test_a_symptom_waits_for_the_other_ranks_to_tell_the_root_cause() -> None:
    """Rank 0 noticed its peer vanish 50 ms before rank 1's pod reported the HCCL fault that caused it."""
    symptom = make_pod("llama", 1, 0, "Failed", "ascend-0", exit_code=3, message=PEER_LOST,
                       finished_at=NOW.isoformat())
    still_running = make_pod("llama", 1, 1, "Running", "ascend-1")
    waiting = decide(running(), [symptom, still_running], now_offset=0.5)
    assert waiting.status.faults == [] and waiting.delete == [] and waiting.requeue_after == pytest.approx(9.5)
    culprit = make_pod("llama", 1, 1, "Failed", "ascend-1", exit_code=3, message=HCCL, finished_at=NOW.isoformat())
    decided = decide(running(), [symptom, culprit], now_offset=1)
    assert (decided.status.faults[-1].pod, decided.status.faults[-1].reason) == ("llama-a1-1", "HcclSocketTimeout")
    late = decide(running(), [symptom, still_running], now_offset=11)
    assert late.status.faults[-1].reason == "PeerConnectionLost" and late.delete == ["llama-a1-1"]


def test_a_device_fault_the_runtime_reports_excludes_its_node() -> None:
    chip = report("device", "NpuError", "EZ9999: aicore error on device 3", checkpoint=100)
    decision = decide(running(), attempt_pods(message=chip, exit_code=4))
    assert (decision.status.excluded_nodes, [e.node for e in decision.status.exclusions]) == (
        ["ascend-1"], ["ascend-1"])
    assert decision.status.exclusions[0].reason == "device/NpuError"
