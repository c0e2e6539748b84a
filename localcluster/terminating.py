"""DELETE requests end to end: options, dry runs, propagation (garbage.py), pods handed to the kubelet,
and the two kinds whose deletion deletes their contents first:

- a Namespace (namespace registry + namespace controller): with `spec.finalizers: [kubernetes]` it
  goes Terminating (deletionTimestamp, status.phase) while everything in it is deleted, finalizers
  honoured; it disappears when the last object in it is gone
  (https://kubernetes.io/docs/tasks/administer-cluster/namespaces/#deleting-a-namespace);
- a CustomResourceDefinition (apiextensions-apiserver's CRD registry + finalizer controller): it gets
  the `customresourcecleanup.apiextensions.k8s.io` finalizer and a Terminating condition while its
  custom objects are deleted, and goes with the last one.

Everything happens in the request that deletes, or in the one that removes the last content (a
finalizer released, a kubelet done): `Store.on_removed` calls back here."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tandem.localcluster import errors, garbage
from tandem.localcluster.deletion import DeleteOptions, check_preconditions, pod_deletion_grace, refuse_immortal
from tandem.localcluster.resources import GroupResource, ResourceType
from tandem.localcluster.store import NAMESPACES, Key, Obj, Store, now_iso
from tandem.localcluster.writes import KUBERNETES_FINALIZER

if TYPE_CHECKING:
    from tandem.localcluster.api import LocalAPI

CRD_CLEANUP = "customresourcecleanup.apiextensions.k8s.io"
CRDS = GroupResource("apiextensions.k8s.io", "customresourcedefinitions")


class Deletions:
    def __init__(self, api: LocalAPI) -> None:
        self.api = api
        self.store: Store = api.store
        api.store.on_removed.append(self._removed)

    # --- requests ------------------------------------------------------------------------------
    def delete(self, rt: ResourceType, current: Obj, options: DeleteOptions) -> Obj:
        """One object: admission (immortal namespaces), preconditions, then the deletion or, for
        `dryRun=All`, what it would answer without deleting anything (the dry-run docs)."""
        refuse_immortal(rt, current["metadata"]["name"])
        check_preconditions(rt, current, options.preconditions)
        if options.dry_run:
            return self.preview(rt, current, options)
        return self.delete_object(rt, current, options.policy, options.grace)

    def delete_collection(self, rt: ResourceType, items: list[Obj], options: DeleteOptions) -> list[Obj]:
        if "deletecollection" not in rt.verbs:  # namespaces: the installer registers no such route
            raise errors.KubernetesError(status=405, reason="MethodNotAllowed", details={},
                                         message="the server does not allow this method on the requested resource")
        if options.dry_run:
            return [self.preview(rt, obj, options) for obj in items]
        deleted = []
        for obj in items:
            meta = obj["metadata"]
            current = self.store.find(rt.group_resource, meta.get("namespace"), meta["name"])
            if current is not None and current["metadata"]["uid"] == meta["uid"]:  # not collected meanwhile
                deleted.append(self.delete_object(rt, current, options.policy, options.grace))
        return deleted

    def preview(self, rt: ResourceType, current: Obj, options: DeleteOptions) -> Obj:
        meta, stamp = current["metadata"], now_iso()
        if rt.group_resource == NAMESPACES and not meta.get("deletionTimestamp") and _spec_finalizers(current):
            return _terminating_namespace(current, stamp)
        if rt.group_resource == CRDS and not meta.get("deletionTimestamp"):
            return _terminating_crd(current, stamp)
        if rt.kind == "Pod":  # graceful with or without finalizers, as the deletion itself
            seconds = pod_deletion_grace(current, options.grace)
            if seconds > 0 and not meta.get("deletionTimestamp"):
                return {**current, "metadata": {**meta, "deletionTimestamp": stamp,
                                                "deletionGracePeriodSeconds": seconds}}
        return garbage.preview(current, options.policy, stamp)

    # --- deleting ------------------------------------------------------------------------------
    def delete_object(self, rt: ResourceType, current: Obj, policy: str, grace: object) -> Obj:
        meta = current["metadata"]
        key = (rt.group_resource, meta.get("namespace"), meta["name"])
        if rt.group_resource == NAMESPACES:
            return self._delete_namespace(key, current)
        if rt.group_resource == CRDS:
            return self._delete_crd(key, current)
        if rt.kind == "Pod":
            # Graceful whether or not finalizers hold the pod: the kubelet stops it with SIGTERM and its grace
            # period; the finalizers then keep the object after the kubelet is done (as on a real cluster).
            seconds = pod_deletion_grace(current, grace)
            hook = self.api.pod_deletion_hook
            if seconds > 0 and hook is not None and hook(key, current, seconds):
                return self.store.mark_terminating(key, seconds)
            if meta.get("finalizers"):
                # Finalizers keep the object; a force deletion still shortens a pending grace period to 0
                # (rest.BeforeDelete), which the kubelet acts on at once.
                return self.store.delete(rt, self.store.mark_terminating(key, 0), policy)
            # Immediate (force) deletion: as in the API server, the object is stamped with a zero
            # grace period (watchers see it) and removed in the same request, whatever still runs.
            current = self.store.mark_terminating(key, 0)
        return self.store.delete(rt, current, policy)

    def _delete_namespace(self, key: Key, namespace: Obj) -> Obj:
        if namespace["metadata"].get("deletionTimestamp"):
            return namespace
        if not _spec_finalizers(namespace) and not namespace["metadata"].get("finalizers"):
            return self.store.remove_now(key)  # finalized already: nothing deletes its contents (as for real)
        marked = self.store.replace(key, _terminating_namespace(namespace, now_iso()))
        name = key[2]
        for content in [k for k in self.store.objects if k[1] == name]:
            obj = self.store.objects.get(content)
            rt = self._type_of(content[0])
            if obj is not None and rt is not None:  # the namespace controller's deletion: background, graceful
                self.delete_object(rt, obj, garbage.BACKGROUND, None)
        self._finish_namespace(name)
        return marked

    def _delete_crd(self, key: Key, crd: Obj) -> Obj:
        if crd["metadata"].get("deletionTimestamp"):
            return crd
        marked = self.store.replace(key, _terminating_crd(crd, now_iso()))
        served = _served_resource(crd)
        rt = self._type_of(served)
        for content in [k for k in self.store.objects if k[0] == served]:
            obj = self.store.objects.get(content)
            if obj is not None and rt is not None:
                self.store.delete(rt, obj)
        self._finish_crd(key[2])
        return marked

    # --- finishing -----------------------------------------------------------------------------
    def _removed(self, key: Key, obj: Obj) -> None:
        if key[0] == CRDS:
            self.api._sync_crd(None, obj)  # its resources are no longer served
        if key[1] is not None:
            self._finish_namespace(key[1])
        if key[0].group:
            self._finish_crd(f"{key[0].plural}.{key[0].group}")

    def _finish_namespace(self, name: str) -> None:
        """The namespace controller's last step once no content is left: /finalize (spec.finalizers
        emptied), after which the namespace goes unless metadata.finalizers keep it."""
        key = (NAMESPACES, None, name)
        namespace = self.store.objects.get(key)
        if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
            return
        if KUBERNETES_FINALIZER not in _spec_finalizers(namespace) or any(k[1] == name for k in self.store.objects):
            return
        spec = {**namespace.get("spec", {}), "finalizers": [f for f in _spec_finalizers(namespace)
                                                             if f != KUBERNETES_FINALIZER]}
        self.store.replace(key, {**namespace, "spec": spec})

    def _finish_crd(self, name: str) -> None:
        key = (CRDS, None, name)
        crd = self.store.objects.get(key)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return
        if not any(k[0] == _served_resource(crd) for k in self.store.objects):
            self.store.release(key, CRD_CLEANUP)

    def _type_of(self, resource: GroupResource) -> ResourceType | None:
        return next((rt for rt in self.api.types.values() if rt.group_resource == resource), None)

    # --- admission for creates -------------------------------------------------------------------
    def refuse_create(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        """NamespaceLifecycle: no new content in a terminating namespace (403); the custom resource
        handler: no new object of a terminating CRD (405)."""
        if rt.namespaced and namespace is not None:
            found = self.store.find(NAMESPACES, None, namespace)
            if found is not None and (found.get("status") or {}).get("phase") == "Terminating":
                error = errors.forbidden(rt.qualified(), name, f"unable to create new content in namespace "
                                         f"{namespace} because it is being terminated")
                error.details["causes"] = [{"reason": "NamespaceTerminating", "field": "metadata.namespace",
                                            "message": f"namespace {namespace} is being terminated"}]
                raise error
        crd = self.store.find(CRDS, None, f"{rt.plural}.{rt.group}") if rt.group else None
        if rt.schema is not None and crd is not None and crd["metadata"].get("deletionTimestamp"):
            raise errors.KubernetesError(
                status=405, reason="MethodNotAllowed",
                message="create not allowed while custom resource definition is terminating",
                details={"group": rt.group, "kind": rt.plural})


def _spec_finalizers(namespace: Obj) -> list[str]:
    return list((namespace.get("spec") or {}).get("finalizers") or [])


def _served_resource(crd: Obj) -> GroupResource:
    return GroupResource(crd["spec"]["group"], crd["spec"]["names"]["plural"])


def _terminating_namespace(namespace: Obj, stamp: str) -> Obj:
    meta = {**namespace["metadata"], "deletionTimestamp": stamp, "deletionGracePeriodSeconds": 0}
    return {**namespace, "metadata": meta, "status": {**(namespace.get("status") or {}), "phase": "Terminating"}}


def _terminating_crd(crd: Obj, stamp: str) -> Obj:
    """The CRD registry's first step of a deletion: its finalizer, and the Terminating condition."""
    meta = {**crd["metadata"], "deletionTimestamp": stamp, "deletionGracePeriodSeconds": 0,
            "finalizers": [*(f for f in crd["metadata"].get("finalizers") or [] if f != CRD_CLEANUP), CRD_CLEANUP]}
    condition = {"type": "Terminating", "status": "True", "reason": "InstanceDeletionPending",
                 "lastTransitionTime": stamp,
                 "message": "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon"}
    status = crd.get("status") or {}
    conditions = [c for c in status.get("conditions") or [] if c.get("type") != "Terminating"] + [condition]
    return {**crd, "metadata": meta, "status": {**status, "conditions": conditions}}
