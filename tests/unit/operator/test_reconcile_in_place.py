"""In-place restarts through the whole core (issue 18): which faults restart inside the pods that stay, which pods
move, the escalation to a full restart (deadline, a fault in the window, a rank that dies during the restart), and
an operator that stopped half-way. Each case compares the whole decision: the full next status and every action."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders import NOW, make_job, make_node, make_pod, make_pool
from decisions import condition, nothing, summary, zulu

from tandem.in_place import SupervisorReport
from tandem.operator.api import FaultClass
from tandem.operator.device_reports import DeviceFault
from tandem.operator.reconcile import Observation, reconcile

POOLS = {"ascend-910b": make_pool()}
NODES = [make_node(f"ascend-{i}", "ascend-910b") for i in range(3)]
START = "2026-11-23T11:00:00Z"
NOW_Z = zulu(NOW)
EARLIER = NOW - timedelta(seconds=20)
EARLIER_Z = zulu(EARLIER)
HCCL = ("EI0006: Getting socket times out. Reason: Remote Rank did not send the data in time. Please check the "
        "reason for the rank being stuck")


def supervised(attempt: int, rank: int, *, name_attempt: int | None = None, ready: bool | None = None,
               ready_since: str = START, phase: str = "Running", node: str | None = None) -> dict[str, Any]:
    """A pod whose Tandem launcher takes part in in-place restarts, as the operator creates it (a Failed one
    exited with code 1 a while ago)."""
    failed = {"exit_code": 1, "message": "x", "finished_at": START} if phase == "Failed" else {}
    pod = make_pod("llama", attempt, rank, phase, node or f"ascend-{rank}", **failed)
    pod["metadata"]["name"] = f"llama-a{name_attempt or attempt}-{rank}"
    pod["metadata"]["annotations"] = {"tandem.dev/in-place-restart": "true"}
    if ready is not None:
        pod["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False",
                                        "lastTransitionTime": ready_since}]
    return pod


def faulted(attempt: int, cls: str, reason: str, message: str) -> SupervisorReport:
    return SupervisorReport(attempt, "faulted", {"class": cls, "reason": reason, "message": message, "rank": 1,
                                                 "step": 130, "checkpointStep": 100, "resumedFrom": None})


def status(**fields: Any) -> dict[str, Any]:
    base = {"observedGeneration": 1, "phase": "Running", "message": "", "pool": "ascend-910b", "attempt": 1,
            "restarts": 0, "failovers": 0, "lastCheckpoint": {"step": 0}, "faults": [], "excludedNodes": [],
            "exclusions": [], "poolFaults": 0, "pendingEvents": [], "conditions": [], "startTime": START}
    return {key: value for key, value in {**base, **fields}.items() if value is not None}


def job_at(attempt: int = 1, phase: str = "Running", **fields: Any) -> Any:
    policy = fields.pop("faultPolicy", {})
    return make_job(status={"phase": phase, "attempt": attempt, "pool": "ascend-910b", "startTime": START, **fields},
                    nodes=2, faultPolicy=policy)


def decide(job: Any, pods: list[dict[str, Any]], supervisors: dict[str, SupervisorReport] | None = None,
           device_faults: dict[str, list[DeviceFault]] | None = None) -> dict[str, Any]:
    return summary(reconcile(Observation(job=job, pools=POOLS, nodes=NODES, pods=pods, service_exists=True, now=NOW,
                                         device_faults=device_faults or {}, supervisors=supervisors or {})))


def fault(cls: str, reason: str, message: str, node: str = "ascend-1", pod: str = "llama-a1-1",
          attempt: int = 1, step: int | None = 130, checkpoint: int = 100) -> dict[str, Any]:
    found = {"time": NOW_Z, "attempt": attempt, "pool": "ascend-910b", "node": node, "pod": pod, "class": cls,
             "reason": reason, "message": message, "step": step, "checkpointStep": checkpoint}
    return {key: value for key, value in found.items() if value is not None}


def in_place_message(why: str, attempt: int, stay: int, moved: str = "", resume: int | None = 100) -> str:
    start = f" from checkpoint step {resume}" if resume else ""
    return (f"{why}: attempt {attempt} restarts in place{start}: {stay} pod(s) stay"
            + (f"; rank(s) {moved} get new pods" if moved else ""))


def test_a_transient_interconnect_fault_restarts_every_rank_in_place() -> None:
    """Rank 1's supervisor reports HCCL's socket timeout (a symptom: nothing against its node) and waits: both
    pods stay, their label moves to attempt 2, nothing is deleted or created."""
    pods = [supervised(1, 0, ready=True), supervised(1, 1, ready=False)]
    message = in_place_message("interconnect fault HcclSocketTimeout: restart 1 of 10", 2, 2)
    found = fault("interconnect", "HcclSocketTimeout", HCCL)
    assert decide(job_at(), pods, {"llama-a1-1": faulted(1, "interconnect", "HcclSocketTimeout", HCCL)}) == nothing(
        status(phase="Restarting", message=message, attempt=2, restarts=1, poolFaults=1,
               lastCheckpoint={"step": 100, "time": NOW_Z}, faults=[found],
               inPlaceRestart={"attempt": 2, "requestedAt": NOW_Z, "pods": ["llama-a1-0", "llama-a1-1"]},
               conditions=[condition("Ready", False, "InPlace", message)]),
        relabel=["llama-a1-0", "llama-a1-1"], requeue_after=1.0, restarted=("ascend-910b", "interconnect"),
        in_place="restarted",
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: interconnect/"
                 f"HcclSocketTimeout: {HCCL}"), ("Normal", "InPlace", message)])


def test_a_device_fault_report_replaces_only_that_nodes_pod() -> None:
    """The Ascend device plugin reports a chip fault on rank 1's node: that pod moves (deleted, its node excluded),
    rank 0 stays and restarts in place; rank 1's new pod comes once the old one is gone."""
    pods = [supervised(1, 0, ready=True), supervised(1, 1, ready=True)]
    report = DeviceFault(node="ascend-1", fault_class=FaultClass.DEVICE, reason="AscendDeviceFault",
                         message="Ascend910-3: fault code 80E01801 (L5)", source="ascend-device-plugin")
    decision = decide(job_at(), pods, device_faults={"ascend-1": [report]})
    message = in_place_message("device fault AscendDeviceFault: restart 1 of 10", 2, 1, "1", resume=None)
    assert decision["status"]["excludedNodes"] == ["ascend-1"]
    assert decision == nothing(
        status(phase="Restarting", message=message, attempt=2, restarts=1, poolFaults=1,
               faults=[decision["status"]["faults"][0]], excludedNodes=["ascend-1"],
               exclusions=decision["status"]["exclusions"],
               inPlaceRestart={"attempt": 2, "requestedAt": NOW_Z, "pods": ["llama-a1-0"]},
               conditions=[condition("Ready", False, "InPlace", message)]),
        relabel=["llama-a1-0"], delete=["llama-a1-1"], requeue_after=1.0, restarted=("ascend-910b", "device"),
        in_place="restarted", events=decision["events"])
    assert [e[1] for e in decision["events"]] == ["FaultDetected", "InPlace"]
    assert decision["status"]["faults"][0]["class"] == "device"


