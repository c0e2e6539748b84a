"""The garbage collector's decisions, taken at once inside the request that makes them due.

The real one (kube-controller-manager's garbagecollector, https://kubernetes.io/docs/concepts/architecture/
garbage-collection/) works from a graph in the background; here every step runs synchronously on the
store, so tests see the end state as soon as a request returns, with the same events in between:

- background (the default): the owner goes at once; a dependent whose owners are all gone is deleted
  (attemptToDeleteItem); one with a live owner only loses its references to the gone ones;
- foreground: the owner gets a deletionTimestamp and the `foregroundDeletion` finalizer, its
  dependents are deleted, and the finalizer is removed (so the owner goes) once no dependent with
  `blockOwnerDeletion: true` is left; a dependent kept by its own finalizer keeps the owner until it
  goes itself (`after_removal`);
- orphan: the owner gets the `orphan` finalizer, every dependent loses its reference to it, then the
  finalizer is removed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tandem.localcluster.store import Key, Obj, Store

BACKGROUND, FOREGROUND, ORPHAN = "Background", "Foreground", "Orphan"
POLICIES = (BACKGROUND, FOREGROUND, ORPHAN)
# metav1.FinalizerDeleteDependents and metav1.FinalizerOrphanDependents.
FOREGROUND_FINALIZER, ORPHAN_FINALIZER = "foregroundDeletion", "orphan"


def _owners(obj: Obj) -> list[dict[str, Any]]:
    return list(obj["metadata"].get("ownerReferences") or [])


def _finalizers(obj: Obj) -> list[str]:
    return list(obj["metadata"].get("finalizers") or [])


def dependents(store: Store, uid: str) -> list[Key]:
    return [key for key, obj in store.objects.items() if any(ref.get("uid") == uid for ref in _owners(obj))]


def _blocking(store: Store, uid: str) -> list[Key]:
    """The dependents that hold a foreground deletion (GC's blockingDependents)."""
    return [key for key, obj in store.objects.items()
            if any(ref.get("uid") == uid and ref.get("blockOwnerDeletion") for ref in _owners(obj))]


def _waiting_for_dependents(obj: Obj | None) -> bool:
    return obj is not None and bool(obj["metadata"].get("deletionTimestamp")) \
        and FOREGROUND_FINALIZER in _finalizers(obj)


def delete(store: Store, key: Key, policy: str) -> Obj:
    """Delete a stored object with a propagation policy; returns what the DELETE answers."""
    current = store.objects[key]
    meta = current["metadata"]
    if meta.get("deletionTimestamp") and meta.get("finalizers"):
        return current  # a deletion pending on finalizers: a second DELETE changes nothing
    if policy == ORPHAN:
        marked = store.mark_deleting(key, ORPHAN_FINALIZER)
        for dependent in dependents(store, meta["uid"]):
            store.strip_owners(dependent, {meta["uid"]})
        store.release(key, ORPHAN_FINALIZER)
        return marked
    if policy == FOREGROUND:
        marked = store.mark_deleting(key, FOREGROUND_FINALIZER)
        for dependent in dependents(store, meta["uid"]):
            attempt_delete(store, dependent)
        finish_foreground(store, key)
        return marked
    if meta.get("finalizers"):
        return store.mark_deleting(key, None)
    return store.remove_now(key)


def attempt_delete(store: Store, key: Key) -> None:
    """GC's attemptToDeleteItem for a dependent: delete it when no owner is left that is neither gone
    nor waiting for its dependents, else drop its references to those owners."""
    obj = store.objects.get(key)
    if obj is None:
        return
    if obj["metadata"].get("deletionTimestamp"):
        if _waiting_for_dependents(obj):
            finish_foreground(store, key)
        return  # being deleted already
    solid, dead, waiting = [], set(), False
    for ref in _owners(obj):
        owner_key = store.key_of(str(ref.get("uid")))
        owner = store.objects.get(owner_key) if owner_key else None
        if owner is None or _waiting_for_dependents(owner):
            dead.add(str(ref.get("uid")))
            waiting = waiting or owner is not None
        else:
            solid.append(ref)
    if solid:
        if dead:
            store.strip_owners(key, dead)
        return
    if waiting and dependents(store, obj["metadata"]["uid"]):
        delete(store, key, FOREGROUND)  # its own dependents go first, as the waiting owner's did
        return
    finalizers = _finalizers(obj)
    policy = ORPHAN if ORPHAN_FINALIZER in finalizers else FOREGROUND if FOREGROUND_FINALIZER in finalizers \
        else BACKGROUND
    delete(store, key, policy)


def finish_foreground(store: Store, key: Key) -> None:
    """GC's processDeletingDependentsItem: drop `foregroundDeletion` once no blocking dependent is left."""
    owner = store.objects.get(key)
    if not _waiting_for_dependents(owner):
        return
    assert owner is not None
    if not _blocking(store, owner["metadata"]["uid"]):
        store.release(key, FOREGROUND_FINALIZER)


def after_removal(store: Store, removed: Obj) -> None:
    """An object left the store: its dependents are collected, and an owner waiting in foreground
    deletion for it may go now (in the same request, not on a later sweep)."""
    for dependent in dependents(store, removed["metadata"]["uid"]):
        attempt_delete(store, dependent)
    for ref in _owners(removed):
        owner_key = store.key_of(str(ref.get("uid")))
        if owner_key is not None:
            finish_foreground(store, owner_key)


def after_change(store: Store, old: Obj, new: Obj) -> None:
    """A dependent changed: an owner waiting in foreground deletion that it no longer blocks (its
    reference removed, or blockOwnerDeletion cleared) may go now."""
    still = {ref.get("uid") for ref in _owners(new) if ref.get("blockOwnerDeletion")}
    for ref in _owners(old):
        if ref.get("blockOwnerDeletion") and ref.get("uid") not in still:
            owner_key = store.key_of(str(ref.get("uid")))
            if owner_key is not None:
                finish_foreground(store, owner_key)


def preview(obj: Obj, policy: str, stamp: str) -> Obj:
    """What a dry-run DELETE answers for an object deleted through `delete`: marked for deletion when
    a finalizer would keep it (its own, or the one foreground/orphan propagation adds; the real server
    adds that one whether or not dependents exist), else the object as it is."""
    meta = obj["metadata"]
    added = {FOREGROUND: FOREGROUND_FINALIZER, ORPHAN: ORPHAN_FINALIZER}.get(policy)
    if meta.get("deletionTimestamp") or (not meta.get("finalizers") and added is None):
        return obj
    finalizers = _finalizers(obj) + ([added] if added and added not in _finalizers(obj) else [])
    return {**obj, "metadata": {**meta, "deletionTimestamp": stamp, "deletionGracePeriodSeconds": 0,
                                "finalizers": finalizers}}
