"""The object store behind the local API: what etcd plus the API server's generic registry do.

It stamps uid, resourceVersion (one monotonic counter), creationTimestamp, generation and
generateName; keeps the status subresource apart from the rest; refuses stale writes with 409;
serves watches that resume from a resourceVersion (410 when it is too old); and collects
garbage through ownerReferences. Everything runs on one asyncio loop, so each mutation is
atomic. Stored objects are never mutated in place: every write stores a new dict."""

from __future__ import annotations

import asyncio
import copy
import datetime
import uuid
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from tandem.localcluster import errors, garbage
from tandem.localcluster.resources import GroupResource, ResourceType
from tandem.localcluster.selectors import FieldRequirement, Requirement, match_fields, match_labels

Obj = dict[str, Any]
Key = tuple[GroupResource, str | None, str]
HISTORY = 20_000  # watch events kept for resuming; older resourceVersions get 410 Gone
NAMESPACES = GroupResource("", "namespaces")


def now_iso(clock: Callable[[], datetime.datetime] | None = None) -> str:
    moment = clock() if clock else datetime.datetime.now(datetime.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Event:
    rv: int
    resource: GroupResource
    type: str  # ADDED | MODIFIED | DELETED
    obj: Obj
    old: Obj | None


@dataclass
class Filter:
    namespace: str | None = None
    name: str | None = None
    labels: list[Requirement] = field(default_factory=list)
    fields: list[FieldRequirement] = field(default_factory=list)

    def matches(self, obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata", {})
        return (
            (self.namespace is None or meta.get("namespace") == self.namespace)
            and (self.name is None or meta.get("name") == self.name)
            and match_labels(self.labels, obj)
            and match_fields(self.fields, obj)
        )


def as_written(rt: ResourceType, current: Obj, new: Obj, subresource: str | None) -> Obj:
    """What an update really asks for, before it is validated (the strategies' PrepareForUpdate): a
    write to /status changes only the status; a write to an object with a status subresource keeps
    the stored status. The resourceVersion sent stays, for the store's conflict check."""
    if subresource == "status":
        if "status" not in new:
            return new
        sent = (new.get("metadata") or {}).get("resourceVersion")
        return {**current, "status": new["status"], "metadata": {**current["metadata"], "resourceVersion": sent}}
    if not rt.has_status:
        return new
    kept = {k: v for k, v in new.items() if k != "status"}
    return {**kept, "status": current["status"]} if "status" in current else kept


def _finished(key: Key, obj: Obj) -> bool:
    """Whether an object being deleted may go now (the registry's ShouldDeleteDuringUpdate): no
    finalizer left and its grace period over (a pod still in its grace period, a kubelet stopping it or
    a dead node's pod hanging in Terminating, keeps taking status writes); a namespace also needs its
    spec.finalizers gone (the namespace registry's own rule)."""
    meta = obj["metadata"]
    if not meta.get("deletionTimestamp") or meta.get("finalizers") or meta.get("deletionGracePeriodSeconds"):
        return False
    return key[0] != NAMESPACES or not (obj.get("spec") or {}).get("finalizers")


def _spec_part(obj: Obj) -> Obj:
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Store:
    def __init__(self, history: int = HISTORY) -> None:
        self.objects: dict[Key, Obj] = {}
        self.rv = 0
        self.history: deque[Event] = deque(maxlen=history)
        self._uids: dict[str, Key] = {}
        self._keys: dict[GroupResource, set[Key]] = {}  # the keys of each resource's objects
        self._subscribers: set[asyncio.Queue[Event]] = set()
        # Called with (key, object) after an object left the store, whatever removed it: the API
        # finishes a terminating namespace or CustomResourceDefinition when its last content goes.
        self.on_removed: list[Callable[[Key, Obj], None]] = []

    # --- reads -------------------------------------------------------------------------------
    def get(self, rt: ResourceType, namespace: str | None, name: str) -> Obj:
        obj = self.objects.get((rt.group_resource, namespace if rt.namespaced else None, name))
        if obj is None:
            raise errors.not_found(rt.plural, name, rt.group)
        return obj

    def find(self, resource: GroupResource, namespace: str | None, name: str) -> Obj | None:
        return self.objects.get((resource, namespace, name))

    def of_resource(self, resource: GroupResource) -> list[Obj]:
        """The objects of one resource, in no order, without a scan of every object."""
        return [self.objects[key] for key in self._keys.get(resource, ())]

    def key_of(self, uid: str) -> Key | None:
        return self._uids.get(uid)

    def list(self, rt: ResourceType, flt: Filter) -> list[Obj]:
        items = [o for (gr, _, _), o in self.objects.items() if gr == rt.group_resource and flt.matches(o)]
        return sorted(items, key=lambda o: (o["metadata"].get("namespace") or "", o["metadata"]["name"]))

    # --- writes ------------------------------------------------------------------------------
    def _next_rv(self) -> str:
        self.rv += 1
        return str(self.rv)

    def _emit(self, resource: GroupResource, type_: str, obj: Obj, old: Obj | None) -> None:
        event = Event(int(obj["metadata"]["resourceVersion"]), resource, type_, obj, old)
        self.history.append(event)
        for queue in self._subscribers:
            queue.put_nowait(event)

    def create(self, rt: ResourceType, namespace: str | None, body: Obj) -> Obj:
        obj = copy.deepcopy(body)
        meta = obj.setdefault("metadata", {})
        namespace = namespace if rt.namespaced else None
        if rt.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        key = (rt.group_resource, namespace, meta["name"])
        if key in self.objects:
            raise errors.already_exists(rt.plural, meta["name"], rt.group)
        obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
        for transient in ("resourceVersion", "deletionTimestamp", "deletionGracePeriodSeconds", "managedFields"):
            meta.pop(transient, None)
        meta.update(uid=str(uuid.uuid4()), creationTimestamp=now_iso(), generation=1, resourceVersion=self._next_rv())
        self.objects[key] = obj
        self._uids[meta["uid"]] = key
        self._keys.setdefault(key[0], set()).add(key)
        self._emit(rt.group_resource, "ADDED", obj, None)
        if meta.get("ownerReferences"):
            garbage.attempt_delete(self, key)  # an owner gone already: the garbage collector acts at once
        return obj

    def update(self, rt: ResourceType, current: Obj, new: Obj, subresource: str | None) -> Obj:
        """Store `new` in place of `current`, keeping what the caller may not change."""
        meta, old_meta = new.setdefault("metadata", {}), current["metadata"]
        sent_rv = meta.get("resourceVersion")
        if sent_rv and sent_rv != old_meta["resourceVersion"]:
            raise errors.conflict(rt.plural, old_meta["name"], rt.group)
        if meta.get("name", old_meta["name"]) != old_meta["name"]:
            raise errors.bad_request("the name of the object does not match the name on the URL")
        if subresource == "status":
            new = {**current, "status": new.get("status")} if "status" in new else dict(current)
        elif rt.has_status:
            new = {k: v for k, v in new.items() if k != "status"}
            if "status" in current:
                new["status"] = current["status"]
        meta = new["metadata"] = {**new.get("metadata", {})} if subresource != "status" else dict(old_meta)
        for kept in ("uid", "creationTimestamp", "namespace", "name", "deletionTimestamp",
                     "deletionGracePeriodSeconds", "generation"):
            if kept in old_meta:
                meta[kept] = old_meta[kept]
            else:
                meta.pop(kept, None)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        if _spec_part(new) != _spec_part(current):
            meta["generation"] = old_meta.get("generation", 1) + 1
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if new == current:
            return current  # a no-op write changes nothing and wakes no watcher, as in the API server
        meta["resourceVersion"] = self._next_rv()
        key = (rt.group_resource, old_meta.get("namespace"), old_meta["name"])
        self.objects[key] = new
        self._emit(rt.group_resource, "MODIFIED", new, current)
        if _finished(key, new):
            return self._remove(key)
        garbage.after_change(self, current, new)
        return new

    def delete(self, rt: ResourceType, current: Obj, policy: str = garbage.BACKGROUND) -> Obj:
        """Delete with a propagation policy (Background, Foreground or Orphan; see garbage.py)."""
        meta = current["metadata"]
        return garbage.delete(self, (rt.group_resource, meta.get("namespace"), meta["name"]), policy)

    def replace(self, key: Key, new: Obj) -> Obj:
        """Store what the API server's own registries and controllers write (a MODIFIED event); the
        object goes instead when that write ends its deletion (ShouldDeleteDuringUpdate: only
        DELETED is seen then)."""
        current = self.objects[key]
        if _finished(key, new):
            self.objects[key] = new
            return self._remove(key)
        new["metadata"]["resourceVersion"] = self._next_rv()
        self.objects[key] = new
        self._emit(key[0], "MODIFIED", new, current)
        garbage.after_change(self, current, new)
        return new

    def mark_deleting(self, key: Key, finalizer: str | None) -> Obj:
        """Set the deletionTimestamp of an object that finalizers keep (adding `finalizer`, one the
        garbage collector or a registry puts on for its own work); a pending one stays as it is."""
        current = self.objects[key]
        meta = {**current["metadata"]}
        finalizers = list(meta.get("finalizers") or [])
        if finalizer is not None and finalizer not in finalizers:
            finalizers.append(finalizer)
        meta.update(finalizers=finalizers, deletionTimestamp=meta.get("deletionTimestamp") or now_iso(),
                    deletionGracePeriodSeconds=meta.get("deletionGracePeriodSeconds") or 0)
        return self.replace(key, {**current, "metadata": meta})

    def release(self, key: Key, finalizer: str) -> Obj | None:
        """Remove one finalizer, as its controller does once its work is done."""
        current = self.objects.get(key)
        if current is None or finalizer not in (current["metadata"].get("finalizers") or []):
            return current
        meta = {**current["metadata"], "finalizers": [f for f in current["metadata"]["finalizers"] if f != finalizer]}
        if not meta["finalizers"]:
            del meta["finalizers"]
        return self.replace(key, {**current, "metadata": meta})

    def strip_owners(self, key: Key, uids: set[str]) -> Obj:
        """Drop the ownerReferences to these owners (the garbage collector's orphaning patch)."""
        current = self.objects[key]
        owners = [ref for ref in current["metadata"].get("ownerReferences") or [] if ref.get("uid") not in uids]
        meta = {k: v for k, v in current["metadata"].items() if k != "ownerReferences"}
        if owners:
            meta["ownerReferences"] = owners
        return self.replace(key, {**current, "metadata": meta})

    def remove_now(self, key: Key) -> Obj:
        return self._remove(key)

    def mark_terminating(self, key: Key, grace_seconds: int) -> Obj:
        """Graceful deletion (pods on a node): the kubelet removes the object once it has stopped.
        A pending one may only be shortened (a later delete with a smaller grace period)."""
        current = self.objects[key]
        pending = current["metadata"].get("deletionGracePeriodSeconds")
        if current["metadata"].get("deletionTimestamp") and (pending is None or grace_seconds >= pending):
            return current
        meta = {**current["metadata"], "deletionTimestamp": now_iso(),
                "deletionGracePeriodSeconds": grace_seconds, "resourceVersion": self._next_rv()}
        marked = {**current, "metadata": meta}
        self.objects[key] = marked
        self._emit(key[0], "MODIFIED", marked, current)
        return marked

    def _remove(self, key: Key) -> Obj:
        current = self.objects.pop(key)
        self._uids.pop(current["metadata"]["uid"], None)
        self._keys[key[0]].discard(key)
        gone = {**current, "metadata": {**current["metadata"], "resourceVersion": self._next_rv()}}
        self._emit(key[0], "DELETED", gone, current)
        garbage.after_removal(self, current)
        for listener in list(self.on_removed):
            listener(key, current)
        return gone

    def remove(self, key: Key) -> Obj | None:
        return self._remove(key) if key in self.objects else None

    # --- watches -----------------------------------------------------------------------------
    async def watch(self, resource: GroupResource, flt: Filter, since: int | None) -> AsyncIterator[tuple[str, Obj]]:
        """Yield (type, object) events after `since`; with `since=None`, first the current objects
        as ADDED. Objects that start or stop matching a selector appear as ADDED or DELETED."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)
        try:
            if since is None:
                since = self.rv  # later events are queued already; earlier ones are in the listing
                for (gr, _, _), obj in list(self.objects.items()):
                    if gr == resource and flt.matches(obj):
                        yield "ADDED", obj
            else:
                oldest = self.history[0].rv if self.history else self.rv + 1
                if since < oldest - 1 and since < self.rv:
                    raise errors.gone(f"too old resource version: {since} ({oldest - 1})")
                for event in list(self.history):
                    if event.rv > since and event.resource == resource:
                        queue.put_nowait(event)
            while True:
                event = await queue.get()
                if event.resource != resource or event.rv <= since:
                    continue
                now, before = flt.matches(event.obj), flt.matches(event.old)
                if event.type == "MODIFIED" and now != before:
                    yield ("ADDED" if now else "DELETED"), event.obj
                elif now or (event.type == "DELETED" and before):
                    yield event.type, event.obj
        finally:
            self._subscribers.discard(queue)

    def subscribe(self) -> asyncio.Queue[Event]:
        """Every event of every resource, for the simulated scheduler and kubelet."""
        queue: asyncio.Queue[Event] = asyncio.Queue()
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event]) -> None:
        self._subscribers.discard(queue)
