"""Kubernetes `Status` errors, raised anywhere in the local API and rendered by the HTTP layer."""

from __future__ import annotations

from typing import Any

from kmock import KubernetesError

__all__ = ["KubernetesError", "already_exists", "bad_request", "conflict", "forbidden", "gone", "invalid", "not_found"]
MODIFIED = "the object has been modified; please apply your changes to the latest version and try again"


def bad_request(message: str) -> KubernetesError:
    return KubernetesError(status=400, reason="BadRequest", message=message, details={})


def _about(status: int, reason: str, message: str, kind: str, name: str, group: str) -> KubernetesError:
    return KubernetesError(status=status, reason=reason, message=message,
                           details={"name": name, "group": group, "kind": kind})


def _qualified(kind: str, group: str) -> str:
    return f"{kind}.{group}" if group else kind


def not_found(kind: str, name: str, group: str = "") -> KubernetesError:
    return _about(404, "NotFound", f'{_qualified(kind, group)} "{name}" not found', kind, name, group)


def already_exists(kind: str, name: str, group: str = "") -> KubernetesError:
    return _about(409, "AlreadyExists", f'{_qualified(kind, group)} "{name}" already exists', kind, name, group)


def conflict(kind: str, name: str, group: str = "", why: str = MODIFIED) -> KubernetesError:
    message = f'Operation cannot be fulfilled on {_qualified(kind, group)} "{name}": {why}'
    return _about(409, "Conflict", message, kind, name, group)


def forbidden(kind: str, name: str, why: str, group: str = "") -> KubernetesError:
    return _about(403, "Forbidden", f'{_qualified(kind, group)} "{name}" is forbidden: {why}', kind, name, group)


def gone(message: str) -> KubernetesError:
    return KubernetesError(status=410, reason="Expired", message=message, details={})


def invalid(kind: str, name: str, causes: list[dict[str, Any]], group: str = "") -> KubernetesError:
    """A 422 shaped like the API server's: the message lists every cause with its field path."""
    lines = list(dict.fromkeys(f"{c['field']}: {c['message']}" for c in causes))  # ToAggregate drops repeats
    summary = ", ".join(lines)
    if len(lines) > 1:
        summary = f"[{summary}]"
    error = _about(422, "Invalid", f'{_qualified(kind, group)} "{name}" is invalid: {summary}', kind, name, group)
    error.details["causes"] = causes
    return error
