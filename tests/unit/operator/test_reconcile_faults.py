"""Faults through the whole core: detection, recording, teardown, backoff, restart, failover."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from builders import NOW, make_job, make_node, make_pod, make_pool
from decisions import condition, nothing, summary, zulu

from tandem.operator.api import FaultClass, TrainingJob
from tandem.operator.device_reports import DeviceFault
from tandem.operator.reconcile import Decision, Observation, reconcile

POOLS = {"ascend-910b": make_pool(), "h20": make_pool("h20", "gpu", devices=4)}
NODES = [*(make_node(f"ascend-{i}", "ascend-910b") for i in range(3)), make_node("h20-0", "h20"),
         make_node("h20-1", "h20")]
START = "2026-11-23T11:00:00Z"


def report(cls: str, reason: str, message: str, rank: int = 1, step: int = 130, checkpoint: int = 100) -> str:
    return json.dumps({"class": cls, "reason": reason, "message": message, "rank": rank, "step": step,
                       "checkpointStep": checkpoint, "resumedFrom": None})


def running(status: dict[str, Any] | None = None, **spec: Any) -> TrainingJob:
    base = {"phase": "Running", "attempt": 1, "pool": "ascend-910b", "startTime": START}
    return make_job(status={**base, **(status or {})}, **spec)


def full(**fields: Any) -> dict[str, Any]:
    """The next status in full: what `running()` serializes to, with `fields` changed (None drops a field)."""
    base = {"observedGeneration": 1, "phase": "Running", "message": "", "pool": "ascend-910b", "attempt": 1,
            "restarts": 0, "failovers": 0, "lastCheckpoint": {"step": 0}, "faults": [], "excludedNodes": [],
            "exclusions": [], "poolFaults": 0, "pendingEvents": [], "conditions": [], "startTime": START}
    return {key: value for key, value in {**base, **fields}.items() if value is not None}


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
           now_offset: float = 0.0, device_faults: dict[str, Any] | None = None,
           departed: list[dict[str, Any]] | None = None) -> Decision:
    return reconcile(Observation(job=job, pools=POOLS, nodes=nodes or NODES, pods=pods, service_exists=True,
                                 now=NOW + timedelta(seconds=now_offset), device_faults=device_faults or {},
                                 force_delete_after=30, departed=departed or []))


NOW_Z = zulu(NOW)
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
    waiting = full(phase="Restarting", restarts=1, restartDelaySeconds=10)  # no nextAttemptTime yet
    stopping = decide(job, [*old, terminating], now_offset=30)
    assert summary(stopping) == nothing(waiting, requeue_after=2.0)
    stopped = decide(job, old, now_offset=31)
    scheduled = {**waiting, "nextAttemptTime": zulu(NOW + timedelta(seconds=41))}
    assert summary(stopped) == nothing(scheduled, requeue_after=10.0)
    due = running(stopped.status.to_dict())
    assert summary(decide(due, old, now_offset=40)) == nothing(scheduled, requeue_after=1.0)
    started = decide(due, old, now_offset=41)
    at = zulu(NOW + timedelta(seconds=41))
    message = ("attempt 2 on pool ascend-910b: 2 pod(s) of 8 device(s)"
               "; image example.org/tandem-runtime:npu, command tandem-train")
    assert summary(started) == nothing(
        full(phase="Pending", attempt=2, restarts=1, message=message, conditions=[
            condition("Admitted", True, "Admitted", "pool ascend-910b has room for 3 pod(s) on 3 usable node(s)", at),
            condition("Ready", False, "AttemptStarted", message, at)]),
        create=["Pod/llama-a2-0", "Pod/llama-a2-1"], events=[("Normal", "AttemptStarted", message)],
        starts_attempt=True)


def test_new_pods_avoid_excluded_nodes() -> None:
    job = running({"phase": "Restarting", "restarts": 1, "excludedNodes": ["ascend-1"],
                   "nextAttemptTime": NOW.isoformat()})
    decision = decide(job, [])
    message = ("attempt 2 on pool ascend-910b: 2 pod(s) of 8 device(s)"
               "; image example.org/tandem-runtime:npu, command tandem-train")
    assert summary(decision) == nothing(
        full(phase="Pending", attempt=2, restarts=1, message=message, excludedNodes=["ascend-1"],
             # excluded before exclusions were recorded: the exclusion's clock starts now, with no reason known
             exclusions=[{"node": "ascend-1", "since": NOW_Z, "reason": ""}], conditions=[
                 condition("Admitted", True, "Admitted", "pool ascend-910b has room for 2 pod(s) on 2 usable node(s)"),
                 condition("Ready", False, "AttemptStarted", message)]),
        create=["Pod/llama-a2-0", "Pod/llama-a2-1"], events=[("Normal", "AttemptStarted", message)],
        starts_attempt=True)
    pods = decision.create
    affinity = pods[0]["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert affinity["nodeSelectorTerms"][0]["matchFields"][0]["values"] == ["ascend-1"]


def test_the_second_interconnect_fault_fails_over_to_the_gpu_pool() -> None:
    earlier = {"time": NOW.isoformat(), "attempt": 1, "pool": "ascend-910b", "class": "interconnect",
               "reason": "HcclSocketTimeout", "node": "ascend-1", "checkpointStep": 100}
    job = running({"attempt": 2, "restarts": 1, "faults": [earlier], "excludedNodes": ["ascend-1"], "poolFaults": 1})
    second = report("interconnect", "HcclExecTimeout", "EI0002", checkpoint=150)
    decision = decide(job, attempt_pods(attempt=2, message=second, pool_nodes=("ascend-0", "ascend-2")))
    failed_over = ("interconnect fault HcclExecTimeout: moving from ascend-910b to h20 (2 interconnect/device "
                   "fault(s) on ascend-910b); restart 2 of 10 10s after the attempt's pods stop")
    faults = [{"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "class": "interconnect",
               "reason": "HcclSocketTimeout", "message": "", "node": "ascend-1", "checkpointStep": 100},
              {"time": NOW_Z, "attempt": 2, "pool": "ascend-910b", "node": "ascend-2", "pod": "llama-a2-1",
               "class": "interconnect", "reason": "HcclExecTimeout", "message": "EI0002", "step": 130,
               "checkpointStep": 150}]
    moved = full(phase="Restarting", message=failed_over, attempt=2, pool="h20", restarts=2, failovers=1,
                 faults=faults, lastCheckpoint={"step": 150, "time": NOW_Z},
                 # the second fault was a timeout, no evidence against ascend-2; ascend-1's exclusion, recorded
                 # before exclusions were, starts its clock now
                 excludedNodes=["ascend-1"], exclusions=[{"node": "ascend-1", "since": NOW_Z, "reason": ""}],
                 poolFaults=0,  # counted per pool: h20 has none
                 restartDelaySeconds=10, conditions=[condition("Ready", False, "FailedOver", failed_over)])
    assert summary(decision) == nothing(
        moved, delete=["llama-a2-0"],
        events=[("Warning", "FaultDetected", "attempt 2, llama-a2-1 on node ascend-2: interconnect/HcclExecTimeout: "
                 "EI0002"), ("Warning", "FailedOver", failed_over)],
        requeue_after=2.0, restarted=("ascend-910b", "interconnect"), failed_over=("ascend-910b", "h20"))
    restart = decide(TrainingJob.model_validate({**job.model_dump(by_alias=True), "status": decision.status.to_dict()}),
                     [], now_offset=3600)
    # The backoff starts now; ascend-1, healthy for its 1800s of exclusion, is released.
    assert summary(restart) == nothing(
        {**moved, "excludedNodes": [], "exclusions": [], "nextAttemptTime": zulu(NOW + timedelta(seconds=3610))},
        events=[("Normal", "NodeReleased", "node ascend-1 has been healthy for 1800s: new pods may use it again")],
        requeue_after=10.0)
    restart = decide(TrainingJob.model_validate({**job.model_dump(by_alias=True), "status": restart.status.to_dict()}),
                     [], now_offset=7200)
    started = ("attempt 3 on pool h20: 2 pod(s) of 4 device(s), resuming from checkpoint step 150"
               "; image example.org/tandem-runtime:gpu, command tandem-train")
    assert summary(restart) == nothing(
        full(phase="Pending", message=started, attempt=3, pool="h20", restarts=2, failovers=1, faults=faults,
             lastCheckpoint={"step": 150, "time": NOW_Z}, conditions=[
                 condition("Ready", False, "AttemptStarted", started),  # False since the failover: no transition
                 condition("Admitted", True, "Admitted", "pool h20 has room for 2 pod(s) on 2 usable node(s)",
                           zulu(NOW + timedelta(seconds=7200)))]),
        create=["Pod/llama-a3-0", "Pod/llama-a3-1"], events=[("Normal", "AttemptStarted", started)],
        starts_attempt=True)
    pod = restart.create[0]
    env = {e["name"]: e["value"] for e in pod["spec"]["containers"][0]["env"]}
    assert pod["spec"]["nodeSelector"] == {"tandem.dev/pool": "h20"}
    assert pod["spec"]["containers"][0]["resources"]["limits"] == {"nvidia.com/gpu": "4"}
    assert (env["TANDEM_BACKEND"], env["TANDEM_POOL"], env["TANDEM_ATTEMPT"]) == ("nccl", "h20", "3")


def test_a_user_error_fails_the_job_without_a_restart() -> None:
    message = report("user", "ConfigError", "unknown field 'data.pth'")
    decision = decide(running(), attempt_pods(message=message, exit_code=2))
    failed = "user fault ConfigError: retrying cannot help: unknown field 'data.pth'"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "user", "reason": "ConfigError", "message": "unknown field 'data.pth'", "step": 130,
             "checkpointStep": 100}
    assert summary(decision) == nothing(
        full(phase="Failed", message=failed, restarts=0, faults=[fault], lastCheckpoint={"step": 100, "time": NOW_Z},
             completionTime=NOW_Z, conditions=[condition("Ready", False, "Failed", failed),
                                               condition("Failed", True, "Failed", failed)]),
        delete=["llama-a1-0"],
        events=[("Warning", "FaultDetected", "attempt 1, llama-a1-1 on node ascend-1: user/ConfigError: unknown "
                 "field 'data.pth'"), ("Warning", "Failed", failed)])


def test_oom_killed_restarts_without_excluding_the_node() -> None:
    decision = decide(running(), attempt_pods(reason="OOMKilled", exit_code=137))
    oom = "container trainer was killed for exceeding its memory limit (OOMKilled, exit code 137)"
    restarting = "oom fault OOMKilled: restart 1 of 10 on ascend-910b 10s after the attempt's pods stop"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "oom", "reason": "OOMKilled", "message": oom, "checkpointStep": 0}
    assert summary(decision) == nothing(
        full(phase="Restarting", message=restarting, restarts=1, faults=[fault], restartDelaySeconds=10,
             excludedNodes=[], exclusions=[],  # the job's own memory, not the node
             conditions=[condition("Ready", False, "Restarting", restarting)]),
        delete=["llama-a1-0"],
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: oom/OOMKilled: {oom}"),
                ("Normal", "Restarting", restarting)],
        requeue_after=2.0, restarted=("ascend-910b", "oom"))


def test_max_restarts_exhausted_fails_the_job() -> None:
    decision = decide(running({"restarts": 3}, faultPolicy={"maxRestarts": 3}), attempt_pods(message=HCCL))
    failed = "interconnect fault HcclSocketTimeout after 3 restart(s): maxRestarts (3) reached"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "interconnect", "reason": "HcclSocketTimeout", "message": json.loads(HCCL)["message"],
             "step": 130, "checkpointStep": 100}
    assert summary(decision) == nothing(
        full(phase="Failed", message=failed, restarts=3, faults=[fault], lastCheckpoint={"step": 100, "time": NOW_Z},
             poolFaults=1, completionTime=NOW_Z, conditions=[condition("Ready", False, "Failed", failed),
                                                             condition("Failed", True, "Failed", failed)]),
        delete=["llama-a1-0"],
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: interconnect/"
                 f"HcclSocketTimeout: {fault['message']}"), ("Warning", "Failed", failed)])


def test_a_rank_on_a_node_that_went_not_ready_is_a_node_fault() -> None:
    nodes = [*NODES[:1], make_node("ascend-1", "ascend-910b", ready=False), *NODES[2:]]
    pods = [make_pod("llama", 1, 0, "Running", "ascend-0"), make_pod("llama", 1, 1, "Running", "ascend-1")]
    decision = decide(running(), pods, nodes=nodes)
    not_ready = "node ascend-1 Ready=False:"  # the builder's Ready condition carries no reason or message
    restarting = "node fault NodeNotReady: restart 1 of 10 on ascend-910b 10s after the attempt's pods stop"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "node", "reason": "NodeNotReady", "message": not_ready, "checkpointStep": 0}
    assert summary(decision) == nothing(
        full(phase="Restarting", message=restarting, restarts=1, faults=[fault], restartDelaySeconds=10,
             excludedNodes=["ascend-1"], exclusions=[{"node": "ascend-1", "since": NOW_Z,
                                                      "reason": "node/NodeNotReady"}],
             conditions=[condition("Ready", False, "Restarting", restarting)]),
        delete=["llama-a1-0", "llama-a1-1"],
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: node/NodeNotReady: "
                 f"{not_ready}"), ("Normal", "Restarting", restarting)],
        requeue_after=2.0, restarted=("ascend-910b", "node"))


def test_pods_stuck_terminating_on_a_dead_node_are_force_deleted_after_the_grace() -> None:
    nodes = [*NODES[:1], make_node("ascend-1", "ascend-910b", ready=False), *NODES[2:]]
    stuck = make_pod("llama", 1, 1, "Running", "ascend-1")
    stuck["metadata"]["deletionTimestamp"] = NOW.isoformat()
    job = running({"phase": "Restarting", "restarts": 1, "nextAttemptTime": NOW.isoformat()})
    restarting = full(phase="Restarting", restarts=1, nextAttemptTime=NOW_Z)
    assert summary(decide(job, [stuck], nodes=nodes, now_offset=10)) == nothing(restarting, requeue_after=2.0)
    assert summary(decide(job, [stuck], nodes=nodes, now_offset=31)) == nothing(
        restarting, force_delete=["llama-a1-1"], requeue_after=2.0)
    assert summary(decide(job, [stuck], nodes=NODES, now_offset=31)) == nothing(
        restarting, force_delete=[], requeue_after=2.0)  # a live kubelet will finish it


def test_pods_unschedulable_past_the_timeout_fail_over_without_a_restart() -> None:
    pending = [make_pod("llama", 1, r) for r in range(2)]
    for pod in pending:
        pod["metadata"]["creationTimestamp"] = NOW.isoformat()
    job = running({"phase": "Pending"}, faultPolicy={"pendingTimeoutSeconds": 60})
    scheduling = "waiting for 2 pod(s) to be scheduled"
    assert summary(decide(job, pending, now_offset=30)) == nothing(
        full(phase="Pending", message=scheduling, conditions=[
            condition("Ready", False, "Scheduling", scheduling, zulu(NOW + timedelta(seconds=30)))]),
        events=[("Normal", "Scheduling", scheduling)], requeue_after=30.0)
    decision = decide(job, pending, now_offset=61)
    moving = "pods unschedulable on ascend-910b for 61s (pendingTimeoutSeconds 60): moving to h20"
    assert summary(decision) == nothing(
        full(phase="Restarting", message=moving, pool="h20", failovers=1, restarts=0, faults=[],
             restartDelaySeconds=0, conditions=[
                 condition("Ready", False, "FailedOver", moving, zulu(NOW + timedelta(seconds=61)))]),
        delete=["llama-a1-0", "llama-a1-1"], events=[("Warning", "FailedOver", moving)], requeue_after=2.0,
        failed_over=("ascend-910b", "h20"))


def test_a_job_starts_on_the_next_pool_when_the_first_has_no_room() -> None:
    nodes = [make_node("ascend-0", "ascend-910b"), *NODES[3:]]
    decision = decide(make_job(), [], nodes=nodes)
    message = ("attempt 1 on pool h20: 2 pod(s) of 4 device(s) (ascend-910b without room)"
               "; image example.org/tandem-runtime:gpu, command tandem-train")
    assert summary(decision) == nothing(
        full(phase="Pending", message=message, pool="h20", attempt=1, startTime=NOW_Z, conditions=[
            condition("Admitted", True, "Admitted", "pool h20 has room for 2 pod(s) on 2 usable node(s)"),
            condition("Ready", False, "AttemptStarted", message)]),
        create=["Pod/llama-a1-0", "Pod/llama-a1-1"], events=[("Normal", "AttemptStarted", message)],
        starts_attempt=True)


def test_recovery_time_is_measured_when_the_next_attempt_runs() -> None:
    fault = {"time": NOW.isoformat(), "attempt": 1, "pool": "ascend-910b", "class": "interconnect", "reason": "X"}
    job = running({"phase": "Starting", "attempt": 2, "restarts": 1, "faults": [fault]})
    pods = [make_pod("llama", 2, r, "Running", f"ascend-{r}") for r in range(2)]
    decision = decide(job, pods, now_offset=42)
    message = "all 2 rank(s) running"
    assert summary(decision) == nothing(
        full(phase="Running", message=message, attempt=2, restarts=1, faults=[{**fault, "time": NOW_Z, "message": ""}],
             conditions=[condition("Ready", True, "Running", message, zulu(NOW + timedelta(seconds=42)))]),
        events=[("Normal", "Running", message)], requeue_after=30.0, recovered_after=42.0)


def test_a_recorded_fault_is_never_counted_twice() -> None:
    """The operator died after writing the Restarting status: the next one only continues the restart."""
    first = decide(running(), attempt_pods(message=HCCL))
    replay = running(first.status.to_dict())
    again = decide(replay, attempt_pods(message=HCCL), now_offset=1)
    restarting = ("interconnect fault HcclSocketTimeout: restart 1 of 10 on ascend-910b 10s after the attempt's "
                  "pods stop")
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "interconnect", "reason": "HcclSocketTimeout", "message": json.loads(HCCL)["message"],
             "step": 130, "checkpointStep": 100}
    # The same status as the first decision wrote: one fault, one restart; the teardown is asked again, silently.
    assert summary(again) == nothing(
        full(phase="Restarting", message=restarting, restarts=1, faults=[fault],
             lastCheckpoint={"step": 100, "time": NOW_Z}, poolFaults=1, restartDelaySeconds=10,
             conditions=[condition("Ready", False, "Restarting", restarting)]),
        delete=["llama-a1-0"], requeue_after=2.0)


def test_device_fault_report_on_a_running_ranks_node_ends_the_attempt() -> None:
    report_ = DeviceFault(node="ascend-1", fault_class=FaultClass.DEVICE, reason="AscendDeviceFault",
                          message="card 3: fault code 80E01801, level RestartNPU", source="device-report")
    pods = [make_pod("llama", 1, 0, "Running", "ascend-0"), make_pod("llama", 1, 1, "Running", "ascend-1")]
    decision = decide(running(), pods, device_faults={"ascend-1": [report_]})
    found = "device-report: card 3: fault code 80E01801, level RestartNPU"
    restarting = "device fault AscendDeviceFault: restart 1 of 10 on ascend-910b 10s after the attempt's pods stop"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "device", "reason": "AscendDeviceFault", "message": found, "checkpointStep": 0}
    assert summary(decision) == nothing(
        full(phase="Restarting", message=restarting, restarts=1, faults=[fault], poolFaults=1, restartDelaySeconds=10,
             excludedNodes=["ascend-1"], exclusions=[{"node": "ascend-1", "since": NOW_Z,
                                                      "reason": "device/AscendDeviceFault"}],
             conditions=[condition("Ready", False, "Restarting", restarting)]),
        delete=["llama-a1-0", "llama-a1-1"],
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: device/AscendDeviceFault: "
                 f"{found}"), ("Normal", "Restarting", restarting)],
        requeue_after=2.0, restarted=("ascend-910b", "device"))


PEER_LOST = report("interconnect", "PeerConnectionLost", "Connection reset by peer", rank=0)


def test_a_symptom_waits_for_the_other_ranks_to_tell_the_root_cause() -> None:
    """Rank 0 noticed its peer vanish 50 ms before rank 1's pod reported the HCCL fault that caused it."""
    symptom = make_pod("llama", 1, 0, "Failed", "ascend-0", exit_code=3, message=PEER_LOST,
                       finished_at=NOW.isoformat())
    still_running = make_pod("llama", 1, 1, "Running", "ascend-1")
    waiting = decide(running(), [symptom, still_running], now_offset=0.5)
    # No fault yet and nothing torn down; the checkpoint rank 0 reported is noted.
    assert summary(waiting) == nothing(
        full(faults=[], lastCheckpoint={"step": 100, "time": "2026-11-23T12:00:00.500000Z"}), delete=[],
        requeue_after=pytest.approx(9.5))
    culprit = make_pod("llama", 1, 1, "Failed", "ascend-1", exit_code=3, message=HCCL, finished_at=NOW.isoformat())
    decided = decide(running(), [symptom, culprit], now_offset=1)
    at = zulu(NOW + timedelta(seconds=1))
    restarting = ("interconnect fault HcclSocketTimeout: restart 1 of 10 on ascend-910b 10s after the attempt's "
                  "pods stop")
    hccl = {"time": at, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
            "class": "interconnect", "reason": "HcclSocketTimeout", "message": json.loads(HCCL)["message"],
            "step": 130, "checkpointStep": 100}
    assert summary(decided) == nothing(
        full(phase="Restarting", message=restarting, restarts=1, faults=[hccl], poolFaults=1, restartDelaySeconds=10,
             lastCheckpoint={"step": 100, "time": at},
             conditions=[condition("Ready", False, "Restarting", restarting, at)]),
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: interconnect/"
                 f"HcclSocketTimeout: {hccl['message']}"), ("Normal", "Restarting", restarting)],
        requeue_after=2.0, restarted=("ascend-910b", "interconnect"))  # both ranks stopped: nothing to delete
    late = decide(running(), [symptom, still_running], now_offset=11)
    at = zulu(NOW + timedelta(seconds=11))
    restarting = ("interconnect fault PeerConnectionLost: restart 1 of 10 on ascend-910b 10s after the attempt's "
                  "pods stop")
    lost = {"time": at, "attempt": 1, "pool": "ascend-910b", "node": "ascend-0", "pod": "llama-a1-0",
            "class": "interconnect", "reason": "PeerConnectionLost", "message": "Connection reset by peer",
            "step": 130, "checkpointStep": 100}
    assert summary(late) == nothing(
        full(phase="Restarting", message=restarting, restarts=1, faults=[lost], poolFaults=1, restartDelaySeconds=10,
             lastCheckpoint={"step": 100, "time": at},
             conditions=[condition("Ready", False, "Restarting", restarting, at)]),
        delete=["llama-a1-1"],
        events=[("Warning", "FaultDetected", "attempt 1, llama-a1-0 on node ascend-0: interconnect/"
                 "PeerConnectionLost: Connection reset by peer"), ("Normal", "Restarting", restarting)],
        requeue_after=2.0, restarted=("ascend-910b", "interconnect"))


