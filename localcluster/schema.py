"""Structural-schema validation of custom objects, as the API server does it for a CRD:
null pruning, defaulting, unknown-field handling, type/format checks, and the
`x-kubernetes-validations` CEL rules (`cel_rules.py`).

Error causes are shaped like the API server's (`field`, `reason`, `message`) so that
`kubectl apply` prints the same text a user would see against a real cluster."""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from typing import Any

from tandem.localcluster import cel_rules

Cause = dict[str, str]

_TYPE_NAMES = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}


def _type_name(value: Any) -> str:
    return "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)


def _shown(value: Any) -> str:
    """How the API server prints a rejected value: JSON for scalars, the type name for the rest."""
    if isinstance(value, dict | list):
        return f'"{_type_name(value)}"'
    return json.dumps(value)


@dataclass
class Outcome:
    value: Any
    causes: list[Cause] = field(default_factory=list)
    unknown_fields: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _cause(path: str, message: str, reason: str = "FieldValueInvalid") -> Cause:
    return {"field": path, "reason": reason, "message": message}


def _type_ok(value: Any, schema: dict[str, Any]) -> bool:
    if schema.get("x-kubernetes-int-or-string"):
        return isinstance(value, int | str) and not isinstance(value, bool)
    expected = schema.get("type")
    if expected is None:
        return True
    if expected == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if expected == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return _type_name(value) == expected


def _in_body(path: str, value: Any, complaint: str) -> Cause:
    return _cause(path, f"Invalid value: {_shown(value)}: {path} in body {complaint}")


def _check_scalar(value: Any, schema: dict[str, Any], path: str, out: Outcome) -> None:
    if "enum" in schema and value not in schema["enum"]:
        supported = ", ".join(json.dumps(v) for v in schema["enum"])
        out.causes.append(
            _cause(path, f"Unsupported value: {json.dumps(value)}: supported values: {supported}",
                   "FieldValueNotSupported")
        )
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.causes.append(_in_body(path, value, f"should be greater than or equal to {schema['minimum']}"))
        if "maximum" in schema and value > schema["maximum"]:
            out.causes.append(_in_body(path, value, f"should be less than or equal to {schema['maximum']}"))
    if isinstance(value, str):
        if "minLength" in schema and len(value) < schema["minLength"]:
            out.causes.append(_in_body(path, value, f"should be at least {schema['minLength']} chars long"))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.causes.append(
                _cause(path, f"Too long: may not be longer than {schema['maxLength']}", "FieldValueTooLong")
            )
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.causes.append(_in_body(path, value, f"should match '{schema['pattern']}'"))


def _walk(value: Any, schema: dict[str, Any], path: str, out: Outcome) -> Any:
    """Returns the value with nulls pruned and defaults applied; collects causes on the way."""
    if not _type_ok(value, schema):
        expected = "integer or string" if schema.get("x-kubernetes-int-or-string") else schema.get("type")
        cause = _in_body(path, value, f"must be of type {expected}: {_shown(value)}")
        out.causes.append({**cause, "reason": "FieldValueTypeInvalid"})
        return value
    if isinstance(value, dict):
        value = _walk_object(value, schema, path, out)
    elif isinstance(value, list):
        if "minItems" in schema and len(value) < schema["minItems"]:
            out.causes.append(_in_body(path, len(value), f"should have at least {schema['minItems']} items"))
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.causes.append(_cause(path, f"Too many: {len(value)}: must have at most {schema['maxItems']} items",
                                     "FieldValueTooMany"))
        items = schema.get("items", {})
        value = [_walk(v, items, f"{path}[{i}]", out) for i, v in enumerate(value)]
    else:
        _check_scalar(value, schema, path, out)
    return value


def _walk_object(value: dict[str, Any], schema: dict[str, Any], path: str, out: Outcome) -> dict[str, Any]:
    properties: dict[str, Any] = schema.get("properties", {})
    additional = schema.get("additionalProperties")
    preserve = schema.get("x-kubernetes-preserve-unknown-fields", False)
    result: dict[str, Any] = {}
    prefix = f"{path}." if path else ""
    for key, child in value.items():
        child_path = f"{prefix}{key}"
        if not path and key in ("apiVersion", "kind", "metadata"):
            result[key] = child  # ObjectMeta is the API server's, whatever the CRD schema says
            continue
        child_schema = properties.get(key, additional if isinstance(additional, dict) else None)
        if child_schema is None:
            if preserve:
                result[key] = child
            else:
                out.unknown_fields.append(child_path)
            continue
        if child is None and not child_schema.get("nullable"):
            continue  # pruned, then defaulted below, as the API server does
        result[key] = child if child is None else _walk(child, child_schema, child_path, out)
    for key, child_schema in properties.items():
        if key not in result and "default" in child_schema:
            result[key] = _walk(copy.deepcopy(child_schema["default"]), child_schema, f"{prefix}{key}", out)
    for key in schema.get("required", []):
        if key not in result:
            out.causes.append(_cause(f"{prefix}{key}", "Required value", "FieldValueRequired"))
    return result


def validate(obj: dict[str, Any], schema: dict[str, Any], old: dict[str, Any] | None = None) -> Outcome:
    """Validate and default a whole custom object against its version's openAPIV3Schema; `old` is
    the stored object on an update (transition rules and ratcheting compare with it)."""
    out = Outcome(value=None)
    out.value = _walk(obj, schema, "", out)
    if not out.causes:  # as the API server, rules run only over values that passed the structural checks
        rules = cel_rules.evaluate(out.value, old, schema)
        out.causes += rules.causes
        out.warnings += rules.warnings
    return out
