"""The fields of built-in objects the API server (Kubernetes 1.32, core/v1 validation) checks
beyond their types, where the local cluster depends on them: a pod's volumes, volume mounts,
hostname and subdomain (the kubelet turns them into folders and addresses) and containers, a
ConfigMap's keys (file names in a configMap volume), a Service's ports, a core/v1 Event's legacy
rules (what kopf and the operator post), and a CRD's schemas (`crd_checks.py`). The messages are
the API server's; see `names.py` for the name rules and `updates.py` for what updates may change."""

from __future__ import annotations

import json
from typing import Any

from tandem.localcluster import crd_checks
from tandem.localcluster.names import (
    Cause,
    invalid,
    is_config_map_key,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_local_descending_path,
    is_qualified_name,
    no_backsteps,
    required,
    value_causes,
)

EVENT_FIELD_LIMITS = (("reportingInstance", 128), ("action", 128), ("reason", 128), ("message", 1024))


def _not_found(path: str, value: str) -> Cause:
    return {"field": path, "reason": "FieldValueNotFound", "message": f"Not found: {json.dumps(value)}"}


def _duplicate(path: str, value: str) -> Cause:
    return {"field": path, "reason": "FieldValueDuplicate", "message": f"Duplicate value: {json.dumps(value)}"}


def _volume_causes(volumes: list[dict[str, Any]]) -> list[Cause]:
    causes: list[Cause] = []
    seen: set[str] = set()
    for i, volume in enumerate(volumes):
        at, name = f"spec.volumes[{i}]", str(volume.get("name") or "")
        if "hostPath" in volume:
            path = str((volume["hostPath"] or {}).get("path") or "")
            causes += value_causes(f"{at}.hostPath.path", path, no_backsteps) if path else \
                [required(f"{at}.hostPath.path")]
        if "persistentVolumeClaim" in volume and not (volume["persistentVolumeClaim"] or {}).get("claimName"):
            causes.append(required(f"{at}.persistentVolumeClaim.claimName"))
        causes += value_causes(f"{at}.name", name, is_dns1123_label) if name else [required(f"{at}.name")]
        if name in seen:
            causes.append(_duplicate(f"{at}.name", name))
        seen.add(name)
    return causes


def _mount_causes(at: str, mounts: list[dict[str, Any]], volumes: set[str]) -> list[Cause]:
    causes: list[Cause] = []
    for i, mount in enumerate(mounts):
        name = str(mount.get("name") or "")
        if name not in volumes:
            causes.append(_not_found(f"{at}[{i}].name", name))
        if mount.get("subPath"):  # the API server names the list here, not the item
            causes += value_causes(f"{at}.subPath", str(mount["subPath"]), is_local_descending_path)
    return causes


def pod_causes(pod: dict[str, Any]) -> list[Cause]:
    """ValidatePodSpec's volumes, volume mounts, hostname and subdomain, in its order."""
    spec = pod.get("spec") or {}
    volumes = [v for v in spec.get("volumes") or [] if isinstance(v, dict)]
    causes = _volume_causes(volumes)
    if not spec.get("containers"):  # validateContainers, right after the volumes
        causes.append(required("spec.containers"))
    names = {str(v.get("name") or "") for v in volumes}
    for kind in ("containers", "initContainers"):
        for i, container in enumerate(spec.get(kind) or []):
            causes += _mount_causes(f"spec.{kind}[{i}].volumeMounts", container.get("volumeMounts") or [], names)
    for field in ("hostname", "subdomain"):
        if spec.get(field):
            causes += value_causes(f"spec.{field}", str(spec[field]), is_dns1123_label)
    return causes


def config_map_causes(config_map: dict[str, Any]) -> list[Cause]:
    causes: list[Cause] = []
    for field in ("data", "binaryData"):
        for key in sorted(config_map.get(field) or {}):
            causes += value_causes(f"{field}[{key}]", key, is_config_map_key)
    return causes


def service_causes(service: dict[str, Any]) -> list[Cause]:
    """ValidateService's first rule: ports, unless the service is headless (clusterIP None) or an
    ExternalName (the type defaults to ClusterIP before validation)."""
    spec = service.get("spec") or {}
    headless = spec.get("clusterIP") == "None"
    if not spec.get("ports") and not headless and spec.get("type", "ClusterIP") != "ExternalName":
        return [required("spec.ports")]
    return []


def _namespace_mismatch(involved: str) -> Cause:
    return invalid("involvedObject.namespace", involved, "does not match event.namespace")


def _new_event_causes(event: dict[str, Any], namespace: str, involved: str) -> list[Cause]:
    """An Event with eventTime set must say who reports it, what it did and why."""
    causes: list[Cause] = []
    if not involved and namespace not in ("default", "kube-system"):
        causes.append(_namespace_mismatch(involved))
    component = str(event.get("reportingComponent") or "")
    if not component:
        causes.append(required("reportingComponent"))
    causes += value_causes("reportingComponent", component, is_qualified_name)
    for field, limit in EVENT_FIELD_LIMITS:
        text = str(event.get(field) or "")
        if not text and field != "message":
            causes.append(required(field))
        if len(text) > limit:
            causes.append(invalid(field, "", f"can have at most {limit} characters"))
    return causes


def event_causes(event: dict[str, Any]) -> list[Cause]:
    """legacyValidateEvent, all a core/v1 Event is checked for (ObjectMeta is not, beyond the
    path-segment name rule): the involved object's namespace, and for an Event with eventTime
    the reporting fields and length limits."""
    namespace = str((event.get("metadata") or {}).get("namespace") or "")
    involved = str((event.get("involvedObject") or {}).get("namespace") or "")
    if event.get("eventTime"):
        causes = _new_event_causes(event, namespace, involved)
    elif involved:
        causes = [] if namespace == involved else [_namespace_mismatch(involved)]
    else:
        causes = [] if namespace in ("", "default") else [_namespace_mismatch(involved)]
    return causes + value_causes("namespace", namespace, is_dns1123_subdomain)


def builtin_causes(kind: str, obj: dict[str, Any]) -> list[Cause]:
    if kind == "Pod":
        return pod_causes(obj)
    if kind == "ConfigMap":
        return config_map_causes(obj)
    if kind == "Service":
        return service_causes(obj)
    if kind == "CustomResourceDefinition":
        return crd_checks.crd_causes(obj)
    if kind == "Event" and obj.get("apiVersion", "v1") == "v1":
        return event_causes(obj)
    return []
