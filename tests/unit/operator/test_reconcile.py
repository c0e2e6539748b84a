"""The reconcile core, table by table: phases, actions, events, idempotence. No I/O."""

from __future__ import annotations

from typing import Any

import pytest
from builders import NOW, make_job, make_node, make_pod, make_pool
from decisions import condition, nothing, summary, zulu

from tandem.operator.api import AcceleratorPool, TrainingJob
from tandem.operator.reconcile import Decision, Observation, reconcile

NOW_Z = zulu(NOW)
START = "2026-11-23T11:00:00Z"
EMPTY_STATUS = {"observedGeneration": 1, "phase": "Pending", "message": "", "attempt": 0, "restarts": 0, "failovers": 0,
                "lastCheckpoint": {"step": 0}, "faults": [], "excludedNodes": [], "exclusions": [], "poolFaults": 0,
                "pendingEvents": [], "conditions": []}


def decide(job: TrainingJob, pools: dict[str, AcceleratorPool], nodes: list[dict[str, Any]],
           pods: list[dict[str, Any]] | None = None, service: bool = True,
           departed: list[dict[str, Any]] | None = None) -> Decision:
    return reconcile(Observation(job=job, pools=pools, nodes=nodes, pods=pods or [], service_exists=service, now=NOW,
                                 departed=departed or []))


def started(phase: str = "Pending", attempt: int = 1, **extra: Any) -> dict[str, Any]:
    return {"phase": phase, "attempt": attempt, "pool": "ascend-910b", "startTime": START, **extra}


def status(**fields: Any) -> dict[str, Any]:
    """The next status in full: what `started()` serializes to, with `fields` changed (None drops a field)."""
    base = {"observedGeneration": 1, "phase": "Pending", "message": "", "pool": "ascend-910b", "attempt": 1,
            "restarts": 0, "failovers": 0, "lastCheckpoint": {"step": 0}, "faults": [], "excludedNodes": [],
            "exclusions": [], "poolFaults": 0, "pendingEvents": [], "conditions": [], "startTime": START}
    return {key: value for key, value in {**base, **fields}.items() if value is not None}


def test_a_new_job_starts_attempt_one_on_its_first_pool(pools: Any, nodes: Any) -> None:
    decision = decide(make_job(), pools, nodes, service=False)
    message = ("attempt 1 on pool ascend-910b: 2 pod(s) of 8 device(s)"
               "; image example.org/tandem-runtime:npu, command tandem-train")
    assert summary(decision) == nothing(
        status(message=message, startTime=NOW_Z, conditions=[
            condition("Admitted", True, "Admitted", "pool ascend-910b has room for 2 pod(s) on 2 usable node(s)"),
            condition("Ready", False, "AttemptStarted", message)]),
        create=["Service/llama", "Pod/llama-a1-0", "Pod/llama-a1-1"],
        events=[("Normal", "AttemptStarted", message)], starts_attempt=True)


SCHEDULING = "waiting for 1 pod(s) to be scheduled"
STARTING = "all 2 pod(s) scheduled; waiting for them to run"
RUNNING = "all 2 rank(s) running"
PHASES = [
    # (rank 0, rank 1): (phase, node); the job's phase, its Ready condition (and Event) and how soon it looks again
    ([("Pending", None), ("Pending", "ascend-1")], "Pending", "Scheduling", False, SCHEDULING, None),
    ([("Pending", "ascend-0"), ("Pending", "ascend-1")], "Starting", "Starting", False, STARTING, None),
    ([("Running", "ascend-0"), ("Pending", "ascend-1")], "Starting", "Starting", False, STARTING, None),
    ([("Running", "ascend-0"), ("Running", "ascend-1")], "Running", "Running", True, RUNNING, 30.0),
    ([("Succeeded", "ascend-0"), ("Running", "ascend-1")], "Running", "Running", True, RUNNING, 30.0),
]


@pytest.mark.parametrize(("pods", "phase", "reason", "ready", "message", "requeue_after"), PHASES,
                         ids=[f"pods{i}-{row[1]}-{row[2]}" for i, row in enumerate(PHASES)])
