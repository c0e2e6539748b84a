"""What the API server (Kubernetes 1.32) refuses on an update of a built-in object because of the
object it replaces, and what its update strategies fill in from that object first.

- A pod's spec is immutable but for its containers' images, `activeDeadlineSeconds` (added, or
  lowered), added tolerations, and removed scheduling gates (pkg/apis/core/validation
  ValidatePodUpdate). `spec.nodeName` is set only by binding, which the local scheduler writes
  straight into the store, past admission, as the binding subresource does.
- A Service's cluster IP never changes once allocated; an update that leaves it out keeps it
  (pkg/registry/core/service/strategy.go patchAllocatedValues and NormalizeClusterIPs, then
  validateUpgradeDowngradeClusterIPs).
- An immutable ConfigMap keeps its data, binary data and immutability (ValidateConfigMapUpdate).

Comparisons are semantic, as apiequality.Semantic.DeepEqual's: a missing, null or empty value is
the same, and quantities compare by amount."""

from __future__ import annotations

import copy
import json
from typing import Any

from tandem.localcluster import pods
from tandem.localcluster.names import Cause, forbidden, invalid, required
from tandem.localcluster.quantities import QuantityError, parse_quantity

MAX_INT32 = 2**31 - 1
_UPDATABLE = ",".join((
    "`spec.containers[*].image`", "`spec.initContainers[*].image`", "`spec.activeDeadlineSeconds`",
    "`spec.tolerations` (only additions to existing tolerations)",
    "`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)",
))
IMMUTABLE_WHEN_SET = "field is immutable when `immutable` is set"
TOLERATION_CHANGED = "existing toleration can not be modified except its tolerationSeconds"


def _empty(value: Any) -> bool:
    return value is None or value == [] or value == {} or value == "" or value is False or value == 0


def semantic(value: Any, key: str = "") -> Any:
    """The value as Semantic.DeepEqual sees it: empty fields dropped (Go's zero values), resource
    quantities as amounts ("1000m" is "1")."""
    if isinstance(value, dict):
        quantities = key in ("limits", "requests")
        return {k: _amount(v) if quantities else semantic(v, k) for k, v in value.items() if not _empty(v)}
    if isinstance(value, list):
        return [semantic(v) for v in value]
    return value


def _amount(value: Any) -> Any:
    try:
        return parse_quantity(value)
    except (QuantityError, TypeError):
        return value


def _same(a: Any, b: Any) -> bool:
    return semantic(a) == semantic(b)


# --- pods ------------------------------------------------------------------------------------------------
def _container_causes(spec: dict[str, Any], old: dict[str, Any], kind: str) -> tuple[list[Cause], bool]:
    """ValidateContainerUpdates: the same number of containers (else stop there), each with an image."""
    new_list, old_list = spec.get(kind) or [], old.get(kind) or []
    if len(new_list) != len(old_list):
        return [forbidden(f"spec.{kind}", "pod updates may not add or remove containers")], True
    causes: list[Cause] = []
    for i, container in enumerate(new_list):
        image = str((container or {}).get("image") or "")
        if not image:
            causes.append(required(f"spec.{kind}[{i}].image"))
        elif image.strip() != image:
            causes.append(invalid(f"spec.{kind}[{i}].image", image, "must not have leading or trailing whitespace"))
    return causes, False


def _deadline_causes(new: Any, old: Any) -> list[Cause]:
    """activeDeadlineSeconds may be added, or lowered, never raised or removed."""
    path = "spec.activeDeadlineSeconds"
    if new is None:
        return [] if old is None else [invalid(path, None, "must not update from a positive integer to nil value")]
    if not isinstance(new, int) or not 0 <= new <= MAX_INT32:
        return [invalid(path, new, f"must be between 0 and {MAX_INT32}, inclusive")]
    if isinstance(old, int) and old < new:
        return [invalid(path, new, "must be less than or equal to previous value")]
    return []


def _toleration_causes(new: list[Any], old: list[Any]) -> list[Cause]:
    """validateOnlyAddedTolerations: every old toleration is still there (its seconds may change)."""
    for toleration in (t for t in old if isinstance(t, dict)):
        if not any(_same({**toleration, "tolerationSeconds": t.get("tolerationSeconds")}, t)
                   for t in new if isinstance(t, dict)):
            return [forbidden("spec.tolerations", TOLERATION_CHANGED)]
    return []


def _gate_causes(new: list[Any], old: list[Any]) -> list[Cause]:
    """validateOnlyDeletedSchedulingGates: gates may only be removed."""
    names = {str((g or {}).get("name")) for g in old}
    return [forbidden("spec.schedulingGates", f"only deletion is allowed, but found new scheduling gate '{name}'")
            for name in (str((g or {}).get("name")) for g in new) if name not in names]