PEER_DIED = report("interconnect", "NcclRemoteError", "ncclRemoteError: remote process exited", checkpoint=100)


@pytest.mark.parametrize("seen", ["failed", "gone"])
def test_a_device_fault_the_runtime_reports_excludes_its_node(seen: str) -> None:
    """`gone`: the faulty rank's pod was removed before a reconcile read it (its last state is known from the pod
    watch), and its peer failed meanwhile because it died: the departed rank's root cause still wins over the
    peer's symptom, as it would with both pods there."""
    chip = report("device", "NpuError", "EZ9999: aicore error on device 3", checkpoint=100)
    pods = attempt_pods(message=chip, exit_code=4)
    if seen == "failed":
        decision = decide(running(), pods)
    else:
        peer = make_pod("llama", 1, 0, "Failed", "ascend-0", exit_code=3, message=PEER_DIED)
        decision = decide(running(), [peer], departed=[pods[1]])
    restarting = "device fault NpuError: restart 1 of 10 on ascend-910b 10s after the attempt's pods stop"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "device", "reason": "NpuError", "message": "EZ9999: aicore error on device 3", "step": 130,
             "checkpointStep": 100}
    assert summary(decision) == nothing(
        full(phase="Restarting", message=restarting, restarts=1, faults=[fault], poolFaults=1, restartDelaySeconds=10,
             lastCheckpoint={"step": 100, "time": NOW_Z}, excludedNodes=["ascend-1"],
             exclusions=[{"node": "ascend-1", "since": NOW_Z, "reason": "device/NpuError"}],
             conditions=[condition("Ready", False, "Restarting", restarting)]),
        delete=["llama-a1-0"] if seen == "failed" else [],
        events=[("Warning", "FaultDetected", "attempt 1, llama-a1-1 on node ascend-1: device/NpuError: EZ9999: "
                 "aicore error on device 3"), ("Normal", "Restarting", restarting)],
        requeue_after=2.0, restarted=("ascend-910b", "device"))


