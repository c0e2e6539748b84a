"""The store's API-server semantics, without HTTP."""

import asyncio
from typing import Any

import pytest

from tandem.localcluster.errors import KubernetesError
from tandem.localcluster.resources import ResourceType
from tandem.localcluster.selectors import parse_label_selector
from tandem.localcluster.store import Filter, Store

JOBS = ResourceType(group="tandem.dev", version="v1alpha1", plural="trainingjobs", kind="TrainingJob",
                    singular="trainingjob", namespaced=True, verbs=["get"], subresources=["status"])
PODS = ResourceType(group="", version="v1", plural="pods", kind="Pod", singular="pod", namespaced=True,
                    verbs=["get"], subresources=["status"])


def _job(name: str = "j", **labels: str) -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": labels}, "spec": {"nodes": 1}}


def test_create_stamps_identity_and_refuses_duplicates() -> None:
    store = Store()
    job = store.create(JOBS, "ml", _job())
    meta = job["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z") and meta["generation"] == 1
    assert job["apiVersion"] == "tandem.dev/v1alpha1" and job["kind"] == "TrainingJob"
    with pytest.raises(KubernetesError) as exc:
        store.create(JOBS, "ml", _job())
    assert exc.value.status == 409 and exc.value.reason == "AlreadyExists"


def test_resource_versions_grow_and_stale_writes_conflict() -> None:
    store = Store()
    first = store.create(JOBS, "ml", _job())
    second = store.update(JOBS, first, {**first, "spec": {"nodes": 2}}, None)
    assert int(second["metadata"]["resourceVersion"]) > int(first["metadata"]["resourceVersion"])
    assert second["metadata"]["generation"] == 2
    with pytest.raises(KubernetesError) as exc:
        store.update(JOBS, second, {**first, "spec": {"nodes": 3}}, None)  # carries the old resourceVersion
    assert exc.value.status == 409 and exc.value.reason == "Conflict"


def test_status_subresource_is_kept_apart_from_the_object() -> None:
    store = Store()
    job = store.create(JOBS, "ml", _job())
    with_status = store.update(JOBS, job, {**job, "status": {"phase": "Running"}, "spec": {"nodes": 5}}, "status")
    assert with_status["status"] == {"phase": "Running"} and with_status["spec"] == {"nodes": 1}
    assert with_status["metadata"]["generation"] == 1  # status writes do not bump the generation
    spec_write = store.update(JOBS, with_status, {**with_status, "status": {"phase": "Failed"}}, None)
    assert spec_write["status"] == {"phase": "Running"}


def test_no_op_update_keeps_the_resource_version() -> None:
    store = Store()
    job = store.create(JOBS, "ml", _job())
    assert store.update(JOBS, job, dict(job), None) is job


def test_deleting_an_owner_collects_its_dependents() -> None:
    store = Store()
    job = store.create(JOBS, "ml", _job())
    owner = [{"apiVersion": "tandem.dev/v1alpha1", "kind": "TrainingJob", "name": "j", "uid": job["metadata"]["uid"]}]
    store.create(PODS, "ml", {"metadata": {"name": "j-a1-0", "ownerReferences": owner}})
    store.create(PODS, "ml", {"metadata": {"name": "unrelated"}})
    store.delete(JOBS, job)
    assert [o["metadata"]["name"] for o in store.list(PODS, Filter())] == ["unrelated"]


def test_finalizers_hold_deletion_until_removed() -> None:
    store = Store()
    job = store.create(JOBS, "ml", {**_job(), "metadata": {"name": "j", "finalizers": ["x"]}})
    marked = store.delete(JOBS, job)
    assert marked["metadata"]["deletionTimestamp"]
    released = {**marked, "metadata": {**marked["metadata"], "finalizers": []}}
    store.update(JOBS, marked, released, None)
    assert store.find(JOBS.group_resource, "ml", "j") is None


async def _collect(store: Store, flt: Filter, since: int | None, count: int) -> list[tuple[str, str]]:
    events = []
    async for event_type, obj in store.watch(JOBS.group_resource, flt, since):
        events.append((event_type, obj["metadata"]["name"]))
        if len(events) == count:
            break
    return events


def test_watch_resumes_after_a_resource_version() -> None:
    store = Store()
    a = store.create(JOBS, "ml", _job("a"))
    store.create(JOBS, "ml", _job("b"))
    store.delete(JOBS, a)
    since = int(a["metadata"]["resourceVersion"])
    events = asyncio.run(_collect(store, Filter(), since, 2))
    assert events == [("ADDED", "b"), ("DELETED", "a")]


def test_watch_without_version_lists_first_then_follows() -> None:
    store = Store()
    store.create(JOBS, "ml", _job("a"))

    async def scenario() -> list[tuple[str, str]]:
        task = asyncio.create_task(_collect(store, Filter(), None, 2))
        await asyncio.sleep(0)
        store.create(JOBS, "ml", _job("b"))
        return await asyncio.wait_for(task, 5)

    assert asyncio.run(scenario()) == [("ADDED", "a"), ("ADDED", "b")]


def test_watch_with_selector_sees_objects_enter_and_leave() -> None:
    store = Store()
    job = store.create(JOBS, "ml", _job("a", team="x"))
    relabelled = store.update(JOBS, job, {**job, "metadata": {**job["metadata"], "labels": {"team": "y"}}}, None)
    store.update(JOBS, relabelled, {**relabelled, "metadata": {**relabelled["metadata"], "labels": {"team": "x"}}},
                 None)
    flt = Filter(labels=parse_label_selector("team=x"))
    events = asyncio.run(_collect(store, flt, int(job["metadata"]["resourceVersion"]), 2))
    assert events == [("DELETED", "a"), ("ADDED", "a")]


def test_watch_from_a_compacted_version_is_gone() -> None:
    store = Store(history=3)
    for name in "abcdef":
        store.create(JOBS, "ml", _job(name))

    with pytest.raises(KubernetesError) as exc:
        asyncio.run(_collect(store, Filter(), 1, 1))
    assert exc.value.status == 410


def test_a_dependent_created_after_its_owner_is_gone_is_collected() -> None:
    store = Store()
    job = store.create(JOBS, "ml", _job())
    owner = [{"apiVersion": "tandem.dev/v1alpha1", "kind": "TrainingJob", "name": "j", "uid": job["metadata"]["uid"]}]
    store.delete(JOBS, job)
    store.create(PODS, "ml", {"metadata": {"name": "late", "ownerReferences": owner}})
    assert store.list(PODS, Filter()) == []
