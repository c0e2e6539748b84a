"""The core where users and neighbours strand jobs: missing pools, exclusions that never expire, gangs that
deadlock, failovers that ping-pong. Each case compares the whole decision."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from builders import NOW, make_job, make_node, make_pod, make_pool
from decisions import nothing, summary

from tandem.operator.api import JobPhase, TrainingJob
from tandem.operator.reconcile import Decision, Observation, reconcile

Z = NOW.isoformat().replace("+00:00", "Z")
POOLS = {"ascend-910b": make_pool(), "h20": make_pool("h20", "gpu", devices=4)}
NODES = [*(make_node(f"ascend-{i}", "ascend-910b") for i in range(3)), make_node("h20-0", "h20"),
         make_node("h20-1", "h20")]
START = "2026-11-23T11:00:00Z"


def decide(job: TrainingJob, pods: list[dict[str, Any]] | None = None, pools: dict[str, Any] | None = None,
           nodes: list[dict[str, Any]] | None = None, others: list[dict[str, Any]] | None = None,
           later: float = 0.0, service_foreign: bool = False) -> Decision:
    return reconcile(Observation(job=job, pools=POOLS if pools is None else pools,
                                 nodes=NODES if nodes is None else nodes, pods=pods or [], service_exists=True,
                                 now=NOW + timedelta(seconds=later),
                                 others=others or [], service_foreign=service_foreign))


def condition(type_: str, value: bool, reason: str, message: str, at: str = Z) -> dict[str, Any]:
    return {"type": type_, "status": "True" if value else "False", "reason": reason, "message": message,
            "lastTransitionTime": at, "observedGeneration": 1}


def status(**fields: Any) -> dict[str, Any]:
    base = {"observedGeneration": 1, "phase": "Running", "message": "all 2 rank(s) running", "pool": "ascend-910b",
            "attempt": 1,
            "restarts": 0, "failovers": 0, "lastCheckpoint": {"step": 0}, "faults": [], "excludedNodes": [],
            "exclusions": [], "poolFaults": 0, "pendingEvents": [], "conditions": [], "startTime": START}
    return {key: value for key, value in {**base, **fields}.items() if value is not None}


def running_pods(attempt: int = 1, nodes: tuple[str, ...] = ("ascend-0", "ascend-1")) -> list[dict[str, Any]]:
    return [make_pod("llama", attempt, rank, "Running", node) for rank, node in enumerate(nodes)]


# --- a missing pool is a condition, not a verdict ------------------------------------------------------------

def test_a_running_attempt_on_a_deleted_pool_keeps_running() -> None:
    job = make_job(status=status())
    message = ("AcceleratorPool 'ascend-910b' was deleted: the running attempt goes on; the next attempt goes to "
               "the next pool that exists")
    decision = decide(job, running_pods(), pools={"h20": POOLS["h20"]})
    assert summary(decision) == nothing(status(conditions=[condition("PoolAvailable", False, "PoolNotFound",
                                                                     message)]), requeue_after=30.0)


def test_a_finished_job_keeps_its_phase_and_pods_when_its_pool_goes() -> None:
    done = status(phase="Succeeded", completionTime=Z)
    pods = [make_pod("llama", 1, r, "Succeeded", f"ascend-{r}", exit_code=0) for r in range(2)]
    assert summary(decide(make_job(status=done), pods, pools={})) == nothing(done)


def test_the_next_attempt_after_a_deleted_pool_goes_to_the_next_pool_that_exists() -> None:
    restarting = status(phase="Restarting", restarts=1, nextAttemptTime=Z, restartDelaySeconds=0)
    decision = decide(make_job(status=restarting), pools={"h20": POOLS["h20"]})
    assert (decision.status.pool, decision.status.attempt, decision.status.failovers) == ("h20", 2, 1)
    assert decision.failed_over == ("ascend-910b", "h20") and decision.starts_attempt
    assert decision.events[0].message == ("attempt 2 on pool h20: 2 pod(s) of 4 device(s) (moved from ascend-910b: "
                                          "the pool was deleted)"
                                          "; image example.org/tandem-runtime:gpu, command tandem-train")


def test_a_job_whose_pools_are_all_gone_waits_and_says_so() -> None:
    restarting = status(phase="Restarting", restarts=1, nextAttemptTime=Z, restartDelaySeconds=0)
    message = "attempt 2: none of the pools ascend-910b exists: waiting for one to be created"
    decision = decide(make_job(status=restarting), pools={})
    assert summary(decision) == nothing(
        {**restarting, "message": message, "conditions": [condition("Admitted", False, "PoolNotFound", message)]},
        events=[("Warning", "PoolNotFound", message)], requeue_after=30.0)


# --- exclusions expire ------------------------------------------------------------------------------------

def _ready_since(name: str, since: str) -> dict[str, Any]:
    node = make_node(name, "ascend-910b")
    node["status"]["conditions"][0]["lastTransitionTime"] = since
    return node


def test_an_excluded_node_healthy_for_the_exclusion_time_is_released() -> None:
    excluded = status(excludedNodes=["ascend-2"], exclusions=[{"node": "ascend-2", "since": Z, "reason": "node/X"}])
    nodes = [*NODES[:2], _ready_since("ascend-2", Z), *NODES[3:]]
    job = make_job(status=excluded, faultPolicy={"nodeExclusionSeconds": 600})
    assert summary(decide(job, running_pods(), nodes=nodes, later=599)) == nothing(excluded, requeue_after=30.0)
    released = decide(job, running_pods(), nodes=nodes, later=600)
    assert summary(released) == nothing(status(), events=[
        ("Normal", "NodeReleased", "node ascend-2 has been healthy for 600s: new pods may use it again")],
        requeue_after=30.0)


def test_the_exclusion_clock_starts_when_the_node_is_ready_again() -> None:
    """A node that flapped back to Ready a minute ago is not trusted because it was excluded an hour ago."""
    excluded = status(excludedNodes=["ascend-2"], exclusions=[{"node": "ascend-2", "since": Z, "reason": "node/X"}])
    back = (NOW + timedelta(seconds=3540)).isoformat().replace("+00:00", "Z")
    nodes = [*NODES[:2], _ready_since("ascend-2", back), *NODES[3:]]
    job = make_job(status=excluded, faultPolicy={"nodeExclusionSeconds": 600})
    assert summary(decide(job, running_pods(), nodes=nodes, later=3600)) == nothing(excluded, requeue_after=30.0)


def test_a_not_ready_node_stays_excluded() -> None:
    excluded = status(excludedNodes=["ascend-2"], exclusions=[{"node": "ascend-2", "since": Z, "reason": "node/X"}])
    nodes = [*NODES[:2], make_node("ascend-2", "ascend-910b", ready=False), *NODES[3:]]
    decision = decide(make_job(status=excluded), running_pods(), nodes=nodes, later=86400)
    # Seen unhealthy now: its release clock starts over from now.
    seen = (NOW + timedelta(seconds=86400)).isoformat().replace("+00:00", "Z")
    assert summary(decision) == nothing(
        {**excluded, "exclusions": [{"node": "ascend-2", "since": seen, "reason": "node/X"}]}, requeue_after=30.0)


def test_a_node_ready_throughout_is_released_only_after_its_device_fault_has_been_gone_long_enough() -> None:
    """A chip reported faulty for 1790 s while the node stayed Ready: released nodeExclusionSeconds after the
    report cleared, not 10 s after (the release clock counted from the exclusion)."""
    from tandem.operator.api import FaultClass
    from tandem.operator.device_reports import DeviceFault

    chip = DeviceFault(node="ascend-2", fault_class=FaultClass.DEVICE, reason="NpuChipFault", message="chip",
                       source="ascend-device-plugin")
    excluded = status(excludedNodes=["ascend-2"], exclusions=[{"node": "ascend-2", "since": Z, "reason": "node/X"}])
    nodes = [*NODES[:2], _ready_since("ascend-2", "2026-11-01T00:00:00Z"), *NODES[3:]]
    job = make_job(status=excluded, faultPolicy={"nodeExclusionSeconds": 1800})

    def at(seconds: float, faults: dict[str, Any], job: TrainingJob = job) -> Decision:
        return reconcile(Observation(job=job, pools=POOLS, nodes=nodes, pods=running_pods(), service_exists=True,
                                     now=NOW + timedelta(seconds=seconds), device_faults=faults))

    still = at(1790, {"ascend-2": [chip]})
    seen = (NOW + timedelta(seconds=1790)).isoformat().replace("+00:00", "Z")
    assert summary(still) == nothing(
        {**excluded, "exclusions": [{"node": "ascend-2", "since": seen, "reason": "node/X"}]}, requeue_after=30.0)
    cleared = make_job(status=still.status.to_dict(), faultPolicy={"nodeExclusionSeconds": 1800})
    assert at(1800, {}, cleared).status.excluded_nodes == ["ascend-2"]
    assert at(1790 + 1800, {}, cleared).status.excluded_nodes == []


# --- gangs never deadlock ---------------------------------------------------------------------------------

def _other_job_pod(name: str, node: str | None, pool: str = "ascend-910b") -> dict[str, Any]:
    pod = make_pod(name, 1, 0, "Running" if node else "Pending", node)
    pod["metadata"]["labels"]["tandem.dev/pool"] = pool
    pod["spec"]["containers"] = [{"name": "trainer", "resources": {"requests": {"huawei.com/Ascend910": "8"}}}]
    return pod


def test_three_two_node_jobs_on_three_nodes_admit_one_at_a_time() -> None:
    """Each job used to take one node and wait for the second for ever; now the second waits, without pods."""
    first = decide(make_job(pools=["ascend-910b"]))
    assert first.starts_attempt and [m["metadata"]["name"] for m in first.create] == ["llama-a1-0", "llama-a1-1"]
    # The first job's pods exist (not yet scheduled): the second job sees one free node, not three.
    others = [_other_job_pod("first", None), _other_job_pod("first", None)]
    second = decide(make_job(pools=["ascend-910b"]), others=others)
    message = ("needs room for 2 pod(s), one per node: pool ascend-910b has room for 1 pod(s) on 3 usable node(s) "
               "(2 held by other jobs)")
    assert summary(second) == nothing(
        {**status(phase="Pending", pool=None, attempt=0, startTime=None), "message": message,
         "conditions": [condition("Admitted", False, "WaitingForRoom", message)]},
        events=[("Warning", "WaitingForRoom", message)], requeue_after=30.0)


def test_a_busy_preferred_pool_starts_the_job_on_the_next_pool_with_room() -> None:
    others = [_other_job_pod("a", "ascend-0"), _other_job_pod("b", "ascend-1")]
    decision = decide(make_job(), others=others)
    assert (decision.status.pool, decision.starts_attempt) == ("h20", True)


def test_the_scheduler_says_why_pods_wait() -> None:
    pending = [make_pod("llama", 1, r) for r in range(2)]
    for pod in pending:
        pod["metadata"]["creationTimestamp"] = Z
        pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                        "message": "0/5 nodes are available: 3 Insufficient huawei.com/Ascend910."}]
    decision = decide(make_job(status=status(phase="Starting")), pending, later=5)
    message = "waiting for 2 pod(s) to be scheduled: 0/5 nodes are available: 3 Insufficient huawei.com/Ascend910."
    at = (NOW + timedelta(seconds=5)).isoformat().replace("+00:00", "Z")
    assert summary(decision) == nothing(
        status(phase="Pending", message=message, conditions=[condition("Ready", False, "Scheduling", message, at)]),
        events=[("Normal", "Scheduling", message)], requeue_after=595.0)


# --- budgets -----------------------------------------------------------------------------------------------

def test_pending_failovers_stop_at_max_failovers() -> None:
    pending = [make_pod("llama", 1, r) for r in range(2)]
    for pod in pending:
        pod["metadata"]["creationTimestamp"] = Z
    job = make_job(status=status(phase="Pending", failovers=3),
                   faultPolicy={"pendingTimeoutSeconds": 60, "maxFailovers": 3, "failBack": True})
    decision = decide(job, pending, later=61)
    assert (decision.status.phase, decision.status.pool, decision.delete) == (JobPhase.PENDING, "ascend-910b", [])


def test_a_failover_resets_the_pool_fault_counter() -> None:
    fault = {"time": Z, "attempt": 1, "pool": "ascend-910b", "class": "interconnect", "reason": "HcclTimeout"}
    job = make_job(status=status(attempt=2, restarts=1, faults=[fault], poolFaults=1))
    failed = make_pod("llama", 2, 1, "Failed", "ascend-1", exit_code=3, message=(
        '{"class": "interconnect", "reason": "HcclTimeout", "message": "EI0002", "rank": 1}'))
    decision = decide(job, [make_pod("llama", 2, 0, "Running", "ascend-0"), failed])
    assert (decision.status.pool, decision.status.pool_faults, decision.status.failovers) == ("h20", 0, 1)


def test_a_job_beyond_the_attempt_limit_fails() -> None:
    restarting = status(phase="Restarting", attempt=9999, restarts=5, nextAttemptTime=Z, restartDelaySeconds=0)
    decision = decide(make_job(status=restarting, faultPolicy={"maxRestarts": 1000}))
    assert (decision.status.phase, decision.create) == (JobPhase.FAILED, [])
    assert decision.events[-1].message == "attempt 10000 would pass the limit of 9999 attempts"


# --- what the job may use ----------------------------------------------------------------------------------

def test_a_host_path_checkpoint_on_pools_that_do_not_permit_it_fails_naming_the_field() -> None:
    job = make_job(checkpoint={"volume": {"hostPath": {"path": "/", "type": "DirectoryOrCreate"}}})
    decision = decide(job)
    assert decision.status.phase == JobPhase.FAILED and decision.create == []
    assert decision.events[-1].reason == "CheckpointVolumeNotAllowed"
    assert decision.events[-1].message == (
        "pool ascend-910b does not permit hostPath checkpoint volumes (spec.checkpoint.volume.hostPath; the pool's "
        "spec.checkpointVolumeTypes: persistentVolumeClaim, emptyDir); pool h20 does not permit hostPath checkpoint "
        "volumes (spec.checkpoint.volume.hostPath; the pool's spec.checkpointVolumeTypes: persistentVolumeClaim, "
        "emptyDir)")


def test_a_pool_that_permits_host_path_takes_the_job() -> None:
    permissive = make_pool("h20", "gpu", devices=4, checkpointVolumeTypes=["persistentVolumeClaim", "hostPath"])
    job = make_job(checkpoint={"volume": {"hostPath": {"path": "/mnt/shared/ckpt"}}})
    decision = decide(job, pools={**POOLS, "h20": permissive})
    assert (decision.status.pool, decision.starts_attempt) == ("h20", True)


def test_a_service_the_job_does_not_own_is_never_reused() -> None:
    message = ("a Service named 'llama' exists that this job does not own (an earlier job's, being deleted, or "
               "someone else's): waiting for it to go")
    decision = decide(make_job(), service_foreign=True)
    assert summary(decision) == nothing(
        {**status(phase="Pending", pool=None, attempt=0, startTime=None), "message": message,
         "conditions": [condition("Admitted", False, "ServiceConflict", message)]},
        events=[("Warning", "ServiceConflict", message)], requeue_after=30.0)


def test_last_checkpoint_follows_rank_zeros_log_while_the_attempt_runs() -> None:
    """Not only at faults: a healthy run's commits reach status.lastCheckpoint (and so reset the backoff)."""
    job = make_job(status=status(lastCheckpoint={"step": 100, "time": START}))
    decision = reconcile(Observation(job=job, pools=POOLS, nodes=NODES, pods=running_pods(), service_exists=True,
                                     now=NOW, logged_checkpoint=300))
    assert summary(decision) == nothing(status(lastCheckpoint={"step": 300, "time": Z}), requeue_after=30.0)
    older = reconcile(Observation(job=job, pools=POOLS, nodes=NODES, pods=running_pods(), service_exists=True,
                                  now=NOW, logged_checkpoint=50))
    assert summary(older) == nothing(status(lastCheckpoint={"step": 100, "time": START}), requeue_after=30.0)


