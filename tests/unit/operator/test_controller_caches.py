"""The cache-backed controller (issue 19): a reconcile reads nothing from the API in the steady state, a decision
that would delete or move a pod is taken again on the API's fresh view, and every delete carries the uid and
resourceVersion it was decided on. The fake API below checks preconditions as the API server does (409)."""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from builders import NOW, make_job, make_node, make_pod, make_pool
from decisions import zulu

from tandem.operator.controller import Controller
from tandem.operator.kube import Conflict
from tandem.operator.pod_index import OtherPods

START = "2026-11-23T11:00:00Z"
UID = "uid-job"


def owned(pod: dict[str, Any], uid: str, version: int, attempt: int | None = None) -> dict[str, Any]:
    pod = copy.deepcopy(pod)
    pod["metadata"].update(uid=uid, resourceVersion=str(version), ownerReferences=[{"uid": UID, "controller": True}])
    if attempt is not None:
        pod["metadata"]["labels"]["tandem.dev/attempt"] = str(attempt)
    return pod


def job(version: int, **status: Any) -> dict[str, Any]:
    body = make_job(status={"pool": "ascend-910b", "startTime": START, **status}, nodes=2, pools=["ascend-910b"])
    raw = body.model_dump(mode="json", by_alias=True, exclude_none=True)
    raw["metadata"]["resourceVersion"] = str(version)
    return raw


class StrictAPI:
    """The API's truth and the calls made to it; writes are checked against the preconditions they carry."""

    def __init__(self, job: dict[str, Any], pods: list[dict[str, Any]]) -> None:
        self.job, self.pods = job, {p["metadata"]["name"]: p for p in pods}
        self.calls: list[str] = []

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append("get job")
        return copy.deepcopy(self.job)

    def list_job_pods(self, namespace: str, job: str, uid: str) -> list[dict[str, Any]]:
        self.calls.append("list pods")
        return copy.deepcopy(list(self.pods.values()))

    def get_service(self, namespace: str, name: str) -> dict[str, Any]:
        self.calls.append("get service")
        owner = [{"uid": UID, "controller": True}]
        return {"metadata": {"name": name, "namespace": namespace, "ownerReferences": owner}}

    def list_pools(self) -> list[dict[str, Any]]:
        return [make_pool().model_dump(mode="json", by_alias=True)]

    def list_nodes(self) -> list[dict[str, Any]]:
        return [make_node(f"ascend-{i}", "ascend-910b") for i in range(3)]

    def list_device_reports(self, namespace: str) -> list[dict[str, Any]]:
        return []

    def list_pool_pods(self, namespaces: list[str] | None = None) -> list[dict[str, Any]]:
        return copy.deepcopy(list(self.pods.values()))

    def read_log_tail(self, namespace: str, pod: str, lines: int = 1000) -> str:
        return ""

    def patch_job_status(self, namespace: str, name: str, resource_version: str, status: dict[str, Any]) -> str:
        if resource_version != self.job["metadata"]["resourceVersion"]:
            self.calls.append(f"status refused at {resource_version}")
            raise Conflict("the object has been modified")
        version = str(int(resource_version) + 1)
        merged = {k: v for k, v in {**self.job.get("status", {}), **status}.items() if v is not None}
        self.job = {**self.job, "metadata": {**self.job["metadata"], "resourceVersion": version}, "status": merged}
        self.calls.append(f"status attempt {merged.get('attempt')}")
        return version

    def delete_pod(self, namespace: str, name: str, uid: str | None = None, force: bool = False,
                   resource_version: str | None = None) -> bool:
        pod = self.pods.get(name)
        if pod is None:
            return False
        meta = pod["metadata"]
        if (uid and uid != meta["uid"]) or (resource_version and resource_version != meta["resourceVersion"]):
            self.calls.append(f"delete {name} refused")
            raise Conflict("Precondition failed")
        self.calls.append(f"delete {name} at {resource_version}")
        del self.pods[name]
        return True

    def label_pod_attempt(self, namespace: str, name: str, attempt: int, uid: str | None = None,
                          resource_version: str | None = None) -> bool:
        self.calls.append(f"label {name} {attempt} at {resource_version}")
        return True

    def create(self, manifest: dict[str, Any]) -> bool:
        self.calls.append(f"create {manifest['metadata']['name']}")
        return True

    def post_event(self, involved: dict[str, Any], event: Any) -> None:
        self.calls.append(f"event {event.reason}")