def test_phase_follows_the_pods(pools: Any, nodes: Any, pods: list[tuple[str, str | None]], phase: str,
                                reason: str, ready: bool, message: str, requeue_after: float | None) -> None:
    observed = [make_pod("llama", 1, rank, phase=p, node=n) for rank, (p, n) in enumerate(pods)]
    decision = decide(make_job(status=started()), pools, nodes, observed)
    assert summary(decision) == nothing(
        status(phase=phase, message=message, conditions=[condition("Ready", ready, reason, message)]),
        events=[("Normal", reason, message)], requeue_after=requeue_after)


def test_every_rank_exiting_zero_is_success(pools: Any, nodes: Any) -> None:
    observed = [make_pod("llama", 1, r, phase="Succeeded", node=f"ascend-{r}", exit_code=0) for r in range(2)]
    decision = decide(make_job(status=started("Running")), pools, nodes, observed)
    message = "all 2 rank(s) finished"
    assert summary(decision) == nothing(
        status(phase="Succeeded", message=message, completionTime=NOW_Z, conditions=[
            condition("Ready", False, "Succeeded", message), condition("Succeeded", True, "Succeeded", message)]),
        delete=[],  # finished pods are kept for their logs
        events=[("Normal", "Succeeded", message)])


def test_a_rank_failing_with_a_user_error_fails_the_job_and_tears_the_gang_down(pools: Any, nodes: Any) -> None:
    observed = [
        make_pod("llama", 1, 0, phase="Running", node="ascend-0"),
        make_pod("llama", 1, 1, phase="Failed", node="ascend-1", exit_code=1, finished_at="2026-11-23T11:59:00Z",
                 message='Traceback (most recent call last):\n  File "train.py", line 3, in <module>\n'
                         "ValueError: unknown optimizer 'adamw8'\n"),
    ]
    decision = decide(make_job(status=started("Running")), pools, nodes, observed)
    error = "ValueError: unknown optimizer 'adamw8' (File \"train.py\", line 3, in <module>)"
    message = f"user fault PythonException: retrying cannot help: {error}"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "user", "reason": "PythonException", "message": error, "checkpointStep": 0}
    assert summary(decision) == nothing(
        status(phase="Failed", message=message, faults=[fault], completionTime=NOW_Z, conditions=[
            condition("Ready", False, "Failed", message), condition("Failed", True, "Failed", message)]),
        delete=["llama-a1-0"],  # the gang torn down
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: user/PythonException: {error}"),
                ("Warning", "Failed", message)])


def test_the_first_rank_to_fail_is_the_one_reported(pools: Any, nodes: Any) -> None:
    observed = [
        make_pod("llama", 1, 0, phase="Failed", exit_code=134, message="stopped", finished_at="2026-11-23T11:59:30Z"),
        make_pod("llama", 1, 1, phase="Failed", exit_code=1, message="root cause", finished_at="2026-11-23T11:59:00Z"),
    ]
    decision = decide(make_job(status=started("Running")), pools, nodes, observed)
    message = "unknown fault ExitCode: restart 1 of 10 on ascend-910b 10s after the attempt's pods stop"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "pod": "llama-a1-1", "class": "unknown",
             "reason": "ExitCode", "message": "container trainer exited with code 1", "checkpointStep": 0}
    assert summary(decision) == nothing(
        status(phase="Restarting", message=message, restarts=1, faults=[fault], restartDelaySeconds=10,
               conditions=[condition("Ready", False, "Restarting", message)]),
        events=[("Warning", "FaultDetected", "attempt 1, llama-a1-1: unknown/ExitCode: container trainer exited "
                 "with code 1"), ("Normal", "Restarting", message)],
        requeue_after=2.0, restarted=("ascend-910b", "unknown"))


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_job_is_left_alone(pools: Any, nodes: Any, phase: str) -> None:
    job = make_job(status=started(phase))
    decision = decide(job, pools, nodes, [make_pod("llama", 1, r, phase=phase, node=f"ascend-{r}",
                                                   exit_code=0 if phase == "Succeeded" else 1) for r in range(2)])
    assert not decision.changes(job.status)
    # A finished job is history: its status stays as it was, not even observedGeneration is recorded.
    assert summary(decision) == nothing(status(phase=phase, observedGeneration=0))


