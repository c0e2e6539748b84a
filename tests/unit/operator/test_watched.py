"""The watch caches (issue 19): the newest version of each object wins, a deletion removes only the object it names,
the operator's own write is kept until the watch brings it, and a list keeps what the watch brought since."""

from __future__ import annotations

from typing import Any

from tandem.operator.watched import Watched


def obj(name: str, uid: str, version: str, **status: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "ml", "uid": uid, "resourceVersion": version}, "status": status}


def test_the_newest_version_of_each_object_wins() -> None:
    cache = Watched()
    cache.observe(None, obj("a", "u1", "5", phase="Pending"))
    cache.keep(obj("a", "u1", "9", phase="Running"))  # our own status write
    cache.observe("MODIFIED", obj("a", "u1", "7", phase="Starting"))  # the watch, behind our write
    assert cache.get("ml", "a") == obj("a", "u1", "9", phase="Running")
    cache.observe("ADDED", obj("a", "u2", "3"))  # deleted and created again under the name: another object
    assert cache.get("ml", "a") == obj("a", "u2", "3")


def test_a_deletion_removes_only_the_object_it_names() -> None:
    cache = Watched()
    cache.observe("ADDED", obj("a", "u2", "5"))
    cache.observe("DELETED", obj("a", "u1", "4"))
    assert cache.get("ml", "a") is not None
    cache.observe("DELETED", obj("a", "u2", "6"))
    assert (cache.get("ml", "a"), cache.values()) == (None, [])


def test_a_list_replaces_the_cache_but_not_with_older_versions() -> None:
    cache = Watched()
    cache.observe("ADDED", obj("gone", "u1", "3"))  # its deletion was missed
    cache.observe("MODIFIED", obj("b", "u2", "8"))
    assert not cache.seeded
    cache.seed([obj("b", "u2", "6"), obj("c", "u3", "7")])
    assert cache.seeded
    assert sorted((o["metadata"]["name"], o["metadata"]["resourceVersion"]) for o in cache.values()) == [
        ("b", "8"), ("c", "7")]


def test_the_caches_keep_no_managed_fields() -> None:
    cache = Watched()
    managed = obj("a", "u1", "5")
    managed["metadata"]["managedFields"] = [{"manager": "kubectl", "fieldsV1": {"f:spec": {}}}]
    cache.observe(None, managed)
    cache.seed([managed])
    assert cache.values() == [obj("a", "u1", "5")] and "managedFields" in managed["metadata"]