def watching(api: StrictAPI, cached_job: dict[str, Any], cached_pods: list[dict[str, Any]]) -> Controller:
    """A controller whose watches delivered `cached_job` and `cached_pods` (and no more since)."""
    controller = Controller(api, clock=lambda: NOW)  # type: ignore[arg-type]
    controller.requeue.after = lambda *_: None  # type: ignore[method-assign]
    controller.watching = True
    controller.jobs.observe(None, cached_job)
    controller.services.observe(None, api.get_service("ml", "llama"))
    controller.pods.seed(cached_pods)
    controller.view.observe_reports([])
    for node in api.list_nodes():
        controller.view.observe_node(None, node)
    api.calls.clear()
    return controller


RUNNING = [make_pod("llama", 1, rank, "Running", f"ascend-{rank}") for rank in (0, 1)]
RANK_1_FAILED = [RUNNING[0], make_pod("llama", 1, 1, "Failed", "ascend-1", exit_code=1, message="x",
                                      finished_at=zulu(NOW - timedelta(seconds=60)))]


def test_a_steady_reconcile_reads_nothing_from_the_api() -> None:
    pods = [owned(p, f"p{i}", 15 + i) for i, p in enumerate(RUNNING)]
    api = StrictAPI(job(10, phase="Running", attempt=1), pods)
    controller = watching(api, api.job, pods)
    controller.reconcile_job("ml", "llama")  # the job's first look at its running pods: written, from the caches
    assert api.calls == ["status attempt 1", "event Running", "status attempt 1"]
    api.calls.clear()
    controller.reconcile_job("ml", "llama")  # a pod event that changes nothing: no read, no write
    assert api.calls == []


def test_a_decision_that_deletes_is_taken_again_on_a_fresh_read_and_deletes_what_that_read_saw() -> None:
    pods = [owned(p, f"p{i}", 15 + i) for i, p in enumerate(RANK_1_FAILED)]
    api = StrictAPI(job(10, phase="Running", attempt=1), pods)
    controller = watching(api, api.job, pods)
    api.pods["llama-a1-0"]["metadata"]["resourceVersion"] = "17"  # a status update the watch has not brought yet
    controller.reconcile_job("ml", "llama")
    assert api.calls == ["get job", "get service", "list pods", "status attempt 1", "delete llama-a1-0 at 17",
                         "event FaultDetected", "event Restarting", "status attempt 1"]


def test_a_pod_that_changes_between_the_fresh_read_and_its_delete_is_read_again() -> None:
    pods = [owned(p, f"p{i}", 15 + i) for i, p in enumerate(RANK_1_FAILED)]
    api = StrictAPI(job(10, phase="Running", attempt=1), pods)
    controller = watching(api, api.job, pods)
    listed = api.list_job_pods

    def list_then_update(*args: Any) -> list[dict[str, Any]]:
        seen = listed(*args)
        if api.calls.count("list pods") == 1:  # the kubelet writes rank 0's status right after the first read
            api.pods["llama-a1-0"]["metadata"]["resourceVersion"] = "18"
        return seen

    api.list_job_pods = list_then_update  # type: ignore[method-assign]
    controller.reconcile_job("ml", "llama")
    # Refused (409), observed again: the Events the first pass wrote ahead are posted, then the delete goes through.
    assert api.calls == ["get job", "get service", "list pods", "status attempt 1", "delete llama-a1-0 refused",
                         "get job", "event FaultDetected", "event Restarting", "status attempt 1",
                         "get service", "list pods", "delete llama-a1-0 at 18"]