def test_the_replaced_rank_gets_its_new_pod_once_the_old_one_is_gone() -> None:
    """Attempt 2 runs in place in rank 0's attempt-1 pod; rank 1's old pod has gone: its new pod names rank 0's
    pod as MASTER_ADDR, and the restart waits for both."""
    record = {"attempt": 2, "requestedAt": EARLIER_Z, "pods": ["llama-a1-0"]}
    job = job_at(2, "Restarting", restarts=1, inPlaceRestart=record, message="m")
    decision = reconcile(Observation(job=job, pools=POOLS, nodes=NODES, pods=[supervised(2, 0, name_attempt=1)],
                                     service_exists=True, now=NOW, supervisors={}))
    env = {e["name"]: e["value"] for e in decision.create[0]["spec"]["containers"][0]["env"]}
    assert (decision.create[0]["metadata"]["name"], env["MASTER_ADDR"], env["TANDEM_ATTEMPT"]) == (
        "llama-a2-1", "llama-a1-0.llama.ml.svc", "2")
    assert summary(decision) == nothing(status(phase="Restarting", message="m", attempt=2, restarts=1,
                                               inPlaceRestart=record),
                                        create=["Pod/llama-a2-1"], requeue_after=1.0)


def test_every_rank_past_its_first_step_ends_the_restart() -> None:
    """Rank 0 stayed and says its new workers stepped; rank 1 stayed and turned Ready after the request (its line
    scrolled out of the tail): Running, the restart completed, the recovery time counted from the fault."""
    record = {"attempt": 2, "requestedAt": EARLIER_Z, "pods": ["llama-a1-0", "llama-a1-1"]}
    old = fault("interconnect", "HcclSocketTimeout", HCCL) | {"time": zulu(EARLIER - timedelta(seconds=2))}
    job = job_at(2, "Restarting", restarts=1, inPlaceRestart=record, faults=[old], message="m")
    pods = [supervised(2, 0, name_attempt=1, ready=False),
            supervised(2, 1, name_attempt=1, ready=True, ready_since=zulu(EARLIER + timedelta(seconds=5)))]
    message = "all 2 rank(s) running: attempt 2 restarted in place in 20s"
    assert decide(job, pods, {"llama-a1-0": SupervisorReport(2, "stepping", step=101)}) == nothing(
        status(phase="Running", message=message, attempt=2, restarts=1, faults=[old],
               inPlaceRestart={**record, "completedAt": NOW_Z},
               conditions=[condition("Ready", True, "Running", message)]),
        events=[("Normal", "Running", message)], requeue_after=30.0, recovered_after=22.0)