def _evicted(attempt: int = 1) -> dict[str, Any]:
    """Rank 1 evicted by a drain: its script saved and exited 0 on SIGTERM, so its pod ended Succeeded."""
    pod = make_pod("llama", attempt, 1, "Succeeded", "ascend-1", exit_code=0)
    pod["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True",
                                    "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting"}]
    return pod


@pytest.mark.parametrize(("rank_0", "departed", "delete"), [
    # Seen Succeeded with its DisruptionTarget condition (Megatron-LM's --exit-signal-handler exits 0): stopped,
    # not finished, although every rank's pod is Succeeded.
    (make_pod("llama", 1, 0, "Succeeded", "ascend-0", exit_code=0), False, []),
    # Gone before a reconcile read its end (the kubelet removes an evicted pod right after writing it): the pod
    # watch's DELETED event carries that last state, which says the same rather than "disappeared" (PodLost).
    (make_pod("llama", 1, 0, "Running", "ascend-0"), True, ["llama-a1-0"]),
], ids=["seen-succeeded", "gone"])
def test_a_rank_evicted_while_it_ran_was_stopped_not_finished(rank_0: dict[str, Any], departed: bool,
                                                              delete: list[str]) -> None:
    decision = decide(running(), [rank_0] if departed else [rank_0, _evicted()],
                      departed=[_evicted()] if departed else [])
    restarting = "node fault EvictionByEvictionAPI: restart 1 of 10 on ascend-910b 10s after the attempt's pods stop"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "node", "reason": "EvictionByEvictionAPI", "message": "Eviction API: evicting",
             "checkpointStep": 0}
    assert summary(decision) == nothing(
        full(phase="Restarting", message=restarting, restarts=1, faults=[fault], restartDelaySeconds=10,
             excludedNodes=["ascend-1"], exclusions=[{"node": "ascend-1", "since": NOW_Z,
                                                      "reason": "node/EvictionByEvictionAPI"}],
             conditions=[condition("Ready", False, "Restarting", restarting)]),
        delete=delete,
        events=[("Warning", "FaultDetected", "attempt 1, llama-a1-1 on node ascend-1: node/EvictionByEvictionAPI: "
                 "Eviction API: evicting"), ("Normal", "Restarting", restarting)],
        requeue_after=2.0, restarted=("ascend-910b", "node"))
