"""What the API server does to an object before storing it, per kind: validation (the CRD's
structural schema and CEL rules for custom objects, `kubernetes-validate` and `specs.py` for
built-ins, `owner_refs.py` for both, `updates.py` for what an update may not change), defaulting,
and the few fields built-in controllers fill in at once."""

from __future__ import annotations

import ipaddress
from typing import Any

import kubernetes_validate

from tandem.localcluster import errors, names, owner_refs, pods, schema, specs, timestamps, updates
from tandem.localcluster.builtin_schemas import validate_strict
from tandem.localcluster.resources import ResourceType

KUBERNETES_VERSION = "1.32"
_SERVICE_NET = ipaddress.ip_network("10.96.0.0/16")


class Admission:
    def __init__(self) -> None:
        self._next_ip = 10

    def admit(self, rt: ResourceType, obj: dict[str, Any], field_validation: str, creating: bool,
              old: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
        """Returns the object to store and the warnings to send; raises a 400/422 to refuse it.
        `old` is the stored object on an update (CEL transition rules, and the fields a built-in
        update may not change, compare with it; what an update leaves out may come from it)."""
        if rt.schema is None:
            if old is not None and not creating:
                obj = updates.prepare(rt.kind, obj, old)
            return self._default_builtin(rt, _check_builtin(rt, obj, creating, old), creating), []
        obj, causes, warnings = _check_custom(rt, obj, field_validation, creating, old)
        if causes:
            raise errors.invalid(rt.kind, obj.get("metadata", {}).get("name", ""), causes, rt.group)
        return obj, warnings

    def _default_builtin(self, rt: ResourceType, obj: dict[str, Any], creating: bool) -> dict[str, Any]:
        if not creating:
            return obj
        if rt.kind == "Pod":  # the status a request carries is dropped (the pod strategy's PrepareForCreate)
            obj = pods.default_spec(obj)
            obj["status"] = pods.created_status(obj)
        elif rt.kind == "Service":
            spec = obj.setdefault("spec", {})
            spec.setdefault("type", "ClusterIP")
            if "clusterIP" not in spec:
                spec["clusterIP"] = str(_SERVICE_NET[self._next_ip])
                self._next_ip += 1
            spec["clusterIPs"] = [spec["clusterIP"]]
        elif rt.kind == "Namespace":
            obj["status"] = {"phase": "Active"}
        elif rt.kind == "CustomResourceDefinition":
            names = obj.get("spec", {}).get("names", {})
            obj["status"] = {
                "acceptedNames": names,
                "storedVersions": [v["name"] for v in obj.get("spec", {}).get("versions", []) if v.get("storage")],
                "conditions": [
                    {"type": "NamesAccepted", "status": "True", "reason": "NoConflicts",
                     "message": "no conflicts found"},
                    {"type": "Established", "status": "True", "reason": "InitialNamesAccepted",
                     "message": "the initial names have been accepted"},
                ],
            }
        return obj


def _builtin_causes(obj: dict[str, Any]) -> list[schema.Cause]:
    try:
        validate_strict(obj, KUBERNETES_VERSION)  # kubernetes_validate.validate(strict=True), compiled once
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "<root>"
        return [{"field": path, "reason": "FieldValueInvalid", "message": f"Invalid value: {exc.message}"}]
    except kubernetes_validate.SchemaNotFoundError as exc:  # a kind the library does not know
        return [{"field": "kind", "reason": "FieldValueInvalid", "message": str(exc)}]
    return []


def _as_decoded(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """What the schema check sees: the fields Go decodes as empty when missing (a pod's containers,
    an ownerReference's uid...) present but empty, so that their validation speaks, as it does in the
    API server, rather than the schema's "is a required property"."""
    obj = owner_refs.as_decoded(obj)
    spec = obj.get("spec")
    if kind == "Pod" and isinstance(spec, dict) and "containers" not in spec:
        obj = {**obj, "spec": {**spec, "containers": []}}
    return obj


def _object_causes(kind: str, obj: dict[str, Any], creating: bool, old: dict[str, Any] | None) -> list[schema.Cause]:
    """ValidateObjectMeta's, then the kind's own, with the rules about the replaced object where
    the API server checks them: before the new object's spec (ValidateServiceUpdate,
    ValidateConfigMapUpdate), or after it (ValidatePodUpdate)."""
    changed = updates.update_causes(kind, obj, old) if old is not None and not creating else []
    meta = names.meta_causes(kind, obj, creating) + owner_refs.owner_reference_causes(obj)
    if kind == "Pod":
        return meta + specs.builtin_causes(kind, obj) + changed
    return meta + changed + specs.builtin_causes(kind, obj)


def _check_builtin(rt: ResourceType, obj: dict[str, Any], creating: bool,
                   old: dict[str, Any] | None = None) -> dict[str, Any]:
    """The built-in object as decoded (times normalised; a 400 if one does not parse); a 422 if it
    does not fit its type (it would not even decode, so nothing else is checked), breaks the API
    server's rules for names, labels and the fields checked in `names.py` and `specs.py`, or (an
    update) changes what `updates.py` keeps."""
    obj = timestamps.normalise_object(rt.kind, obj)
    causes = _builtin_causes(_as_decoded(rt.kind, obj)) or _object_causes(rt.kind, obj, creating, old)
    if causes:
        raise errors.invalid(rt.kind, obj.get("metadata", {}).get("name", ""), causes, rt.group)
    return obj


def _check_custom(rt: ResourceType, obj: dict[str, Any], field_validation: str, creating: bool,
                  old: dict[str, Any] | None) -> tuple[dict[str, Any], list[schema.Cause], list[str]]:
    """The custom object pruned and defaulted, its causes (metadata first, then the schema's and
    the CEL rules') and warnings (unknown fields under fieldValidation=Warn, ratcheted rules)."""
    assert rt.schema is not None
    causes = names.meta_causes(rt.kind, obj, creating) + owner_refs.owner_reference_causes(obj)
    outcome = schema.validate(obj, rt.schema, old)
    warnings: list[str] = []
    if outcome.unknown_fields:
        if field_validation == "Strict":
            listed = ", ".join(f'unknown field "{f}"' for f in outcome.unknown_fields)
            raise errors.bad_request(
                f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: strict decoding error: {listed}'
            )
        if field_validation != "Ignore":
            warnings += [f'unknown field "{f}"' for f in outcome.unknown_fields]
    return outcome.value, causes + outcome.causes, warnings + outcome.warnings
