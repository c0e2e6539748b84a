"""The pod index an admission counts (issue 19): the watch's versions win over older ones, a pod just created counts
until the watch brings it, a deletion removes only the pod it names, and a full list drops what a missed deletion
left but keeps the pods just created."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.operator import pod_index
from tandem.operator.pod_index import PodIndex


def pod(name: str, uid: str | None, version: str, namespace: str = "ml", node: str | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "resourceVersion": version}
    if uid:
        meta["uid"] = uid
    return {"metadata": meta, "spec": {"nodeName": node} if node else {}}


def names(index: PodIndex, *namespaces: str) -> list[tuple[str, str | None]]:
    return sorted((p["metadata"]["name"], p["spec"].get("nodeName")) for p in index.pods(list(namespaces)))


def test_the_watch_keeps_the_newest_version_of_each_pod() -> None:
    index = PodIndex()
    index.observe("ADDED", pod("a", "u1", "5"))
    index.observe("MODIFIED", pod("a", "u1", "7", node="n1"))
    index.observe(None, pod("a", "u1", "6"))  # an older version delivered late (a replayed listing)
    index.observe("ADDED", pod("b", "u2", "8", namespace="other"))
    assert names(index) == [("a", "n1"), ("b", None)]
    assert names(index, "ml") == [("a", "n1")]


def test_a_pod_just_created_counts_until_the_watch_brings_it() -> None:
    index = PodIndex()
    index.expect(pod("new", None, ""))
    assert names(index) == [("new", None)]
    index.observe("ADDED", pod("new", "u3", "9", node="n2"))
    assert [p["metadata"].get("uid") for p in index.pods([])] == ["u3"]


def test_a_deletion_removes_only_the_pod_it_names() -> None:
    index = PodIndex()
    index.observe("ADDED", pod("a", "u1", "5"))
    index.observe("DELETED", pod("a", "u0", "4"))  # an earlier pod of the same name: not this one
    assert names(index) == [("a", None)]
    index.observe("DELETED", pod("a", "u1", "6"))
    assert names(index) == []


def test_a_full_list_replaces_the_index_but_keeps_expected_pods(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = iter([100.0, 100.0, 100.0 + pod_index.RESEED_SECONDS + 10])
    monkeypatch.setattr(pod_index.time, "monotonic", lambda: next(clock))
    index = PodIndex()
    assert index.due()
    index.observe("ADDED", pod("gone", "u1", "5"))  # deleted before the watch started: no DELETED event will come
    index.expect(pod("fresh", None, ""))
    index.seed([pod("kept", "u2", "7")])
    assert names(index) == [("fresh", None), ("kept", None)]
    assert not index.due() and index.due()  # at the list, then past RESEED_SECONDS after it


def job_pod(name: str, job: str, owner: str, version: str, uid: str | None = "u") -> dict[str, Any]:
    made = pod(name, uid and f"{uid}-{name}", version)
    made["metadata"]["labels"] = {"tandem.dev/job": job}
    made["metadata"]["ownerReferences"] = [{"uid": owner, "controller": True}]
    return made


def test_a_jobs_pods_are_those_of_its_label_and_its_uid_as_the_watch_last_saw_them() -> None:
    index = PodIndex()
    index.observe(None, job_pod("llama-a1-0", "llama", "job-1", "5"))
    index.observe(None, job_pod("llama-a1-1", "llama", "job-1", "6"))
    index.observe(None, job_pod("llama-a0-0", "llama", "deleted-job", "4"))  # a deleted job of the same name
    index.observe(None, job_pod("other-a1-0", "other", "job-2", "7"))
    index.observe("MODIFIED", {**job_pod("llama-a1-1", "llama", "job-1", "8"), "spec": {"nodeName": "n1"}})
    index.observe("DELETED", job_pod("llama-a1-0", "llama", "job-1", "9"))
    index.expect(job_pod("llama-a2-0", "llama", "job-1", "", uid=None))
    assert [(p["metadata"]["name"], p["metadata"]["resourceVersion"]) for p in index.job_pods("ml", "llama", "job-1")
            ] == [("llama-a1-1", "8"), ("llama-a2-0", "")]
    index.unexpect(job_pod("llama-a2-0", "llama", "job-1", "", uid=None))  # its create failed
    index.unexpect(job_pod("llama-a1-1", "llama", "job-1", "8"))  # created: stays
    assert [p["metadata"]["name"] for p in index.job_pods("ml", "llama", "job-1")] == ["llama-a1-1"]
    assert index.job_pods("other-ns", "llama", "job-1") == []


def test_a_jobs_fresh_read_corrects_its_pods_in_the_index() -> None:
    """A deletion the watch missed leaves a ghost; the job's next fresh read (before any delete it decides) drops it,
    keeps the newer of two versions, and keeps the pod just created that the list does not show yet."""
    index = PodIndex()
    index.observe(None, job_pod("llama-a1-0", "llama", "job-1", "5"))
    index.observe(None, job_pod("llama-a1-1", "llama", "job-1", "9"))  # newer than the list below
    index.observe(None, job_pod("llama-a0-0", "llama", "job-0", "2"))  # a deleted job's: not this one's to drop
    index.expect(job_pod("llama-a2-0", "llama", "job-1", "", uid=None))
    index.correct("ml", "llama", "job-1", [job_pod("llama-a1-1", "llama", "job-1", "8")])
    assert sorted((p["metadata"]["name"], p["metadata"]["resourceVersion"]) for p in index.pods([])) == [
        ("llama-a0-0", "2"), ("llama-a1-1", "9"), ("llama-a2-0", "")]


def test_a_list_read_while_the_watch_went_on_undoes_none_of_its_events() -> None:
    """Found at 2,000 nodes: the list of 8,000 pods takes seconds; pods that started running meanwhile came back
    Pending from it, and their jobs waited for ever (no further event comes for a running pod). As client-go's
    Replace: the newer version wins, a pod the watch brought after the list stays, a deletion seen meanwhile holds."""
    index = PodIndex()
    index.observe(None, pod("running", "u1", "5"))
    index.observe(None, pod("ghost", "u2", "3"))  # deleted while no watch ran: the list drops it
    index.listing()  # the list is read at version 10 ...
    index.observe("MODIFIED", pod("running", "u1", "11", node="n1"))  # ... while the watch goes on
    index.observe("ADDED", pod("created", "u3", "12", node="n2"))
    index.observe("DELETED", pod("deleted", "u4", "13"))
    index.seed([pod("running", "u1", "5"), pod("deleted", "u4", "9"), pod("other", "u5", "10", node="n3")])
    assert names(index) == [("created", "n2"), ("other", "n3"), ("running", "n1")]


def _ended(name: str, uid: str, version: str, phase: str, disrupted: bool = False) -> dict[str, Any]:
    body = job_pod(name, "llama", uid, version)
    body["status"] = {"phase": phase}
    if disrupted:
        body["status"]["conditions"] = [{"type": "DisruptionTarget", "status": "True",
                                         "reason": "EvictionByEvictionAPI"}]
    return body


def test_a_deleted_pods_last_state_is_kept_when_it_says_why_the_pod_ended() -> None:
    """The DELETED event carries the pod's last state: kept for the job's reconcile when it shows an end with a
    cause (Failed, or marked for disruption), never a pod the operator itself deleted while it ran."""
    index = PodIndex()
    index.observe("DELETED", _ended("llama-a1-1", "job-1", "9", "Succeeded", disrupted=True))  # evicted
    index.observe("DELETED", _ended("llama-a1-2", "job-1", "10", "Failed"))  # failed, deleted before it was read
    index.observe("DELETED", _ended("llama-a1-0", "job-1", "11", "Running"))  # deleted while running: no cause
    index.observe("DELETED", _ended("llama-a1-3", "job-1", "12", "Succeeded"))  # finished
    index.observe("DELETED", _ended("llama-a0-1", "deleted-job", "4", "Failed"))  # a deleted job of the same name
    assert [p["metadata"]["name"] for p in index.departed("ml", "llama", "job-1")] == ["llama-a1-1", "llama-a1-2"]
    index.forget("ml", "llama")
    assert index.departed("ml", "llama", "job-1") == []


def test_departed_pods_are_bounded_across_jobs(monkeypatch: pytest.MonkeyPatch) -> None:
    """The newest DEPARTED_KEPT records of all jobs together: the pods a deleted job's garbage collection removes
    after the job was forgotten, and the jobs of a sweep that come and go, cannot grow the operator's memory."""
    monkeypatch.setattr(pod_index, "DEPARTED_KEPT", 3)
    index = PodIndex()
    for n in range(3):
        index.observe("DELETED", _ended(f"llama-a1-{n}", "job-1", str(n), "Failed"))
    other = _ended("other-a1-0", "job-2", "9", "Failed")
    other["metadata"]["labels"] = {"tandem.dev/job": "other"}
    index.observe("DELETED", other)
    index.forget("ml", "llama")
    index.observe("DELETED", _ended("llama-a1-3", "job-1", "10", "Failed"))  # the GC's, after the job went
    assert [p["metadata"]["name"] for p in index.departed("ml", "llama", "job-1")] == ["llama-a1-3"]
    assert [p["metadata"]["name"] for p in index.departed("ml", "other", "job-2")] == ["other-a1-0"]
    for n in range(4, 7):
        index.observe("DELETED", _ended(f"llama-a1-{n}", "job-1", str(n + 10), "Failed"))
    assert index.departed("ml", "other", "job-2") == []  # the oldest record went first
    assert [p["metadata"]["name"] for p in index.departed("ml", "llama", "job-1")] == [
        "llama-a1-4", "llama-a1-5", "llama-a1-6"]