def test_a_decision_on_a_stale_cache_never_deletes_the_pods_of_a_newer_attempt() -> None:
    """The caches still show attempt 1 with rank 1 failed; the API has moved both pods in place to attempt 2 since
    (same names, same uids). The stale view would restart attempt 1 and delete its pods: nothing of it lands."""
    cached = [owned(p, f"p{i}", 15 + i) for i, p in enumerate(RANK_1_FAILED)]
    moved = [owned(p, f"p{i}", 21 + i, attempt=2) for i, p in enumerate(RUNNING)]
    requested = zulu(NOW - timedelta(seconds=5))
    api = StrictAPI(job(11, phase="Running", attempt=2, restarts=1, inPlaceRestart={
        "attempt": 2, "requestedAt": requested, "pods": ["llama-a1-0", "llama-a1-1"]}), moved)
    watching(api, job(10, phase="Running", attempt=1), cached).reconcile_job("ml", "llama")
    assert api.calls == ["get job", "get service", "list pods", "status attempt 2"]  # no delete, no label
    assert sorted((name, p["metadata"]["labels"]["tandem.dev/attempt"]) for name, p in api.pods.items()) == [
        ("llama-a1-0", "2"), ("llama-a1-1", "2")]


def test_a_job_rejected_for_its_spec_frees_its_ranks_from_the_caches_and_then_reads_nothing() -> None:
    """A spec the operator cannot parse, on the caches' view: Failed, and its running rank deleted with the uid and
    resourceVersion the index holds (no list from the API); the reconciles of the Failed job that follow (its own
    status event, its pods' deletions) read nothing from the API."""
    pods = [owned(p, f"p{i}", 15 + i) for i, p in enumerate(RANK_1_FAILED)]
    raw = job(10, phase="Running", attempt=1)
    raw["spec"]["nodes"] = 0
    api = StrictAPI(raw, pods)
    controller = watching(api, api.job, pods)
    controller.reconcile_job("ml", "llama")
    assert api.calls == ["status attempt 1", "event InvalidSpec", "delete llama-a1-0 at 15"]
    assert (api.job["status"]["phase"], sorted(api.pods)) == ("Failed", ["llama-a1-1"])
    api.calls.clear()
    controller.pods.observe("DELETED", pods[0])  # the watch brings the deletion
    controller.reconcile_job("ml", "llama")
    assert api.calls == []


def test_a_steady_reconcile_never_walks_the_other_jobs_pods() -> None:
    """Other jobs' pods are the room a decision that moves or starts an attempt needs; a reconcile that changes
    nothing never lists them (a walk over every pod of the cluster on each reconcile, at a thousand nodes)."""
    pods = [owned(p, f"p{i}", 15 + i) for i, p in enumerate(RUNNING)]
    others = [make_pod("gpt", 1, rank, "Running", f"ascend-{rank}") for rank in (0, 1)]
    api = StrictAPI(job(10, phase="Running", attempt=1), pods)
    controller = watching(api, api.job, [*pods, *others])
    walks: list[int] = []
    every_pod = controller.pods.pods
    controller.pods.pods = lambda namespaces: walks.append(1) or every_pod(namespaces)  # type: ignore[method-assign]
    controller.reconcile_job("ml", "llama")
    controller.reconcile_job("ml", "llama")
    assert (api.calls, walks) == (["status attempt 1", "event Running", "status attempt 1"], [])


def test_other_pods_are_listed_once_when_first_read() -> None:
    listings: list[int] = []
    pods = OtherPods(lambda: listings.append(1) or [{"metadata": {"name": "a"}}, {"metadata": {"name": "b"}}])
    assert listings == []
    assert ([p["metadata"]["name"] for p in pods], len(pods), pods[1]["metadata"]["name"]) == (["a", "b"], 2, "b")
    assert listings == [1]
