"""The patch formats the API accepts: JSON merge patch, JSON patch and the strategic-merge cases
that kubectl and the kubernetes client send (pure functions over plain dicts). Custom resources
take no strategic merge patch (apiextensions-apiserver serves JSON patch, merge patch and apply
only); server-side apply is not implemented here and is refused, never mis-applied."""

from __future__ import annotations

import copy
from typing import Any

from tandem.localcluster.errors import KubernetesError, bad_request

MERGE = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
APPLY = "application/apply-patch+yaml"
# The patch types the handlers accept, in the order their 415 lists them (installer.go for built-ins,
# customresource_handler.go for custom resources).
BUILTIN_TYPES = (JSON_PATCH, MERGE, STRATEGIC, APPLY)
CUSTOM_TYPES = (JSON_PATCH, MERGE, APPLY)
# Lists whose strategic-merge behaviour their field name decides (patchStrategy/patchMergeKey tags
# of k8s.io/api): primitive lists that merge as sets, and lists of objects merged on another key
# than the `_list_merge_key` guess.
PRIMITIVE_MERGE = frozenset({"finalizers", "podCIDRs"})
MERGE_KEYS = {"ownerReferences": "uid", "volumeMounts": "mountPath", "volumeDevices": "devicePath",
              "hostAliases": "ip"}


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _list_merge_key(field: str, items: list[Any]) -> str | None:
    """Built-in lists that kubectl merges by key (containers, env, volumes, ports...) mostly key on
    `name` or `containerPort`; other lists are replaced, as for an atomic list."""
    if field in MERGE_KEYS:
        return MERGE_KEYS[field]
    for key in ("name", "containerPort", "type"):
        if items and all(isinstance(i, dict) and key in i for i in items):
            return key
    return None


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """The subset of strategic merge patch that kubectl sends for built-in objects: recursive
    merge, lists of named items merged by key, and the `$patch`, `$retainKeys`,
    `$setElementOrder/...` and `$deleteFromPrimitiveList/...` directives."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get("$retainKeys")
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys") or key.startswith("$setElementOrder/"):
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [v for v in result.get(field, []) if v not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif key in PRIMITIVE_MERGE and isinstance(value, list):
            order = patch.get(f"$setElementOrder/{key}")
            result[key] = _merge_primitives(result.get(key) or [], value, order)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_lists(key, result[key], value)
        else:
            result[key] = strategic_merge_patch(result.get(key), value)
    if retain is not None:
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_primitives(current: list[Any], patch: list[Any], order: list[Any] | None) -> list[Any]:
    """A `patchStrategy: merge` list of scalars (metadata.finalizers): the union, current items
    first (mergeSlice's deduplicateScalars), then ordered as `$setElementOrder/<field>` says."""
    merged = list(dict.fromkeys([*current, *patch]))
    if not order:
        return merged
    rank = {item: n for n, item in enumerate(order)}
    return sorted(merged, key=lambda item: rank.get(item, len(rank)))


def _merge_lists(field: str, current: list[Any], patch: list[Any]) -> list[Any]:
    merge_key = _list_merge_key(field, [i for i in patch if not (isinstance(i, dict) and "$patch" in i)] or current)
    if merge_key is None:
        return [copy.deepcopy(i) for i in patch if not (isinstance(i, dict) and "$patch" in i)]
    merged = [copy.deepcopy(i) for i in current]
    for item in patch:
        index = next((n for n, c in enumerate(merged) if c.get(merge_key) == item.get(merge_key)), None)
        if isinstance(item, dict) and item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(strategic_merge_patch({}, item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer: {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        if isinstance(doc, list):
            doc = doc[int(part)]
        elif isinstance(doc, dict):
            doc = doc[part]
        else:
            raise KeyError(part)
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902. A failed `test` is a 422, as kopf expects when it guards on resourceVersion."""
    if not isinstance(operations, list):
        raise bad_request("json patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid json patch operation: {op!r}")
        parts = _pointer(op["path"])
        try:
            if op["op"] == "test":
                if _resolve(doc, parts) != op.get("value"):
                    raise KubernetesError(
                        status=422, reason="Invalid", message=f"the test operation failed at {op['path']}"
                    )
                continue
            if op["op"] in ("copy", "move"):
                value = copy.deepcopy(_resolve(doc, _pointer(op["from"])))
                if op["op"] == "move":
                    doc = _remove(doc, _pointer(op["from"]))
                doc = _add(doc, parts, value)
            elif op["op"] == "add":
                doc = _add(doc, parts, copy.deepcopy(op.get("value")))
            elif op["op"] == "remove":
                doc = _remove(doc, parts)
            elif op["op"] == "replace":
                _resolve(doc, parts)  # must exist
                doc = _add(_remove(doc, parts), parts, copy.deepcopy(op.get("value")))
            else:
                raise bad_request(f"unknown json patch operation: {op['op']!r}")
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise KubernetesError(
                status=422, reason="Invalid", message=f"json patch {op['op']} failed at {op['path']}: {exc}"
            ) from exc
    return doc


def _add(doc: Any, parts: list[str], value: Any) -> Any:
    if not parts:
        return value
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        parent.insert(len(parent) if last == "-" else int(last), value)
    else:
        parent[last] = value
    return doc


def _remove(doc: Any, parts: list[str]) -> Any:
    parent = _resolve(doc, parts[:-1])
    last = parts[-1]
    if isinstance(parent, list):
        parent.pop(int(last))
    else:
        del parent[last]
    return doc


def _unsupported(accepted: tuple[str, ...], note: str = "") -> KubernetesError:
    """negotiation.NewUnsupportedMediaTypeError, as the patch handler answers an unknown type."""
    return KubernetesError(status=415, reason="UnsupportedMediaType", details={},
                           message="the body of the request was in an unknown format - accepted media types "
                                   f"include: {', '.join(accepted)}{note}")


def check_patch_type(kind: str, custom: bool) -> None:
    """The patch handler's first check, before the body is read. `custom`: a custom resource."""
    accepted = CUSTOM_TYPES if custom else BUILTIN_TYPES
    if kind == APPLY:  # kubectl then says "Server-side apply not available on the server"
        raise _unsupported(tuple(t for t in accepted if t != APPLY),
                           " (server-side apply is not implemented by the local API: use client-side apply)")
    if kind not in accepted:
        raise _unsupported(accepted)


def apply_patch(target: dict[str, Any], patch: Any, content_type: str, custom: bool = False) -> dict[str, Any]:
    """`custom`: the target is a custom resource (no strategic merge patch for those)."""
    kind = content_type.split(";")[0].strip().lower()
    check_patch_type(kind, custom)
    if kind == JSON_PATCH:
        result = json_patch(target, patch)
    elif kind == STRATEGIC:
        result = strategic_merge_patch(target, patch)
    else:
        result = merge_patch(target, patch)
    if not isinstance(result, dict):
        raise bad_request("the patch did not produce an object")
    return result