@pytest.mark.parametrize("phase", ["Succeeded", "Failed"])
def test_a_finished_job_still_deletes_the_pods_left_running(pools: Any, nodes: Any, phase: str) -> None:
    # The delete that went with the verdict failed (a 409 on its preconditions, a 5xx): the job is history, but a
    # rank left running would hold its accelerators until someone deleted the job (Kubeflow's cleanPodPolicy
    # Running). Pods already finished or going stay as they are.
    job = make_job(status=started(phase))
    pods = [make_pod("llama", 1, 0, phase="Running", node="ascend-0"),
            make_pod("llama", 1, 1, phase="Failed", node="ascend-1", exit_code=1),
            make_pod("llama", 1, 2, phase="Pending", node=None),
            {**make_pod("llama", 1, 3, phase="Running", node="ascend-1"),
             "metadata": {**make_pod("llama", 1, 3)["metadata"], "deletionTimestamp": NOW_Z}}]
    decision = decide(job, pools, nodes, pods)
    assert summary(decision) == nothing(status(phase=phase, observedGeneration=0),
                                        delete=["llama-a1-0", "llama-a1-2"])


def test_missing_ranks_are_created_when_the_operator_died_mid_creation(pools: Any, nodes: Any) -> None:
    observed = [make_pod("llama", 1, 0, phase="Pending", node="ascend-0")]
    decision = decide(make_job(status=started()), pools, nodes, observed, service=False)
    assert summary(decision) == nothing(status(), create=["Service/llama", "Pod/llama-a1-1"],
                                        events=[])  # the attempt was announced already


def _evicted_before(attempt: int) -> dict[str, Any]:
    pod = make_pod("llama", attempt, 1, phase="Succeeded", node="ascend-1", exit_code=0)
    pod["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI"}]
    return pod


@pytest.mark.parametrize("departed", [
    [],  # nothing was seen of its end
    [make_pod("llama", 1, 1, phase="Running", node="ascend-1")],  # deleted by hand while it ran: no cause
    [_evicted_before(attempt=0)],  # an older attempt's pod: not this attempt's rank
], ids=["unseen", "deleted-while-running", "older-attempt"])
def test_a_pod_vanishing_from_a_running_attempt_is_a_node_fault(pools: Any, nodes: Any,
                                                                departed: list[dict[str, Any]]) -> None:
    decision = decide(make_job(status=started("Running")), pools, nodes,
                      [make_pod("llama", 1, 0, phase="Running", node="ascend-0")], departed=departed)
    lost = "pod(s) of rank [1] disappeared while the attempt ran"
    message = "node fault PodLost: restart 1 of 10 on ascend-910b 10s after the attempt's pods stop"
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "class": "node", "reason": "PodLost",
             "message": lost, "checkpointStep": 0}
    assert summary(decision) == nothing(
        status(phase="Restarting", message=message, restarts=1, faults=[fault], restartDelaySeconds=10,
               conditions=[condition("Ready", False, "Restarting", message)]),
        delete=["llama-a1-0"],
        events=[("Warning", "FaultDetected", f"attempt 1, a pod: node/PodLost: {lost}"),
                ("Normal", "Restarting", message)],
        requeue_after=2.0, restarted=("ascend-910b", "node"))


def test_pods_of_older_attempts_are_deleted(pools: Any, nodes: Any) -> None:
    observed = [make_pod("llama", 1, 0, phase="Running", node="ascend-0"),
                make_pod("llama", 2, 0, phase="Running", node="ascend-0"),
                make_pod("llama", 2, 1, phase="Running", node="ascend-1")]
    decision = decide(make_job(status=started("Running", attempt=2)), pools, nodes, observed)
    assert summary(decision) == nothing(
        status(phase="Running", attempt=2, message=RUNNING, conditions=[condition("Ready", True, "Running", RUNNING)]),
        delete=["llama-a1-0"], events=[("Normal", "Running", RUNNING)], requeue_after=30.0)


