"""`x-kubernetes-validations` CEL rules of a CRD's schema, evaluated with cel-python as the API
server (Kubernetes 1.32, apiextensions-apiserver's schema/cel validator) evaluates them:

- a node's own rules first, then its children's; a null value is not validated;
- at the root of the object `self` has `apiVersion`, `kind` and of `metadata` only `name` and
  `generateName`;
- a rule that uses `oldSelf` (a transition rule) runs on updates only, and only where the value
  exists in the old object too: object fields by name, items of `x-kubernetes-list-type: map`
  lists by their keys; no other list item is correlated;
- a failing rule names `<path><fieldPath>`, shows the schema's type as the value, and says its
  `messageExpression`, else its `message`, else `failed rule: <rule>`; `reason` picks the error type;
- ratcheting (on by default since 1.30): a failing rule that does not use `oldSelf`, on a value
  the update leaves unchanged, is a warning instead of an error.

Not emulated: `optionalOldSelf` rules (cel-python has no optional values; they are skipped), cost
budgets, and the checks the API server makes when the CRD is created (rules that do not compile)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any

import celpy
from lark import Token

Cause = dict[str, str]
ROOT_META = ("name", "generateName")  # the only ObjectMeta fields CEL sees at the root


@dataclass
class RuleOutcome:
    causes: list[Cause] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Node:
    value: Any
    old: Any  # the correlated old value; None on create or where nothing correlates
    schema: dict[str, Any]
    path: str
    ratchet: bool  # an error that does not use oldSelf is only a warning here


@cache
def _compiled(expression: str) -> tuple[celpy.Runner, bool]:
    """The program, and whether it uses the `oldSelf` variable (which makes it a transition rule)."""
    env = celpy.Environment()
    ast = env.compile(expression)
    uses_old = any(t.type == "IDENT" and t.value == "oldSelf" for t in ast.scan_values(lambda v: isinstance(v, Token)))
    return env.program(ast), uses_old


def _root_view(obj: Any) -> Any:
    if not isinstance(obj, dict) or "metadata" not in obj:
        return obj
    meta = obj["metadata"] or {}
    return {**obj, "metadata": {k: meta[k] for k in ROOT_META if k in meta}}


def _target(path: str, field_path: str) -> str:
    """Where a failing rule points: its node's path plus the rule's fieldPath (`<nil>` at the root,
    as Go prints a nil field.Path)."""
    relative = re.sub(r"\['([^']*)'\]", r"[\1]", field_path).lstrip(".")
    if not relative:
        return path or "<nil>"
    return f"{path}.{relative}" if path else relative


def _error(target: str, shown: str, detail: str, reason: str | None) -> Cause:
    """fieldErrorForReason: Invalid unless the rule asks for Forbidden, Required or Duplicate."""
    if reason == "FieldValueForbidden":
        return {"field": target, "reason": reason, "message": f"Forbidden: {detail}"}
    if reason == "FieldValueRequired":
        return {"field": target, "reason": reason, "message": f"Required value: {detail}"}
    if reason == "FieldValueDuplicate":
        return {"field": target, "reason": reason, "message": f'Duplicate value: "{shown}"'}
    return {"field": target, "reason": "FieldValueInvalid", "message": f'Invalid value: "{shown}": {detail}'}


def _run(expression: str, activation: dict[str, Any]) -> Any:
    program, _ = _compiled(expression)
    result = program.evaluate(activation)
    if isinstance(result, celpy.CELEvalError):
        raise result
    return result


@lru_cache(maxsize=16384)
def _passes(expression: str, self_json: str, old_json: str | None) -> bool:
    """Whether the rule holds for these values, given as canonical JSON: CEL is pure, so a rule is evaluated once
    per distinct value (a status write leaves the spec, and most of the status, as they were; cel-python's
    interpreter costs about a millisecond a rule). An error is raised, never remembered."""
    activation = {"self": celpy.json_to_cel(json.loads(self_json))}
    if old_json is not None:
        activation["oldSelf"] = celpy.json_to_cel(json.loads(old_json))
    return bool(_run(expression, activation))


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _reason(exc: Exception) -> str:
    """cel-python's error text without the activation it appends (every variable's value)."""
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.split(" (in activation", 1)[0]


def _message(rule: dict[str, Any], activation: dict[str, Any]) -> str:
    if rule.get("messageExpression"):
        try:
            text = _run(rule["messageExpression"], activation)
        except Exception:  # a failing messageExpression falls back to the message
            text = None
        if isinstance(text, str) and text.strip() and "\n" not in text.strip():
            return text.strip()
    if (rule.get("message") or "").strip():
        return str(rule["message"]).strip()
    return f"failed rule: {rule['rule'].strip()}"


def _check(rule: dict[str, Any], node: Node, self_value: Any, old_value: Any, out: RuleOutcome) -> None:
    shown = str(node.schema.get("type") or "")
    rule_text = (rule.get("message") or "").strip() or rule["rule"].strip()  # ruleErrorString
    try:
        _, uses_old = _compiled(rule["rule"])
        if rule.get("optionalOldSelf") or (uses_old and old_value is None):
            return  # transition rules need a value to compare with; optional oldSelf is not emulated
        passed = _passes(rule["rule"], _canonical(self_value), _canonical(old_value) if uses_old else None)
    except Exception as exc:  # a rule that errors refuses the object, as in the API server
        out.causes.append(_error(node.path or "<nil>", shown, f"{_reason(exc)} evaluating rule: {rule_text}", None))
        return
    if passed:
        return
    activation = {"self": celpy.json_to_cel(self_value)}
    if uses_old:
        activation["oldSelf"] = celpy.json_to_cel(old_value)
    error = _error(_target(node.path, rule.get("fieldPath") or ""), shown, _message(rule, activation),
                   rule.get("reason"))
    if node.ratchet and not uses_old:
        out.warnings.append(f"{error['field']}: {error['message']}")
    else:
        out.causes.append(error)


def _map_list_match(item: Any, olds: list[Any], keys: list[str]) -> Any:
    if not isinstance(item, dict):
        return None
    wanted = [item.get(k) for k in keys]
    return next((o for o in olds if isinstance(o, dict) and [o.get(k) for k in keys] == wanted), None)


def _children(node: Node, root: bool) -> list[Node]:
    value, old, schema = node.value, node.old, node.schema
    found: list[Node] = []
    if isinstance(value, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key, child in value.items():
            child_schema = properties.get(key, additional if isinstance(additional, dict) else None)
            if child_schema is None or (root and key in ("apiVersion", "kind", "metadata")):
                continue
            old_child = old.get(key) if isinstance(old, dict) else None
            found.append(_node(child, old_child, child_schema, f"{node.path}.{key}" if node.path else key, node))
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        keyed = schema.get("x-kubernetes-list-type") == "map" and isinstance(old, list)
        keys = list(schema.get("x-kubernetes-list-map-keys") or [])
        for i, item in enumerate(value):
            old_item = _map_list_match(item, old, keys) if keyed else None
            found.append(_node(item, old_item, schema["items"], f"{node.path}[{i}]", node, correlated=keyed))
    return found


def _node(value: Any, old: Any, schema: dict[str, Any], path: str, parent: Node, correlated: bool = True) -> Node:
    # Ratcheting follows the nearest value that correlates with the old object.
    ratchet = (old is not None and old == value) if correlated else parent.ratchet
    return Node(value, old, schema, path, ratchet)


def _walk(node: Node, root: bool, out: RuleOutcome) -> None:
    if node.value is None:
        return
    rules = node.schema.get("x-kubernetes-validations") or []
    if rules:
        self_value = _root_view(node.value) if root else node.value
        old_value = _root_view(node.old) if root else node.old
        for rule in rules:
            _check(rule, node, self_value, old_value, out)
    for child in _children(node, root):
        _walk(child, False, out)


def evaluate(obj: Any, old: Any, schema: dict[str, Any]) -> RuleOutcome:
    """Every rule of `schema` over the object `obj`; `old` is the stored object on an update."""
    out = RuleOutcome()
    _walk(Node(obj, old, schema, "", old is not None and old == obj), True, out)
    return out
