"""What the operator's watches delivered: the newest version of each object of one kind, so that a reconcile reads
the job, its Service and the pools from memory instead of the API (issue 19: reads per reconcile independent of the
cluster's size; client-go's informer caches do the same for Go controllers).

A cache may lag the API by the watch's delay. Whatever is decided from it is written guarded by the resourceVersion it
was read at (a stale job's status write answers 409) and destructive decisions are taken again on a fresh read
(operator/controller.py): a stale cache costs a retry, never a wrong delete."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

Obj = dict[str, Any]
Key = tuple[str, str]  # (namespace, name); "" for cluster-scoped objects


def key_of(obj: Obj) -> Key:
    meta = obj.get("metadata") or {}
    return str(meta.get("namespace") or ""), str(meta.get("name") or "")


def version_of(obj: Obj) -> int:
    """The resourceVersion as a number (etcd's revision; -1 when absent or opaque: any watched version wins)."""
    value = str((obj.get("metadata") or {}).get("resourceVersion") or "")
    return int(value) if value.isdigit() else -1


def uid_of(obj: Obj) -> str | None:
    return (obj.get("metadata") or {}).get("uid")


def slim(obj: Obj) -> Obj:
    """The object without `metadata.managedFields` (server-side apply's bookkeeping, often the larger part of an
    object and read by nothing here): what the caches keep, a thousand nodes' worth of pods in memory."""
    meta = obj.get("metadata") or {}
    if "managedFields" not in meta:
        return obj
    return {**obj, "metadata": {k: v for k, v in meta.items() if k != "managedFields"}}


def newer(candidate: Obj, known: Obj | None) -> bool:
    """Whether `candidate` replaces `known`: another object of the same name (a new uid), or a version not older."""
    return known is None or uid_of(candidate) != uid_of(known) or version_of(candidate) >= version_of(known)


class Watched:
    """One kind's objects, fed by its watch (`observe`), by a full list (`seed`) and by the operator's own writes
    (`keep`: the object as the API answered a write, before the watch brings it back)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[Key, Obj] = {}
        self._deleted: set[tuple[Key, str | None]] | None = None  # deletions seen while a list is on its way
        self.seeded = False

    def observe(self, event: str | None, obj: Obj) -> None:
        """A watch event (kopf's: None for the initial listing). A deletion removes only the object it names."""
        key, obj = self._key(obj), slim(obj)
        with self._lock:
            known = self._objects.get(key)
            if event == "DELETED":
                if known is not None and uid_of(known) in (None, uid_of(obj)):
                    self._drop(key)
                self._gone(obj)
                if self._deleted is not None:
                    self._deleted.add((key, uid_of(obj)))
            elif newer(obj, known):
                self._put(key, obj)

    # Where a subclass keeps an index of its own in step (called with the lock held).
    def _key(self, obj: Obj) -> Key:
        return key_of(obj)

    def _put(self, key: Key, obj: Obj) -> None:
        self._objects[key] = obj

    def _gone(self, obj: Obj) -> None:
        """A DELETED event's object, its last state (called with the lock held); a subclass may keep it."""

    def _drop(self, key: Key) -> None:
        del self._objects[key]

    def keep(self, obj: Obj) -> None:
        self.observe("MODIFIED", obj)

    def listing(self) -> None:
        """A full list is about to be read: deletions the watch reports until `seed` must not come back with it."""
        with self._lock:
            self._deleted = set()

    def seed(self, objects: Iterable[Obj], merge: bool = True) -> None:
        """A full list (read after `listing()`), merged with what the watch brought meanwhile, as client-go's
        informers replace their store: per object the newer of the two; an object the list does not show stays only
        if the watch brought it after the list was taken (a version above every listed one) or `_unlisted_stays`
        says so; one the watch saw deleted meanwhile does not come back. A list of thousands of pods takes seconds,
        and the pods it shows may have started running since: the list alone would undo those events. `merge=False`:
        nothing feeds the watch (tests without kopf), the list replaces all but what `_unlisted_stays` keeps."""
        listed: dict[Key, Obj] = {}
        for obj in objects:
            listed[self._key(obj)] = slim(obj)
        with self._lock:
            deleted, self._deleted = self._deleted or set(), None
            listed = {k: o for k, o in listed.items() if (k, uid_of(o)) not in deleted}
            horizon = max((version_of(o) for o in listed.values()), default=-1)
            merged: dict[Key, Obj] = {}
            for key, known in self._objects.items():
                if key in listed:
                    merged[key] = listed[key] if newer(listed[key], known) else known
                elif (merge and version_of(known) > horizon) or self._unlisted_stays(known):
                    merged[key] = known
            for key, obj in listed.items():
                merged.setdefault(key, obj)
            self._replace(merged)
            self.seeded = True

    def _unlisted_stays(self, obj: Obj) -> bool:
        return False

    def _replace(self, objects: dict[Key, Obj]) -> None:
        self._objects = objects

    def get(self, namespace: str, name: str) -> Obj | None:
        with self._lock:
            return self._objects.get((namespace, name))

    def values(self) -> list[Obj]:
        with self._lock:
            return list(self._objects.values())