def test_pods_of_a_newer_attempt_mean_a_stale_view_and_nothing_is_deleted() -> None:
    """A stale replica (status at attempt 1) seeing attempt 2's pods must not tear them down as 'earlier'."""
    stale = make_job(status=status())
    decision = decide(stale, [*running_pods(), *running_pods(attempt=2, nodes=("ascend-1", "ascend-2"))])
    assert summary(decision) == nothing(status(), requeue_after=2.0)


def test_a_foreign_checkpoint_is_told_once_in_an_event_and_a_condition() -> None:
    notice = "resumes from checkpoint step 400: written by an earlier job default/llama (uid u-0)"
    message = f"attempt 1 {notice}"
    told = reconcile(Observation(job=make_job(status=status()), pools=POOLS, nodes=NODES, pods=running_pods(),
                                 service_exists=True, now=NOW, foreign_checkpoint=notice))
    known = status(conditions=[condition("CheckpointProvenance", False, "ForeignCheckpoint", message)])
    assert summary(told) == nothing(known, events=[("Warning", "ForeignCheckpoint", message)], requeue_after=30.0)
    again = reconcile(Observation(job=make_job(status=known), pools=POOLS, nodes=NODES, pods=running_pods(),
                                  service_exists=True, now=NOW, foreign_checkpoint=notice))
    assert summary(again) == nothing(known, requeue_after=30.0)


