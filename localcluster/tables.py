"""Server-side `Table` output: what `kubectl get` prints (the CRD's printer columns, and the
usual columns of the built-ins it shows)."""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable
from typing import Any

from tandem.localcluster.resources import ResourceType
from tandem.localcluster.timestamps import parse as parse_time

Obj = dict[str, Any]


def human_age(timestamp: str | None, now: datetime.datetime | None = None) -> str:
    """The short duration kubectl shows: 42s, 5m10s, 3h, 12d."""
    if not timestamp:
        return "<unknown>"
    try:  # any RFC 3339 time (a custom object's date column is stored as sent); another text shows as is
        then = parse_time(timestamp)
    except ValueError:
        return timestamp
    seconds = int(((now or datetime.datetime.now(datetime.UTC)) - then).total_seconds())
    if seconds < 120:
        return f"{max(seconds, 0)}s"
    minutes = seconds // 60
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = minutes // 60
    return f"{hours}h" if hours < 48 else f"{hours // 24}d"


def json_path(obj: Any, path: str) -> Any:
    """The simple JSONPath forms printer columns use: `.a.b`, `.a[0].b`, `.a['x.y']`."""
    for part in re.findall(r"\.([^.\[]+)|\[(\d+)\]|\['([^']+)'\]", path):
        key, index, quoted = part
        if obj is None:
            return None
        if index:
            obj = obj[int(index)] if isinstance(obj, list) and int(index) < len(obj) else None
        else:
            obj = obj.get(key or quoted) if isinstance(obj, dict) else None
    return obj


def _cell(value: Any, column_type: str) -> Any:
    if value is None:
        return "<none>" if column_type == "string" else None
    if column_type == "date":
        return human_age(str(value))
    if isinstance(value, list):
        return ",".join(str(v) for v in value) if column_type == "string" else len(value)
    return value


def _pod_ready(pod: Obj) -> str:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    return f"{ready}/{len(pod.get('spec', {}).get('containers') or [])}"


def _pod_status(pod: Obj) -> str:
    if pod["metadata"].get("deletionTimestamp"):
        return "Terminating"
    for status in pod.get("status", {}).get("containerStatuses") or []:
        state = status.get("state", {})
        reason = (state.get("waiting") or state.get("terminated") or {}).get("reason")
        if reason:
            return str(reason)
    return str(pod.get("status", {}).get("reason") or pod.get("status", {}).get("phase", "Unknown"))


def _node_status(node: Obj) -> str:
    ready = next((c for c in node.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"), None)
    status = "Ready" if ready and ready.get("status") == "True" else "NotReady"
    return status + (",SchedulingDisabled" if node.get("spec", {}).get("unschedulable") else "")


Column = tuple[str, str, Callable[[Obj], Any]]
_BUILTIN_COLUMNS: dict[str, list[Column]] = {
    "Pod": [
        ("Ready", "string", _pod_ready),
        ("Status", "string", _pod_status),
        ("Restarts", "integer", lambda p: sum(s.get("restartCount", 0)
                                              for s in p.get("status", {}).get("containerStatuses") or [])),
        ("Age", "string", lambda p: human_age(p["metadata"].get("creationTimestamp"))),
        ("Node", "string", lambda p: p.get("spec", {}).get("nodeName") or "<none>"),
    ],
    "Node": [
        ("Status", "string", _node_status),
        ("Age", "string", lambda n: human_age(n["metadata"].get("creationTimestamp"))),
    ],
    "Service": [
        ("Type", "string", lambda s: s.get("spec", {}).get("type", "ClusterIP")),
        ("Cluster-IP", "string", lambda s: s.get("spec", {}).get("clusterIP", "<none>")),
        ("Age", "string", lambda s: human_age(s["metadata"].get("creationTimestamp"))),
    ],
    "Event": [
        ("Last Seen", "string", lambda e: human_age(e.get("lastTimestamp") or e["metadata"].get("creationTimestamp"))),
        ("Type", "string", lambda e: e.get("type", "")),
        ("Reason", "string", lambda e: e.get("reason", "")),
        ("Object", "string", lambda e: f"{e.get('involvedObject', {}).get('kind', '').lower()}/"
                                       f"{e.get('involvedObject', {}).get('name', '')}"),
        ("Message", "string", lambda e: e.get("message", "")),
    ],
}
_AGE: Column = ("Age", "string", lambda o: human_age(o["metadata"].get("creationTimestamp")))


def _columns(rt: ResourceType) -> list[tuple[dict[str, Any], Callable[[Obj], Any]]]:
    name_col = {"name": "Name", "type": "string", "format": "name", "description": "Name of the object", "priority": 0}
    columns: list[tuple[dict[str, Any], Callable[[Obj], Any]]] = [(name_col, lambda o: o["metadata"]["name"])]
    if rt.schema is not None:
        printer = rt.printer_columns or [{"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}]
        for col in printer:
            definition = {"name": col["name"], "type": col.get("type", "string"), "format": col.get("format", ""),
                          "description": col.get("description", ""), "priority": col.get("priority", 0)}
            columns.append((definition, lambda o, c=col: _cell(json_path(o, c["jsonPath"]), c.get("type", "string"))))
        return columns
    for name, type_, getter in _BUILTIN_COLUMNS.get(rt.kind, [_AGE]):
        priority = 1 if name == "Node" else 0  # shown with -o wide, as kubectl does
        columns.append(({"name": name, "type": type_, "format": "", "description": "", "priority": priority}, getter))
    return columns


def to_table(rt: ResourceType, objects: list[Obj], resource_version: str, include_object: str) -> Obj:
    columns = _columns(rt)
    rows = []
    for obj in objects:
        if include_object == "Object":
            embedded = obj
        elif include_object == "None":
            embedded = None
        else:
            embedded = {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": obj["metadata"]}
        rows.append({"cells": [getter(obj) for _, getter in columns], "object": embedded})
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": [definition for definition, _ in columns],
        "rows": rows,
    }