def _munged(spec: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """The new spec with what may change taken from the old one, as ValidatePodUpdate munges it."""
    munged = dict(spec)
    for kind in ("containers", "initContainers"):
        pairs = zip(spec.get(kind) or [], old.get(kind) or [], strict=True)  # same lengths: checked before
        munged[kind] = [{**(c or {}), "image": (o or {}).get("image")} for c, o in pairs]
    for field in ("activeDeadlineSeconds", "tolerations", "schedulingGates"):
        munged[field] = old.get(field)
    grace, old_grace = munged.get("terminationGracePeriodSeconds"), old.get("terminationGracePeriodSeconds")
    if isinstance(old_grace, int) and old_grace < 0 and grace == 1:
        munged["terminationGracePeriodSeconds"] = old_grace
    return munged


def _differences(old: Any, new: Any, path: str) -> list[str]:
    """Where two semantic values differ, as `- path: old` / `+ path: new` lines (the API server
    appends a Go cmp.Diff of the specs; this names the same fields)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [line for key in sorted(set(old) | set(new))
                for line in _differences(old.get(key), new.get(key), f"{path}.{key}")]
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        pairs = enumerate(zip(old, new, strict=True))
        return [line for i, (o, n) in pairs for line in _differences(o, n, f"{path}[{i}]")]
    if old == new:
        return []
    shown = [json.dumps(v, default=str, sort_keys=True) for v in (old, new)]
    return [f"- {path}: {shown[0]}", f"+ {path}: {shown[1]}"]


def pod_update_causes(pod: dict[str, Any], old_pod: dict[str, Any]) -> list[Cause]:
    spec, old = pod.get("spec") or {}, old_pod.get("spec") or {}
    causes: list[Cause] = []
    for kind in ("containers", "initContainers"):
        found, stop = _container_causes(spec, old, kind)
        causes += found
        if stop:
            return causes
    deadline = _deadline_causes(spec.get("activeDeadlineSeconds"), old.get("activeDeadlineSeconds"))
    if deadline:
        return causes + deadline
    causes += _toleration_causes(spec.get("tolerations") or [], old.get("tolerations") or [])
    causes += _gate_causes(spec.get("schedulingGates") or [], old.get("schedulingGates") or [])
    diff = _differences(semantic(old), semantic(_munged(spec, old)), "spec")
    if diff:
        detail = f"pod updates may not change fields other than {_UPDATABLE}\n" + "\n".join(diff)
        causes.append(forbidden("spec", detail))
    return causes


# --- services --------------------------------------------------------------------------------------------
def _needs_cluster_ip(service: dict[str, Any]) -> bool:
    return (service.get("spec") or {}).get("type", "ClusterIP") != "ExternalName"


def prepare_service(service: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """patchAllocatedValues then NormalizeClusterIPs: an update that leaves the allocated cluster
    IP(s) out keeps them; a changed clusterIP with unchanged clusterIPs moves both."""
    spec, old_spec = dict(service.get("spec") or {}), old.get("spec") or {}
    spec.setdefault("type", "ClusterIP")
    if _needs_cluster_ip(old) and _needs_cluster_ip({"spec": spec}):
        if not spec.get("clusterIP"):
            spec["clusterIP"] = old_spec.get("clusterIP")
        if not spec.get("clusterIPs") and old_spec.get("clusterIPs"):
            spec["clusterIPs"] = old_spec["clusterIPs"]
    ip, old_ip = spec.get("clusterIP") or "", old_spec.get("clusterIP") or ""
    same_ips = (spec.get("clusterIPs") or []) == (old_spec.get("clusterIPs") or [])
    if ip != old_ip and same_ips:
        spec["clusterIPs"] = [ip] if ip else None
    return {**service, "spec": {k: v for k, v in spec.items() if v is not None}}


def _go_strings(values: list[Any]) -> str:
    return "[]string{" + ", ".join(json.dumps(str(v)) for v in values) + "}"


def service_update_causes(service: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    """validateUpgradeDowngradeClusterIPs: the primary cluster IP may not change (ExternalName
    services, which have none, are left alone)."""
    if not (_needs_cluster_ip(service) and _needs_cluster_ip(old)):
        return []
    ips, old_ips = (service.get("spec") or {}).get("clusterIPs") or [], (old.get("spec") or {}).get("clusterIPs") or []
    if ips and old_ips and ips[0] != old_ips[0]:
        message = f"Invalid value: {_go_strings(ips)}: may not change once set"
        return [{"field": "spec.clusterIPs[0]", "reason": "FieldValueInvalid", "message": message}]
    return []


# --- config maps -----------------------------------------------------------------------------------------
def config_map_update_causes(config_map: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    if old.get("immutable") is not True:
        return []
    causes = [] if config_map.get("immutable") is True else [forbidden("immutable", IMMUTABLE_WHEN_SET)]
    for field in ("data", "binaryData"):
        if (config_map.get(field) or {}) != (old.get(field) or {}):
            causes.append(forbidden(field, IMMUTABLE_WHEN_SET))
    return causes


# --- entry points ----------------------------------------------------------------------------------------
def prepare(kind: str, obj: dict[str, Any], old: dict[str, Any]) -> dict[str, Any]:
    """What the update strategy and decoding fill in before validation (PrepareForUpdate, defaults)."""
    if kind == "Pod":  # a patched object may share its parts with the stored one: default a copy
        return pods.default_spec(copy.deepcopy(obj))
    if kind == "Service":
        return prepare_service(obj, old)
    return obj


def update_causes(kind: str, obj: dict[str, Any], old: dict[str, Any]) -> list[Cause]:
    if kind == "Pod":
        return pod_update_causes(obj, old)
    if kind == "Service":
        return service_update_causes(obj, old)
    if kind == "ConfigMap":
        return config_map_update_causes(obj, old)
    return []