def test_a_pool_that_does_not_exist_is_waited_for_not_a_verdict(pools: Any, nodes: Any) -> None:
    job = make_job(pools=["tpu-v5"])
    message = "none of the pools tpu-v5 exists: waiting for one to be created"
    admitted = {"type": "Admitted", "status": "False", "reason": "PoolNotFound", "message": message,
                "lastTransitionTime": NOW_Z, "observedGeneration": 1}
    expected_status = {**EMPTY_STATUS, "message": message, "conditions": [admitted]}
    assert summary(decide(job, pools, nodes)) == nothing(
        expected_status, events=[("Warning", "PoolNotFound", message)], requeue_after=30.0)
    # Asked again, it says nothing new; once the pool exists, the job starts there.
    waiting = make_job(pools=["tpu-v5"], status=expected_status)
    assert summary(decide(waiting, pools, nodes)) == nothing(expected_status, requeue_after=30.0)
    with_pool = {**pools, "tpu-v5": make_pool("tpu-v5", "gpu")}
    tpu_nodes = [make_node("tpu-0", "tpu-v5"), make_node("tpu-1", "tpu-v5")]
    starting = ("attempt 1 on pool tpu-v5: 2 pod(s) of 8 device(s)"
                "; image example.org/tandem-runtime:gpu, command tandem-train")
    assert summary(decide(waiting, with_pool, [*nodes, *tpu_nodes])) == nothing(
        status(pool="tpu-v5", message=starting, startTime=NOW_Z, conditions=[
            condition("Admitted", True, "Admitted", "pool tpu-v5 has room for 2 pod(s) on 2 usable node(s)"),
            condition("Ready", False, "AttemptStarted", starting)]),
        create=["Pod/llama-a1-0", "Pod/llama-a1-1"], events=[("Normal", "AttemptStarted", starting)],
        starts_attempt=True)


def test_no_image_anywhere_fails_the_job(pools: Any, nodes: Any) -> None:
    no_image = {name: pool.model_copy(update={"spec": pool.spec.model_copy(update={"image": None})})
                for name, pool in pools.items()}
    decision = decide(make_job(pools=["ascend-910b"]), no_image, nodes)
    message = "neither the job's container.image nor pool 'ascend-910b' names an image"
    assert summary(decision) == nothing(
        {**EMPTY_STATUS, "phase": "Failed", "message": message, "completionTime": NOW_Z, "conditions": [
            condition("Ready", False, "NoImage", message), condition("Failed", True, "NoImage", message)]},
        events=[("Warning", "NoImage", message)])


def test_a_job_larger_than_its_pool_waits_without_pods_and_says_why(pools: Any, nodes: Any) -> None:
    decision = decide(make_job(nodes=3, pools=["ascend-910b"]), pools, nodes)
    message = ("needs room for 3 pod(s), one per node: pool ascend-910b has room for 2 pod(s) on 2 usable node(s)")
    admitted = {"type": "Admitted", "status": "False", "reason": "WaitingForRoom", "message": message,
                "lastTransitionTime": NOW_Z, "observedGeneration": 1}
    expected_status = {**EMPTY_STATUS, "message": message, "conditions": [admitted]}
    assert summary(decision) == nothing(expected_status, events=[("Warning", "WaitingForRoom", message)],
                                        requeue_after=30.0)
    # Asked again, it says nothing new.
    again = decide(make_job(nodes=3, pools=["ascend-910b"], status=decision.status.to_dict()), pools, nodes)
    assert summary(again) == nothing(expected_status, requeue_after=30.0)


