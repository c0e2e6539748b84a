"""Label and field selectors, parsed from query strings and matched against objects (pure)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from tandem.localcluster.errors import bad_request

_SET_OP = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_OP = re.compile(r"^\s*([A-Za-z0-9./_-]+)\s*(==|=|!=)\s*([A-Za-z0-9._-]*)\s*$")
_EXISTS = re.compile(r"^\s*(!?)\s*([A-Za-z0-9./_-]+)\s*$")


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "in", "notin", "exists", "!exists"
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        if self.op == "exists":
            return self.key in labels
        if self.op == "!exists":
            return self.key not in labels
        if self.op == "in":
            return self.key in labels and labels[self.key] in self.values
        return self.key not in labels or labels[self.key] not in self.values  # notin


def _split_top_level(expr: str) -> list[str]:
    """Split on commas that are not inside `in (...)` value lists."""
    parts, depth, current = [], 0, []
    for char in expr:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def parse_label_selector(expr: str | None) -> list[Requirement]:
    if not expr:
        return []
    requirements = []
    for part in _split_top_level(expr):
        if m := _SET_OP.match(part):
            negate, key, op, values = m.groups()
            if negate:
                raise bad_request(f"unable to parse requirement: {part!r}")
            vals = frozenset(v.strip() for v in values.split(",") if v.strip())
            requirements.append(Requirement(key, op, vals))
        elif m := _EQ_OP.match(part):
            key, op, value = m.groups()
            requirements.append(Requirement(key, "notin" if op == "!=" else "in", frozenset({value})))
        elif m := _EXISTS.match(part):
            negate, key = m.groups()
            requirements.append(Requirement(key, "!exists" if negate else "exists"))
        else:
            raise bad_request(f"unable to parse requirement: found {part!r}, expected a label selector")
    return requirements


def match_labels(requirements: list[Requirement], obj: Mapping[str, Any]) -> bool:
    labels = obj.get("metadata", {}).get("labels") or {}
    return all(r.matches(labels) for r in requirements)


def _dotted(obj: Mapping[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, Mapping) else None
    return "" if value is None else str(value)


# The field selectors the operator and kubectl use; a real API server supports a per-kind list too.
FIELD_GETTERS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "metadata.name": lambda o: _dotted(o, "metadata.name"),
    "metadata.namespace": lambda o: _dotted(o, "metadata.namespace"),
    "spec.nodeName": lambda o: _dotted(o, "spec.nodeName"),
    "status.phase": lambda o: _dotted(o, "status.phase"),
    "involvedObject.kind": lambda o: _dotted(o, "involvedObject.kind"),
    "involvedObject.name": lambda o: _dotted(o, "involvedObject.name"),
    "involvedObject.namespace": lambda o: _dotted(o, "involvedObject.namespace"),
    "involvedObject.uid": lambda o: _dotted(o, "involvedObject.uid"),
    "involvedObject.apiVersion": lambda o: _dotted(o, "involvedObject.apiVersion"),
    "involvedObject.resourceVersion": lambda o: _dotted(o, "involvedObject.resourceVersion"),
    "involvedObject.fieldPath": lambda o: _dotted(o, "involvedObject.fieldPath"),
    "reason": lambda o: _dotted(o, "reason"),
    "type": lambda o: _dotted(o, "type"),
}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (FIELD_GETTERS[self.field](obj) == self.value) != self.negate


def parse_field_selector(expr: str | None) -> list[FieldRequirement]:
    if not expr:
        return []
    requirements = []
    for part in (p for p in expr.split(",") if p.strip()):
        m = re.match(r"^\s*([A-Za-z.]+)\s*(==|=|!=)\s*(.*?)\s*$", part)
        if not m:
            raise bad_request(f"invalid selector: {part!r}; can't understand {part!r}")
        field, op, value = m.groups()
        if field not in FIELD_GETTERS:
            raise bad_request(f'field label not supported: "{field}"')
        requirements.append(FieldRequirement(field, value, op == "!="))
    return requirements


def match_fields(requirements: list[FieldRequirement], obj: Mapping[str, Any]) -> bool:
    return all(r.matches(obj) for r in requirements)