def test_a_ready_from_before_the_request_or_an_older_attempts_line_is_no_first_step() -> None:
    record = {"attempt": 2, "requestedAt": EARLIER_Z, "pods": ["llama-a1-0", "llama-a1-1"]}
    job = job_at(2, "Restarting", restarts=1, inPlaceRestart=record, message="m")
    pods = [supervised(2, 0, name_attempt=1, ready=True, ready_since=EARLIER_Z),
            supervised(2, 1, name_attempt=1, ready=False)]
    assert decide(job, pods, {"llama-a1-1": SupervisorReport(1, "stepping", step=99)}) == nothing(
        status(phase="Restarting", message="m", attempt=2, restarts=1, inPlaceRestart=record), requeue_after=1.0)


def test_a_restart_that_misses_its_deadline_becomes_a_full_restart() -> None:
    """A supervisor that never saw the label (or never got its workers to a first step): after
    inPlaceRestartDeadlineSeconds the gang is torn down and the next attempt is a full one."""
    record = {"attempt": 2, "requestedAt": zulu(NOW - timedelta(seconds=30)), "pods": ["llama-a1-0", "llama-a1-1"]}
    job = job_at(2, "Restarting", restarts=1, inPlaceRestart=record, message="m",
                 faultPolicy={"inPlaceRestartDeadlineSeconds": 30})
    pods = [supervised(2, 0, name_attempt=1, ready=True, ready_since=zulu(NOW)),
            supervised(2, 1, name_attempt=1, ready=False)]
    late = {"time": NOW_Z, "attempt": 2, "pool": "ascend-910b", "class": "unknown", "reason": "InPlaceRestartTimedOut",
            "message": "rank(s) 1 did not reach their first step within inPlaceRestartDeadlineSeconds (30s) of the "
                       "in-place restart", "checkpointStep": 0}
    message = ("unknown fault InPlaceRestartTimedOut: restart 2 of 10 on ascend-910b 10s after the attempt's pods "
               "stop; a full restart: the in-place restart of attempt 2 did not hold")
    assert decide(job, pods, {"llama-a1-0": SupervisorReport(2, "stepping", step=101)}) == nothing(
        status(phase="Restarting", message=message, attempt=2, restarts=2, faults=[late], restartDelaySeconds=10,
               conditions=[condition("Ready", False, "Restarting", message)]),
        delete=["llama-a1-0", "llama-a1-1"], requeue_after=2.0, restarted=("ascend-910b", "unknown"),
        in_place="escalated",
        events=[("Warning", "FaultDetected", f"attempt 2, a pod: unknown/InPlaceRestartTimedOut: {late['message']}"),
                ("Normal", "Restarting", message)])


def test_a_rank_that_dies_during_the_restart_makes_it_a_full_one() -> None:
    record = {"attempt": 2, "requestedAt": EARLIER_Z, "pods": ["llama-a1-0", "llama-a1-1"]}
    job = job_at(2, "Restarting", restarts=1, inPlaceRestart=record, message="m")
    pods = [supervised(2, 0, name_attempt=1, ready=False), supervised(2, 1, name_attempt=1, phase="Failed")]
    decision = decide(job, pods)
    assert (decision["delete"], decision["relabel"], decision["in_place"], decision["status"]["phase"],
            decision["status"].get("inPlaceRestart")) == (["llama-a1-0"], [], "escalated", "Restarting", None)
    assert decision["status"]["message"].endswith("; a full restart: the in-place restart of attempt 2 did not hold")