def test_not_ready_nodes_do_not_count_as_capacity(pools: Any) -> None:
    nodes = [make_node("ascend-0", "ascend-910b"), make_node("ascend-1", "ascend-910b", ready=False)]
    message = ("needs room for 2 pod(s), one per node: pool ascend-910b has room for 1 pod(s) on 1 usable node(s); "
               "pool h20 has room for 0 pod(s) on 0 usable node(s)")
    assert summary(decide(make_job(), pools, nodes)) == nothing(
        {**EMPTY_STATUS, "message": message, "conditions": [condition("Admitted", False, "WaitingForRoom", message)]},
        events=[("Warning", "WaitingForRoom", message)], requeue_after=30.0)


def _apply(job: TrainingJob, decision: Decision, pods: list[dict[str, Any]]) -> tuple[TrainingJob, list[Any]]:
    """What the API looks like after the shell applied a decision (pods created stay Pending)."""
    created = [m for m in decision.create if m["kind"] == "Pod"]
    kept = [p for p in pods if p["metadata"]["name"] not in decision.delete]
    return job.model_copy(update={"status": decision.status}), kept + created


@pytest.mark.parametrize("pod_phases", [[], ["Pending", "Pending"], ["Running", "Running"],
                                        ["Succeeded", "Succeeded"], ["Running", "Failed"]])
def test_reconcile_reaches_a_fixed_point(pools: Any, nodes: Any, pod_phases: list[str]) -> None:
    """Applying each decision and reconciling again settles within two rounds, then changes nothing."""
    job = make_job(status=started() if pod_phases else None)
    # A failed rank finished a minute ago: past the wait for a root cause, so the fault path runs too.
    pods = [make_pod("llama", 1, r, phase=p, node=f"ascend-{r}", exit_code=0 if p == "Succeeded" else
                     (1 if p == "Failed" else None), finished_at="2026-11-23T11:59:00Z")
            for r, p in enumerate(pod_phases)]
    service = False
    rounds = []
    for _ in range(4):
        decision = decide(job, pools, nodes, pods, service=service)
        rounds.append(decision.changes(job.status))
        job, pods = _apply(job, decision, pods)
        service = True
    assert rounds[2:] == [False, False], rounds


def test_the_observed_generation_is_recorded(pools: Any, nodes: Any) -> None:
    job = make_job()
    job.metadata["generation"] = 4
    message = ("attempt 1 on pool ascend-910b: 2 pod(s) of 8 device(s)"
               "; image example.org/tandem-runtime:npu, command tandem-train")
    assert summary(decide(job, pools, nodes)) == nothing(
        status(observedGeneration=4, message=message, startTime=NOW_Z, conditions=[
            condition("Admitted", True, "Admitted", "pool ascend-910b has room for 2 pod(s) on 2 usable node(s)",
                      generation=4),
            condition("Ready", False, "AttemptStarted", message, generation=4)]),
        create=["Pod/llama-a1-0", "Pod/llama-a1-1"], events=[("Normal", "AttemptStarted", message)],
        starts_attempt=True)


@pytest.mark.parametrize(("devices_per_pod", "node_devices", "held", "expected"), [
    (8, 8, 0, 1), (4, 8, 0, 1), (4, 8, 4, 1), (4, 8, 5, 0), (8, 4, 0, 0)])
def test_a_node_takes_one_pod_of_the_gang_when_its_free_devices_fit(devices_per_pod: int, node_devices: int,
                                                                    held: int, expected: int) -> None:
    """One pod of an attempt per node, however many devices the node has; other jobs' pods hold theirs."""
    from tandem.operator.capacity import Room, room

    other = make_pod("other", 1, 0, "Running", "n")
    other["spec"]["containers"] = [{"name": "trainer", "resources": {"limits": {"nvidia.com/gpu": str(held)}}}]
    found = room(make_pool("h20", "gpu", devices=devices_per_pod), [make_node("n", "h20", devices=node_devices)], {},
                 [], [other] if held else [])
    assert found == Room(free=expected, usable=1, held=1 - expected)
    assert room(make_pool("cpu", "cpu", devices=4), [make_node("c", "cpu")], {}, [], []) == Room(1, 1, 0)