def test_a_pod_of_the_same_name_replaces_its_predecessors_last_state() -> None:
    """A rank recreated under its name (a pod of an attempt that was still starting, a job restarted from attempt 1)
    must not inherit the last state of the pod it replaces."""
    index = PodIndex()
    index.observe("DELETED", _ended("llama-a1-1", "job-1", "9", "Succeeded", disrupted=True))
    index.expect(job_pod("llama-a1-1", "llama", "job-1", "", uid=None))  # the operator creates it again
    assert index.departed("ml", "llama", "job-1") == []
    index.observe("DELETED", _ended("llama-a1-2", "job-1", "11", "Failed"))
    index.observe("ADDED", job_pod("llama-a1-2", "llama", "job-1", "12", uid="new"))
    assert index.departed("ml", "llama", "job-1") == []


def test_a_pod_a_fresh_read_no_longer_shows_leaves_its_last_state_too() -> None:
    """The kubelet removed an evicted pod right after writing its end, and a job's fresh read (before a delete it
    decided) comes before the DELETED event: what the watch showed of it last is kept all the same."""
    index = PodIndex()
    index.observe("MODIFIED", _ended("llama-a1-1", "job-1", "9", "Succeeded", disrupted=True))
    index.observe("MODIFIED", _ended("llama-a1-0", "job-1", "10", "Running"))
    index.correct("ml", "llama", "job-1", [_ended("llama-a1-0", "job-1", "10", "Running")])
    assert [p["metadata"]["name"] for p in index.departed("ml", "llama", "job-1")] == ["llama-a1-1"]
