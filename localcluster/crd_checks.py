"""What the API server (apiextensions-apiserver 1.32, pkg/apis/apiextensions/validation) refuses in a
CustomResourceDefinition beyond its name (`names.py` checks `<plural>.<group>`), on create and update:

- every version has a schema ("schemas are required");
- the schema is structural (pkg/apiserver/schema/validation.go validateStructuralInvariants):
  every node has a `type` unless it is `x-kubernetes-int-or-string` or
  `x-kubernetes-preserve-unknown-fields`, an array has `items`, the root is an object without
  `additionalProperties`, and the root's `metadata` restricts nothing but name and generateName;
  these causes are sorted by their text, as ValidateStructural sorts them;
- only then, the `x-kubernetes-validations` rules compile (a rule is given, its CEL parses).

cel-python parses CEL but does not type-check it, so a rule naming a field the schema lacks is
refused only when it runs, not here as the API server refuses it."""

from __future__ import annotations

import json
from typing import Any

import celpy
from lark.exceptions import UnexpectedToken

from tandem.localcluster.names import Cause, forbidden, invalid, required

Schema = dict[str, Any]
ROOT, ITEM, FIELD = "root", "item", "field"
_EMPTY_TYPE = {ROOT: "must not be empty at the root", ITEM: "must not be empty for specified array items",
               FIELD: "must not be empty for specified object fields"}
_METADATA_ONLY = "must not specify anything other than name and generateName, but metadata is implicitly specified"


def _is_schema(value: Any) -> bool:
    return isinstance(value, dict)


def _children(schema: Schema, path: str) -> list[tuple[Schema, str, str]]:
    """(child schema, its path, its level): items, properties, then additionalProperties."""
    found: list[tuple[Schema, str, str]] = []
    if _is_schema(schema.get("items")):
        found.append((schema["items"], f"{path}.items", ITEM))
    for key, child in sorted((schema.get("properties") or {}).items()):
        if _is_schema(child):
            found.append((child, f"{path}.properties[{key}]", FIELD))
    if _is_schema(schema.get("additionalProperties")):
        found.append((schema["additionalProperties"], f"{path}.additionalProperties", FIELD))
    return found


def _metadata_causes(schema: Schema, path: str) -> list[Cause]:
    """At the root, `metadata` is an object that may restrict name and generateName, nothing else."""
    metadata = (schema.get("properties") or {}).get("metadata")
    if not _is_schema(metadata):
        return []
    at = f"{path}.properties[metadata]"
    causes = [] if metadata.get("type") == "object" else [invalid(f"{at}.type", str(metadata.get("type") or ""),
                                                                  "must be object")]
    rest = {k: v for k, v in metadata.items() if k not in ("type", "default", "properties")}
    if rest or set(metadata.get("properties") or {}) - {"name", "generateName"}:
        causes.append(forbidden(at, _METADATA_ONLY))
    return causes


def _node_causes(schema: Schema, level: str, path: str) -> list[Cause]:
    kind = str(schema.get("type") or "")
    causes: list[Cause] = []
    if kind == "array" and not _is_schema(schema.get("items")):
        causes.append(required(f"{path}.items", "must be specified"))
    if level == ROOT and schema.get("additionalProperties") is not None:
        causes.append(forbidden(f"{path}.additionalProperties", "must not be used at the root"))
    if schema.get("x-kubernetes-int-or-string") and schema.get("x-kubernetes-preserve-unknown-fields"):
        causes.append(invalid(f"{path}.x-kubernetes-preserve-unknown-fields", True,
                              "must be false if x-kubernetes-int-or-string is true"))
    exempt = schema.get("x-kubernetes-int-or-string") or schema.get("x-kubernetes-preserve-unknown-fields")
    if not kind and not exempt:
        causes.append(required(f"{path}.type", _EMPTY_TYPE[level]))
    if level == ROOT and kind and kind != "object":
        causes.append(invalid(f"{path}.type", kind, "must be object at the root"))
    if level == ROOT:
        causes += _metadata_causes(schema, path)
    return causes


def structural_causes(schema: Schema, path: str, level: str = ROOT) -> list[Cause]:
    causes = _node_causes(schema, level, path)
    for child, child_path, child_level in _children(schema, path):
        causes += structural_causes(child, child_path, child_level)
    return causes