def test_a_second_fault_within_the_window_restarts_in_full() -> None:
    record = {"attempt": 2, "requestedAt": zulu(NOW - timedelta(seconds=100)), "pods": ["llama-a1-0", "llama-a1-1"],
              "completedAt": zulu(NOW - timedelta(seconds=90))}
    job = job_at(2, restarts=1, inPlaceRestart=record, faultPolicy={"inPlaceRestartWindowSeconds": 120})
    pods = [supervised(2, 0, name_attempt=1, ready=True), supervised(2, 1, name_attempt=1, ready=False)]
    decision = decide(job, pods, {"llama-a1-1": faulted(2, "interconnect", "HcclSocketTimeout", HCCL)})
    assert (decision["delete"], decision["relabel"], decision["in_place"], decision["status"]["attempt"],
            decision["status"]["inPlaceRestart"]) == (["llama-a1-0", "llama-a1-1"], [], "escalated", 2, record)
    assert decision["status"]["message"].endswith(
        "; a full restart: a fault within inPlaceRestartWindowSeconds (120s) of the in-place restart of attempt 2")


def test_after_the_window_a_fault_restarts_in_place_again() -> None:
    record = {"attempt": 2, "requestedAt": zulu(NOW - timedelta(seconds=700)), "pods": ["llama-a1-0", "llama-a1-1"],
              "completedAt": zulu(NOW - timedelta(seconds=690))}
    job = job_at(2, restarts=1, inPlaceRestart=record)
    pods = [supervised(2, 0, name_attempt=1, ready=True), supervised(2, 1, name_attempt=1, ready=False)]
    decision = decide(job, pods, {"llama-a1-1": faulted(2, "unknown", "NoProgress", "no progress for 600s")})
    assert (decision["relabel"], decision["delete"], decision["status"]["attempt"],
            decision["status"]["inPlaceRestart"]) == (["llama-a1-0", "llama-a1-1"], [], 3,
                                                      {"attempt": 3, "requestedAt": NOW_Z,
                                                       "pods": ["llama-a1-0", "llama-a1-1"]})


def test_an_operator_that_stopped_before_moving_the_labels_moves_them_now() -> None:
    """The status (the write-ahead log) says attempt 2 runs in place; the labels still say 1: the pods are the
    attempt's, relabelled, never deleted as an older attempt's."""
    record = {"attempt": 2, "requestedAt": EARLIER_Z, "pods": ["llama-a1-0", "llama-a1-1"]}
    job = job_at(2, "Restarting", restarts=1, inPlaceRestart=record, message="m")
    pods = [supervised(1, 0, ready=False), supervised(1, 1, ready=False)]
    assert decide(job, pods, {"llama-a1-1": faulted(1, "interconnect", "HcclSocketTimeout", HCCL)}) == nothing(
        status(phase="Restarting", message="m", attempt=2, restarts=1, inPlaceRestart=record),
        relabel=["llama-a1-0", "llama-a1-1"], requeue_after=1.0)


FULL_RESTARTS = [
    # (why, job's faultPolicy, the faulted report's class and reason, the pods)
    ("the policy is off", {"inPlaceRestart": False}, ("interconnect", "HcclSocketTimeout"), None),
    ("host OOM restarts in full", {}, ("oom", "HostOOM"), None),
    ("storage restarts in full", {}, ("storage", "DiskFull"), None),
    ("no supervisor takes part", {}, ("interconnect", "HcclSocketTimeout"), "plain"),
    ("rank 0 must move", {}, ("interconnect", "HcclSocketTimeout"), "rank0-failed"),
]


def _pods(kind: str | None) -> list[dict[str, Any]]:
    if kind == "plain":
        return [make_pod("llama", 1, 0, "Running", "ascend-0"), make_pod("llama", 1, 1, "Failed", "ascend-1",
                                                                         exit_code=1, message="x", finished_at=START)]
    if kind == "rank0-failed":
        return [supervised(1, 0, phase="Failed"), supervised(1, 1, ready=False)]
    return [supervised(1, 0, ready=True), supervised(1, 1, ready=False)]


