"""Discovery documents (/api, /apis, resource lists), /version, and the small OpenAPI v3
documents kubectl needs: it checks that PATCH accepts `fieldValidation` before it leaves the
validation to the server, and `kubectl explain` reads the custom resources' schemas."""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from typing import Any

from tandem.localcluster import eviction
from tandem.localcluster.resources import ResourceType

VERSION = {
    "major": "1", "minor": "32", "gitVersion": "v1.32.0-tandem-local", "gitCommit": "", "gitTreeState": "clean",
    "buildDate": "2026-01-01T00:00:00Z", "goVersion": "n/a", "compiler": "tandem.localcluster",
    "platform": "linux/amd64",
}


def _by_group(types: list[ResourceType]) -> dict[str, dict[str, list[ResourceType]]]:
    groups: dict[str, dict[str, list[ResourceType]]] = defaultdict(lambda: defaultdict(list))
    for rt in types:
        groups[rt.group][rt.version].append(rt)
    return groups


def root_paths(types: list[ResourceType]) -> dict[str, Any]:
    paths = {"/api", "/api/v1", "/apis", "/openapi/v3", "/version"}
    for rt in types:
        if rt.group:
            paths |= {f"/apis/{rt.group}", f"/apis/{rt.group}/{rt.version}"}
    return {"paths": sorted(paths)}


def api_versions(server_address: str) -> dict[str, Any]:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def _group_doc(group: str, versions: list[str]) -> dict[str, Any]:
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in sorted(versions, reverse=True)]
    return {"name": group, "versions": entries, "preferredVersion": entries[0]}


def api_group_list(types: list[ResourceType]) -> dict[str, Any]:
    groups = _by_group(types)
    return {"kind": "APIGroupList", "apiVersion": "v1",
            "groups": [_group_doc(g, list(v)) for g, v in sorted(groups.items()) if g]}


def api_group(types: list[ResourceType], group: str) -> dict[str, Any] | None:
    versions = _by_group(types).get(group)
    return {"kind": "APIGroup", "apiVersion": "v1", **_group_doc(group, list(versions))} if versions else None


def resource_list(types: list[ResourceType], group: str, version: str) -> dict[str, Any] | None:
    served = _by_group(types).get(group, {}).get(version)
    if not served:
        return None
    resources = []
    for rt in sorted(served, key=lambda r: r.plural):
        resources.append({
            "name": rt.plural, "singularName": rt.singular, "namespaced": rt.namespaced, "kind": rt.kind,
            "verbs": rt.verbs, "shortNames": rt.short_names, "categories": rt.categories,
        })
        for sub in rt.subresources:  # subresources carry no short names or categories
            if rt.plural == "pods" and sub == eviction.SUBRESOURCE:
                resources.append(dict(eviction.DISCOVERY))  # another group's kind: drain looks for it
                continue
            verbs = ["get"] if sub == "log" else ["get", "patch", "update"]
            resources.append({"name": f"{rt.plural}/{sub}", "singularName": "", "namespaced": rt.namespaced,
                              "kind": rt.kind, "verbs": verbs})
    return {"kind": "APIResourceList", "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version, "resources": resources}


def _gv_path(group: str, version: str) -> str:
    return f"apis/{group}/{version}" if group else f"api/{version}"


def openapi_index(types: list[ResourceType]) -> dict[str, Any]:
    paths = {}
    for group, versions in _by_group(types).items():
        for version, served in versions.items():
            digest = hashlib.sha256(json.dumps(openapi_document(served), sort_keys=True).encode()).hexdigest()
            paths[_gv_path(group, version)] = {
                "serverRelativeURL": f"/openapi/v3/{_gv_path(group, version)}?hash={digest[:32].upper()}"
            }
    return {"paths": paths}


def _schema_name(rt: ResourceType) -> str:
    reversed_group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{reversed_group}.{rt.version}.{rt.kind}"


def openapi_document(served: list[ResourceType]) -> dict[str, Any]:
    field_validation = {"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": True},
                        "description": "Ignore, Warn or Strict: how the server treats unknown fields."}
    paths: dict[str, Any] = {}
    schemas: dict[str, Any] = {}
    for rt in served:
        gvk = {"group": rt.group, "version": rt.version, "kind": rt.kind}
        base = f"/{_gv_path(rt.group, rt.version)}/" + ("namespaces/{namespace}/" if rt.namespaced else "")
        ok = {"200": {"description": "OK"}}
        operation = {"x-kubernetes-group-version-kind": gvk, "responses": ok}
        paths[f"{base}{rt.plural}"] = {"post": {**operation, "parameters": [field_validation]}, "get": operation}
        paths[f"{base}{rt.plural}/{{name}}"] = {
            "get": operation,
            "put": {**operation, "parameters": [field_validation]},
            "patch": {**operation, "parameters": [field_validation]},
            "delete": operation,
        }
        if rt.schema is not None:
            schema = json.loads(json.dumps(rt.schema))
            schema.setdefault("properties", {}).update({
                "apiVersion": {"type": "string", "description": "APIVersion of this object."},
                "kind": {"type": "string", "description": "Kind of this object."},
                "metadata": {"type": "object", "description": "Standard object's metadata."},
            })
            schema["x-kubernetes-group-version-kind"] = [gvk]
            schemas[_schema_name(rt)] = schema
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (tandem local)", "version": VERSION["gitVersion"]},
            "paths": paths, "components": {"schemas": schemas}}