def _sorted(causes: list[Cause]) -> list[Cause]:
    """ValidateStructural sorts its errors by their text (field path, then message)."""
    return sorted(causes, key=lambda c: f"{c['field']}: {c['message']}")


# --- CEL rules ---------------------------------------------------------------------------------------
def _go_string_pointer(value: Any) -> str:
    return "(*apiextensions.FieldValueErrorReason)(nil)" if value is None else json.dumps(str(value))


def _rule_repr(rule: dict[str, Any]) -> str:
    """The rule as Go's %#v prints an apiextensions.ValidationRule (what field.Invalid shows)."""
    old_self = rule.get("optionalOldSelf")
    return (f"apiextensions.ValidationRule{{Rule:{json.dumps(str(rule.get('rule') or ''))}, "
            f"Message:{json.dumps(str(rule.get('message') or ''))}, "
            f"MessageExpression:{json.dumps(str(rule.get('messageExpression') or ''))}, "
            f"Reason:{_go_string_pointer(rule.get('reason'))}, "
            f"FieldPath:{json.dumps(str(rule.get('fieldPath') or ''))}, "
            f"OptionalOldSelf:{'(*bool)(nil)' if old_self is None else '(*bool)(0xc000000000)'}}}")


def _syntax_error(expression: str, exc: Exception) -> str:
    """cel-go's issue text: `ERROR: <input>:line:column: Syntax error: ...`, then the line, pointed at."""
    cause = exc.__cause__ or exc.__context__
    line, column = getattr(exc, "line", 1) or 1, getattr(exc, "column", 1) or 1
    token = getattr(cause, "token", None) if isinstance(cause, UnexpectedToken) else None
    found = "" if token is None else " '<EOF>'" if token.type == "$END" else f" '{token}'"
    lines = expression.splitlines() or [""]
    source = lines[min(line, len(lines)) - 1]
    pointer = "." * (column - 1) + "^"
    return f"ERROR: <input>:{line}:{column}: Syntax error: mismatched input{found}\n | {source}\n | {pointer}"


def compile_error(expression: str) -> str | None:
    """Why `expression` does not compile, in the API server's words; None when it does."""
    try:
        celpy.Environment().compile(expression)
    except celpy.CELParseError as exc:
        return _syntax_error(expression, exc)
    except Exception as exc:  # anything else cel-python cannot parse
        return f"ERROR: <input>:1:1: {exc}"
    return None


def _rule_causes(rule: Any, at: str) -> list[Cause]:
    if not isinstance(rule, dict):
        return []
    if not str(rule.get("rule") or "").strip():
        return [required(f"{at}.rule", "rule is not specified")]
    shown = _rule_repr(rule)
    causes: list[Cause] = []
    if (why := compile_error(str(rule["rule"]))) is not None:
        causes.append({"field": f"{at}.rule", "reason": "FieldValueInvalid",
                       "message": f"Invalid value: {shown}: compilation failed: {why}"})
    if rule.get("messageExpression") and (why := compile_error(str(rule["messageExpression"]))) is not None:
        causes.append({"field": f"{at}.messageExpression", "reason": "FieldValueInvalid",
                       "message": f"Invalid value: {shown}: messageExpression compilation failed: {why}"})
    return causes


def rule_causes(schema: Schema, path: str) -> list[Cause]:
    """Every node's x-kubernetes-validations, the node's own first, then its children's."""
    causes: list[Cause] = []
    for i, rule in enumerate(schema.get("x-kubernetes-validations") or []):
        causes += _rule_causes(rule, f"{path}.x-kubernetes-validations[{i}]")
    for child, child_path, _ in _children(schema, path):
        causes += rule_causes(child, child_path)
    return causes


def _version_causes(version: dict[str, Any], at: str) -> list[Cause]:
    schema = (version.get("schema") or {}).get("openAPIV3Schema")
    path = f"{at}.schema.openAPIV3Schema"
    if not _is_schema(schema):
        return [required(path, "schemas are required")]
    structural = _sorted(structural_causes(schema, path))
    return structural or rule_causes(schema, path)  # CEL is checked only in a structural schema


def crd_causes(crd: dict[str, Any]) -> list[Cause]:
    versions = (crd.get("spec") or {}).get("versions") or []
    causes: list[Cause] = []
    for i, version in enumerate(versions):
        if isinstance(version, dict):
            causes += _version_causes(version, f"spec.versions[{i}]")
    return causes