def test_what_restarts_in_full() -> None:
    for why, policy, (cls, reason), kind in FULL_RESTARTS:
        job = job_at(faultPolicy=policy)
        decision = decide(job, _pods(kind), {"llama-a1-1": faulted(1, cls, reason, "m")})
        outcome = (decision["relabel"], decision["in_place"], decision["status"]["attempt"],
                   decision["status"]["phase"], decision["status"].get("inPlaceRestart"))
        assert outcome == ([], None, 1, "Restarting", None), why
        assert sorted(decision["delete"]) == sorted(p["metadata"]["name"] for p in _pods(kind)
                                                    if p["status"]["phase"] == "Running"), why


def test_a_faulted_report_of_an_older_attempt_is_not_a_fault_of_this_one() -> None:
    pods = [supervised(2, 0, name_attempt=1, ready=True), supervised(2, 1, name_attempt=1, ready=False)]
    job = job_at(2, restarts=1, inPlaceRestart={"attempt": 2, "requestedAt": EARLIER_Z, "pods": [],
                                                "completedAt": EARLIER_Z})
    decision = decide(job, pods, {"llama-a1-1": faulted(1, "interconnect", "HcclSocketTimeout", HCCL)})
    assert (decision["status"]["faults"], decision["delete"], decision["requeue_after"]) == ([], [], 2.0)


def test_a_replaced_ranks_new_pod_waits_from_its_own_creation_not_from_the_pods_that_stayed() -> None:
    """Rank 0 stayed in its pod of two hours ago; rank 1's new pod was created a second ago and waits for the
    scheduler: that is one second of pending, far from pendingTimeoutSeconds, not two hours (no failover)."""
    record = {"attempt": 2, "requestedAt": EARLIER_Z, "pods": ["llama-a1-0"]}
    job = job_at(2, "Restarting", restarts=1, inPlaceRestart=record, message="m")
    stayed = supervised(2, 0, name_attempt=1, ready=False)
    stayed["metadata"]["creationTimestamp"] = zulu(NOW - timedelta(hours=2))
    new = supervised(2, 1, phase="Pending")
    new["spec"].pop("nodeName", None)
    new["metadata"]["creationTimestamp"] = zulu(NOW - timedelta(seconds=1))
    pools = {**POOLS, "h20": make_pool("h20", "gpu", devices=4)}  # a pool with room to move to
    nodes = [*NODES, make_node("h20-0", "h20"), make_node("h20-1", "h20")]
    decision = reconcile(Observation(job=job, pools=pools, nodes=nodes, pods=[stayed, new], service_exists=True,
                                     now=NOW))
    assert summary(decision) == nothing(
        status(phase="Restarting", message="m", attempt=2, restarts=1, inPlaceRestart=record), requeue_after=1.0)


def test_a_pool_deleted_during_an_in_place_restart_moves_the_next_attempt_to_the_next_pool() -> None:
    """The in-place restart did not finish (its pods went with the pool): it is over, and the next attempt is a
    full one on the next pool that exists, admitted as any attempt is."""
    record = {"attempt": 2, "requestedAt": EARLIER_Z, "pods": ["llama-a1-0"]}
    job = make_job(status={"phase": "Restarting", "attempt": 2, "pool": "ascend-910b", "startTime": START,
                           "restarts": 1, "inPlaceRestart": record, "message": "m"}, nodes=2)
    pools = {"h20": make_pool("h20", "gpu", devices=4)}  # ascend-910b was deleted
    nodes = [*NODES, make_node("h20-0", "h20"), make_node("h20-1", "h20")]
    gone = reconcile(Observation(job=job, pools=pools, nodes=nodes, pods=[], service_exists=True, now=NOW))
    pool_gone = ("AcceleratorPool 'ascend-910b' was deleted: the running attempt goes on; the next attempt goes to "
                 "the next pool that exists")
    message = "AcceleratorPool 'ascend-910b' was deleted before attempt 2 was running: next pool"
    assert summary(gone) == nothing(
        status(phase="Restarting", message=message, attempt=2, restarts=1, restartDelaySeconds=0,
               conditions=[condition("PoolAvailable", False, "PoolNotFound", pool_gone),
                           condition("Ready", False, "PoolNotFound", message)]),
        events=[("Normal", "PoolNotFound", message)], requeue_after=2.0)
    job.status = gone.status
    moved = reconcile(Observation(job=job, pools=pools, nodes=nodes, pods=[], service_exists=True, now=NOW))
    assert (moved.starts_attempt, moved.status.attempt, moved.status.pool, moved.failed_over,
            [m["metadata"]["name"] for m in moved.create]) == (
        True, 3, "h20", ("ascend-910b", "h20"), ["llama-a3-0", "llama-a3-1"])
