"""Rules of a create or update that are not about an object's contents (admission.py checks those):
what the generic registry and a few strategies decide before anything is validated."""

from __future__ import annotations

from typing import Any

from tandem.localcluster import errors
from tandem.localcluster.resources import ResourceType
from tandem.localcluster.store import Obj

KUBERNETES_FINALIZER = "kubernetes"  # v1.FinalizerKubernetes, in a namespace's spec.finalizers


def _meta(obj: Obj) -> dict[str, Any]:
    return obj.get("metadata") or {}


def require_resource_version(rt: ResourceType, body: Obj) -> None:
    """A PUT without metadata.resourceVersion is an unconditional update, which only strategies with
    AllowUnconditionalUpdate() accept: most built-ins do, custom resources do not
    (apiextensions-apiserver's customResourceStrategy). genericregistry.Store.Update names the
    resource, not the kind, in this error ("must be specified for an update")."""
    if rt.schema is None or str(_meta(body).get("resourceVersion") or "0") != "0":
        return
    cause = {"field": "metadata.resourceVersion", "reason": "FieldValueInvalid",
             "message": "Invalid value: 0x0: must be specified for an update"}
    raise errors.invalid(rt.plural, str(_meta(body).get("name") or ""), [cause], rt.group)


def refuse_new_finalizers(rt: ResourceType, current: Obj, new: Obj) -> None:
    """ValidateObjectMetaUpdate: once an object is being deleted, no finalizer may be added
    ("no new finalizers can be added if the object is being deleted"); the list is Go's %#v of the
    sorted new names."""
    if not _meta(current).get("deletionTimestamp"):
        return
    added = sorted(set(_meta(new).get("finalizers") or []) - set(_meta(current).get("finalizers") or []))
    if not added:
        return
    listed = ", ".join(f'"{name}"' for name in added)
    cause = {"field": "metadata.finalizers", "reason": "FieldValueForbidden",
             "message": "Forbidden: no new finalizers can be added if the object is being deleted, found new "
                        f"finalizers []string{{{listed}}}"}
    raise errors.invalid(rt.kind, str(_meta(current).get("name") or ""), [cause], rt.group)


def namespace_on_create(obj: Obj) -> Obj:
    """The namespace strategy's PrepareForCreate: spec.finalizers always holds `kubernetes`, the
    finalizer the namespace controller removes once it has deleted the namespace's contents."""
    spec = dict(obj.get("spec") or {})
    finalizers = list(spec.get("finalizers") or [])
    if KUBERNETES_FINALIZER not in finalizers:
        spec["finalizers"] = [*finalizers, KUBERNETES_FINALIZER]
    return {**obj, "spec": spec}


def namespace_on_update(current: Obj, new: Obj) -> Obj:
    """The namespace strategy's PrepareForUpdate: spec.finalizers changes only through /finalize."""
    spec = {k: v for k, v in (new.get("spec") or {}).items() if k != "finalizers"}
    if "finalizers" in (current.get("spec") or {}):
        spec["finalizers"] = current["spec"]["finalizers"]
    return {**new, "spec": spec}
