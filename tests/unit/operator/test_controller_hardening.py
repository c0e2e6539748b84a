"""The shell when the API does not do what it was asked: a delete refused, an Event refused, a spec fixed after a
rejection. Each job still reaches an end, and frees what it holds. A fake API (tests/support/fake_kube.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from builders import NOW, make_job, make_node, make_pod, make_pool
from fake_kube import FakeKube
from kubernetes.client.exceptions import ApiException

from tandem.operator.api import JobPhase, TrainingJob
from tandem.operator.controller import Controller
from tandem.operator.kube import Conflict

RUNNING = {"phase": "Running", "attempt": 1, "pool": "ascend-910b", "startTime": "2026-11-23T11:00:00Z"}


def owned(pod: dict[str, Any]) -> dict[str, Any]:
    pod["metadata"].update(uid=pod["metadata"]["name"], resourceVersion="5",
                           ownerReferences=[{"uid": "uid-job", "controller": True}])
    return pod


def failed_rank(rank: int, cls: str = "user", reason: str = "PythonException") -> dict[str, Any]:
    report = json.dumps({"class": cls, "reason": reason, "message": "ValueError: bad lr", "rank": rank, "step": 3,
                         "checkpointStep": 0, "resumedFrom": None})
    return owned(make_pod("llama", 1, rank, "Failed", f"ascend-{rank}", exit_code=1, message=report))


def running_job() -> FakeKube:
    kube = FakeKube(make_job(status=RUNNING).model_dump(mode="json", by_alias=True))
    kube.service = {"metadata": {"name": "llama", "ownerReferences": [{"uid": "uid-job", "controller": True}]}}
    return kube


def controller_for(kube: FakeKube) -> tuple[Controller, list[float]]:
    controller = Controller(kube, clock=lambda: NOW)  # type: ignore[arg-type]
    requeued: list[float] = []
    controller.requeue.after = lambda ns, name, seconds: requeued.append(seconds)  # type: ignore[method-assign]
    return controller, requeued


@pytest.mark.parametrize("error", [ApiException(status=500, reason="Internal Server Error"),
                                   Conflict("pod ml/llama-a1-0: Precondition failed: resourceVersion")])
def test_the_rank_left_running_by_a_failed_delete_is_deleted_by_the_next_reconcile(error: Exception) -> None:
    kube = running_job()
    kube.pods = [owned(make_pod("llama", 1, 0, "Running", "ascend-0")), failed_rank(1)]
    kube.delete_errors = [error]
    controller, _ = controller_for(kube)
    controller.reconcile_job("ml", "llama")  # Failed is written, then rank 0's delete fails
    assert TrainingJob.model_validate(kube.job).status.phase == JobPhase.FAILED
    controller.reconcile_job("ml", "llama")  # the retry the API error asked for
    assert kube.deleted == ["llama-a1-0"]
    assert kube.calls.count("delete llama-a1-0") == 2


def other_jobs_pod(node: str, rank: int) -> dict[str, Any]:
    """A pod of another job that holds every GPU of an h20 node."""
    pod = make_pod("other", 1, rank, "Running", node)
    pod["metadata"].update(uid=f"other-{rank}", ownerReferences=[{"uid": "uid-other", "controller": True}])
    pod["metadata"]["labels"]["tandem.dev/pool"] = "h20"
    pod["spec"]["containers"] = [{"name": "trainer", "resources": {"requests": {"nvidia.com/gpu": "4"}}}]
    return pod


def test_a_fault_does_not_move_the_job_to_a_pool_that_other_jobs_fill() -> None:
    """The second device fault on ascend-910b (failoverAfterFaults 2) would move the job to h20, but another job
    holds every GPU there: it restarts where it has room, as the admission of its next attempt would decide."""
    kube = running_job()
    kube.job["status"]["poolFaults"] = 1
    kube.pods = [owned(make_pod("llama", 1, 0, "Running", "ascend-0")),
                 failed_rank(1, "device", "AscendDeviceError")]
    kube.list_pools = lambda: [make_pool().model_dump(mode="json", by_alias=True),  # type: ignore[method-assign]
                               make_pool("h20", "gpu", devices=4).model_dump(mode="json", by_alias=True)]
    kube.list_nodes = lambda: ([make_node(f"ascend-{i}", "ascend-910b") for i in range(3)]  # type: ignore
                               + [make_node(f"h20-{i}", "h20", devices=4) for i in range(2)])
    kube.list_pool_pods = lambda namespaces=None: [  # type: ignore[method-assign]
        other_jobs_pod("h20-0", 0), other_jobs_pod("h20-1", 1), *kube.list_job_pods("ml", "llama", "uid-job")]
    controller, _ = controller_for(kube)
    controller.reconcile_job("ml", "llama")
    after = TrainingJob.model_validate(kube.job).status
    assert (after.phase, after.pool, after.failovers, after.restarts) == (JobPhase.RESTARTING, "ascend-910b", 0, 1)


def test_an_event_the_api_refuses_is_dropped_and_the_fault_is_still_handled() -> None:
    """An events quota exhausted, RBAC without events/create, an EventRateLimit (403, 429): Events are best effort
    (as client-go's recorder makes them); the job's status says what they said, and the reconcile goes on."""
    kube = running_job()
    kube.job["status"]["pendingEvents"] = [{"type": "Normal", "reason": "Running", "message": "all 2 rank(s) running",
                                            "time": "2026-11-23T11:00:00Z"}]
    kube.pods = [owned(make_pod("llama", 1, 0, "Running", "ascend-0")),
                 owned(make_pod("llama", 1, 1, "Failed", "ascend-1", exit_code=137, reason="OOMKilled"))]
    kube.event_errors = [ApiException(status=403, reason="Forbidden: exceeded quota: count/events")]
    controller, _ = controller_for(kube)
    controller.reconcile_job("ml", "llama")
    after = TrainingJob.model_validate(kube.job).status
    assert (after.phase, [f.reason for f in after.faults], after.pending_events) == (
        JobPhase.RESTARTING, ["OOMKilled"], [])
    assert kube.calls[:2] == ["event Running", "status"] and "delete llama-a1-0" in kube.calls
    assert [e.reason for e in kube.events] == ["FaultDetected", "Restarting"]


def test_an_event_the_api_fails_to_store_stays_pending_and_the_reconcile_goes_on() -> None:
    """A 5xx or a dropped connection: the Event is posted again by a later reconcile (its name makes a replay
    harmless), and nothing waits for it."""
    kube = running_job()
    kube.job["status"]["pendingEvents"] = [{"type": "Normal", "reason": "Running", "message": "all 2 rank(s) running",
                                            "time": "2026-11-23T11:00:00Z"}]
    kube.pods = [owned(make_pod("llama", 1, 0, "Running", "ascend-0")),
                 owned(make_pod("llama", 1, 1, "Failed", "ascend-1", exit_code=137, reason="OOMKilled"))]
    kube.event_errors = [ApiException(status=503, reason="Service Unavailable")] * 3
    controller, _ = controller_for(kube)
    controller.reconcile_job("ml", "llama")
    after = TrainingJob.model_validate(kube.job).status
    assert (after.phase, [f.reason for f in after.faults], [e.reason for e in after.pending_events]) == (
        JobPhase.RESTARTING, ["OOMKilled"], ["Running", "FaultDetected"])
    assert "delete llama-a1-0" in kube.calls and [e.reason for e in kube.events] == ["Restarting"]
    controller.reconcile_job("ml", "llama")  # the API is back
    assert [e.reason for e in kube.events] == ["Restarting", "Running", "FaultDetected"]
    assert TrainingJob.model_validate(kube.job).status.pending_events == []


def test_a_job_the_operator_cannot_parse_fails_and_frees_its_accelerators() -> None:
    """A spec stored before the CRD's current schema (an operator upgrade brought a stricter model) while the job
    ran: Failed, naming the field, and its running ranks deleted, even when the first delete fails."""
    kube = running_job()
    kube.job["spec"]["nodes"] = 0
    kube.pods = [owned(make_pod("llama", 3, 0, "Running", "ascend-0")), failed_rank(1)]
    kube.delete_errors = [ApiException(status=500, reason="Internal Server Error")]
    controller, requeued = controller_for(kube)
    controller.reconcile_job("ml", "llama")
    after = kube.job["status"]
    assert (after["phase"], after["conditions"][0]["reason"], after["message"]) == (
        "Failed", "InvalidSpec", "invalid spec: spec.nodes: Input should be greater than or equal to 1")
    assert (kube.calls, kube.deleted, requeued) == (["status", "event InvalidSpec", "delete llama-a3-0"], [], [2.0])
    controller.reconcile_job("ml", "llama")  # the retry: still invalid, still Failed, and the rank goes now
    assert (kube.calls[3:], kube.deleted) == (["delete llama-a3-0"], ["llama-a3-0"])


def test_a_fixed_spec_starts_a_job_that_had_run_again_once_its_old_pods_are_gone() -> None:
    """The owner fixes the spec of a job that ran to attempt 3 before it was rejected: its old pods (kept after
    they failed) go, and the job starts again at attempt 1 once they are gone; it never waits for ever on pods of
    attempts its fresh status does not know."""
    kube = running_job()
    kube.job["status"] = {"phase": "Failed", "message": "invalid spec: ...", "attempt": 3, "pool": "ascend-910b",
                          "completionTime": "2026-11-23T11:00:00Z", "conditions": [
                              {"type": "Failed", "status": "True", "reason": "InvalidSpec", "message": "spec.nodes",
                               "lastTransitionTime": "2026-11-23T11:00:00Z", "observedGeneration": 1}]}
    kube.job["metadata"]["generation"] = 2
    kube.pods = [owned(make_pod("llama", 3, r, "Failed", f"ascend-{r}", exit_code=1)) for r in range(2)]
    controller, _ = controller_for(kube)
    controller.reconcile_job("ml", "llama")
    assert (kube.calls[:3], kube.deleted) == (["delete llama-a3-0", "delete llama-a3-1", "status"],
                                              ["llama-a3-0", "llama-a3-1"])
    for _ in range(2):
        controller.reconcile_job("ml", "llama")
    restarted = TrainingJob.model_validate(kube.job).status
    assert (restarted.phase, restarted.attempt, "create llama-a1-0" in kube.calls) == (JobPhase.PENDING, 1, True)
