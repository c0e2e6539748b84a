"""Which resources the local API serves: a few built-ins (described by kmock's bundled discovery
data) and the custom resources of every CustomResourceDefinition created at run time."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Any

import kmock


@dataclass(frozen=True)
class GroupResource:
    """Objects are stored per group and plural, so every served version sees the same objects."""

    group: str
    plural: str


@dataclass
class ResourceType:
    group: str
    version: str
    plural: str
    kind: str
    singular: str
    namespaced: bool
    verbs: list[str]
    short_names: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)
    subresources: list[str] = field(default_factory=list)
    schema: dict[str, Any] | None = None  # a CRD version's openAPIV3Schema
    printer_columns: list[dict[str, Any]] = field(default_factory=list)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_resource(self) -> GroupResource:
        return GroupResource(self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def has_status(self) -> bool:
        return "status" in self.subresources

    def qualified(self) -> str:
        """`pods`, or `trainingjobs.tandem.dev`, as error messages name a resource."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


# Only what the operator, kopf and kubectl use; everything else answers 404 as unknown.
BUILTINS: list[tuple[str, str, str]] = [
    ("", "v1", "pods"),
    ("", "v1", "services"),
    ("", "v1", "nodes"),
    ("", "v1", "events"),
    ("", "v1", "configmaps"),
    ("", "v1", "namespaces"),
    ("", "v1", "persistentvolumeclaims"),
    ("", "v1", "resourcequotas"),
    ("coordination.k8s.io", "v1", "leases"),
    ("apiextensions.k8s.io", "v1", "customresourcedefinitions"),
]
_SUBRESOURCES = {"pods": ["status", "log", "eviction"], "nodes": ["status"], "services": ["status"],
                 "namespaces": ["status"], "customresourcedefinitions": ["status"],
                 "persistentvolumeclaims": ["status"], "resourcequotas": ["status"]}


@cache
def _bundled() -> kmock.ResourcesArray:
    array = kmock.ResourcesArray()
    array.load_bundled()
    return array


def builtin_types() -> list[ResourceType]:
    bundled = _bundled()
    types = []
    for group, version, plural in BUILTINS:
        info = bundled[kmock.resource(group, version, plural)]
        types.append(ResourceType(
            group=group, version=version, plural=plural, kind=str(info.kind),
            singular=info.singular or plural[:-1], namespaced=bool(info.namespaced),
            verbs=sorted(info.verbs), short_names=sorted(info.shortnames), categories=sorted(info.categories),
            subresources=_SUBRESOURCES.get(plural, []),
        ))
    return types


def crd_types(crd: dict[str, Any]) -> list[ResourceType]:
    """One ResourceType per served version of a CustomResourceDefinition."""
    spec = crd["spec"]
    names = spec["names"]
    types = []
    for version in spec["versions"]:
        if not version.get("served", True):
            continue
        subresources = ["status"] if "status" in (version.get("subresources") or {}) else []
        types.append(ResourceType(
            group=spec["group"], version=version["name"], plural=names["plural"], kind=names["kind"],
            singular=names.get("singular") or names["kind"].lower(),
            namespaced=spec.get("scope", "Namespaced") == "Namespaced",
            verbs=["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            short_names=list(names.get("shortNames") or []), categories=list(names.get("categories") or []),
            subresources=subresources,
            schema=(version.get("schema") or {}).get("openAPIV3Schema"),
            printer_columns=list(version.get("additionalPrinterColumns") or []),
        ))
    return types
