"""What the API server does to an object before storing it, per kind: validation (the CRD's
structural schema and CEL rules for custom objects, `kubernetes-validate` for built-ins),
defaulting, and the few fields built-in controllers fill in at once."""

from __future__ import annotations

import ipaddress
from typing import Any

import kubernetes_validate

from tandem.localcluster import errors, schema
from tandem.localcluster.resources import ResourceType

KUBERNETES_VERSION = "1.32"
_SERVICE_NET = ipaddress.ip_network("10.96.0.0/16")


class Admission:
    def __init__(self) -> None:
        self._next_ip = 10

    def admit(self, rt: ResourceType, obj: dict[str, Any], field_validation: str, creating: bool,
              old: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
        """Returns the object to store and the warnings to send; raises a 400/422 to refuse it.
        `old` is the stored object on an update (CEL transition rules compare with it)."""
        name = obj.get("metadata", {}).get("name", "")
        causes = schema.name_causes(obj) if creating else []
        warnings: list[str] = []
        if rt.schema is not None:
            outcome = schema.validate(obj, rt.schema, old)
            if outcome.unknown_fields:
                if field_validation == "Strict":
                    listed = ", ".join(f'unknown field "{f}"' for f in outcome.unknown_fields)
                    raise errors.bad_request(
                        f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}: '
                        f"strict decoding error: {listed}"
                    )
                if field_validation != "Ignore":
                    warnings += [f'unknown field "{f}"' for f in outcome.unknown_fields]
            causes += outcome.causes
            warnings += outcome.warnings
            obj = outcome.value
        else:
            causes += _builtin_causes(obj)
            if not causes:
                obj = self._default_builtin(rt, obj, creating)
        if causes:
            raise errors.invalid(rt.kind, name, causes, rt.group)
        return obj, warnings

    def _default_builtin(self, rt: ResourceType, obj: dict[str, Any], creating: bool) -> dict[str, Any]:
        if not creating:
            return obj
        if rt.kind == "Pod":
            spec = obj.setdefault("spec", {})
            spec.setdefault("restartPolicy", "Always")
            spec.setdefault("schedulerName", "default-scheduler")
            spec.setdefault("terminationGracePeriodSeconds", 30)
            for container in spec.get("containers") or []:
                container.setdefault("terminationMessagePath", "/dev/termination-log")
                container.setdefault("terminationMessagePolicy", "File")
            obj.setdefault("status", {"phase": "Pending"})
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
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as exc:
        path = ".".join(str(p) for p in exc.path) or "<root>"
        return [{"field": path, "reason": "FieldValueInvalid", "message": f"Invalid value: {exc.message}"}]
    except kubernetes_validate.SchemaNotFoundError as exc:  # a kind the library does not know
        return [{"field": "kind", "reason": "FieldValueInvalid", "message": str(exc)}]
    return []