def test_quarantined_checkpoints_are_told_once_in_an_event_and_a_condition() -> None:
    set_aside = ("step 400 (checksum)", "step 300 (corrupt)")
    message = ("attempt 1 set aside 2 checkpoint(s) that failed verification (step 400 (checksum); step 300 "
               "(corrupt)); they are kept in quarantine/ on the checkpoint volume")
    told = reconcile(Observation(job=make_job(status=status()), pools=POOLS, nodes=NODES, pods=running_pods(),
                                 service_exists=True, now=NOW, quarantined=set_aside))
    known = status(conditions=[condition("CheckpointIntegrity", False, "CheckpointQuarantined", message)])
    assert summary(told) == nothing(known, events=[("Warning", "CheckpointQuarantined", message)],
                                    requeue_after=30.0)
    again = reconcile(Observation(job=make_job(status=known), pools=POOLS, nodes=NODES, pods=running_pods(),
                                  service_exists=True, now=NOW, quarantined=set_aside))
    assert summary(again) == nothing(known, requeue_after=30.0)


def test_an_unreadable_node_time_decides_like_a_missing_one_and_never_raises() -> None:
    excluded = status(excludedNodes=["ascend-2"], exclusions=[{"node": "ascend-2", "since": Z, "reason": "node/X"}])
    job = make_job(status=excluded, faultPolicy={"nodeExclusionSeconds": 600})
    missing = [*NODES[:2], make_node("ascend-2", "ascend-910b"), *NODES[3:]]
    garbage = [*NODES[:2], _ready_since("ascend-2", "yesterday-ish"), *NODES[3:]]
    assert summary(decide(job, running_pods(), nodes=garbage, later=600)) == summary(
        decide(job, running_pods(), nodes=missing, later=600))
