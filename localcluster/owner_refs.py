"""ObjectMeta's ownerReferences, validated as the API server of Kubernetes 1.32 validates them
(k8s.io/apimachinery/pkg/api/validation/objectmeta.go, ValidateOwnerReferences), for every kind,
built-in or custom, on create and update: each reference names its owner's apiVersion (with a
version), kind, name and uid, and at most one of them is the controller.

The causes name `metadata.ownerReferences.<field>` without an index, as the API server does. A
missing field is an empty one (Go decodes a missing string as ""), so the message is the same
whether the field was left out or sent empty."""

from __future__ import annotations

import json
from typing import Any

from tandem.localcluster.names import Cause, invalid

PATH = "metadata.ownerReferences"
# The API server prints the offending list with Go's %#v; a set pointer shows its address, which
# differs on every request there, so any stable stand-in is as faithful.
_SET_POINTER = "0xc000000000"
_REQUIRED = ("apiVersion", "kind", "name", "uid")


def _has_version(api_version: str) -> bool:
    """schema.ParseGroupVersion as FromAPIVersionAndKind uses it: "v1" or "group/v1"; anything
    else (empty, "a/b/c", "apps/") leaves the version empty."""
    parts = api_version.split("/")
    return len(parts) in (1, 2) and bool(parts[-1])


def _reference_causes(ref: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    if not _has_version(str(ref.get("apiVersion") or "")):
        causes.append(invalid(f"{PATH}.apiVersion", str(ref.get("apiVersion") or ""), "version must not be empty"))
    for field, what in (("kind", "kind"), ("name", "name"), ("uid", "uid")):
        if not ref.get(field):
            causes.append(invalid(f"{PATH}.{field}", str(ref.get(field) or ""), f"{what} must not be empty"))
    return causes


def _go_bool_pointer(value: Any) -> str:
    return "(*bool)(nil)" if value is None else f"(*bool)({_SET_POINTER})"


def go_repr(refs: list[dict[str, Any]]) -> str:
    """The list as Go's %#v prints a []metav1.OwnerReference (what field.Invalid shows)."""
    shown = [
        f"v1.OwnerReference{{APIVersion:{json.dumps(str(r.get('apiVersion') or ''))}, "
        f"Kind:{json.dumps(str(r.get('kind') or ''))}, Name:{json.dumps(str(r.get('name') or ''))}, "
        f"UID:{json.dumps(str(r.get('uid') or ''))}, Controller:{_go_bool_pointer(r.get('controller'))}, "
        f"BlockOwnerDeletion:{_go_bool_pointer(r.get('blockOwnerDeletion'))}}}"
        for r in refs
    ]
    return "[]v1.OwnerReference{" + ", ".join(shown) + "}"


def owner_reference_causes(obj: dict[str, Any]) -> list[Cause]:
    """ValidateOwnerReferences: each reference's fields, then a second controller (and a third...)."""
    refs = (obj.get("metadata") or {}).get("ownerReferences")
    if not isinstance(refs, list):
        return []  # anything else is the schema's (or decoding's) business
    refs = [r for r in refs if isinstance(r, dict)]
    causes: list[Cause] = []
    first_controller = ""
    for ref in refs:
        causes += _reference_causes(ref)
        if ref.get("controller") is not True:
            continue
        current = f"{ref.get('kind') or ''}/{ref.get('name') or ''}"
        if not first_controller:
            first_controller = current
            continue
        message = (f'Only one reference can have Controller set to true. Found "true" in references for '
                   f"{first_controller} and {current}")
        causes.append({"field": PATH, "reason": "FieldValueInvalid",
                       "message": f"Invalid value: {go_repr(refs)}: {message}"})
    return causes


def as_decoded(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj` with every ownerReference's missing apiVersion/kind/name/uid as "", the way the API
    server decodes them before validating: the schema check (which would call them required
    properties) then leaves the verdict to `owner_reference_causes`, as in the API server."""
    meta = obj.get("metadata")
    refs = meta.get("ownerReferences") if isinstance(meta, dict) else None
    if not isinstance(refs, list):
        return obj
    filled = [{**r, **{k: "" for k in _REQUIRED if r.get(k) is None}} if isinstance(r, dict) else r for r in refs]
    return {**obj, "metadata": {**meta, "ownerReferences": filled}}
