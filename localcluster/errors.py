"""Kubernetes `Status` errors, raised anywhere in the local API and rendered by the HTTP layer."""

from __future__ import annotations

from typing import Any

from kmock import KubernetesError

__all__ = ["KubernetesError", "already_exists", "bad_request", "conflict", "gone", "invalid", "not_found"]


def bad_request(message: str) -> KubernetesError:
    return KubernetesError(status=400, reason="BadRequest", message=message, details={})


def not_found(kind: str, name: str, group: str = "") -> KubernetesError:
    plural = f"{kind}.{group}" if group else kind
    return KubernetesError(
        status=404,
        reason="NotFound",
        message=f'{plural} "{name}" not found',
        details={"name": name, "group": group, "kind": kind},
    )


def already_exists(kind: str, name: str, group: str = "") -> KubernetesError:
    plural = f"{kind}.{group}" if group else kind
    return KubernetesError(
        status=409,
        reason="AlreadyExists",
        message=f'{plural} "{name}" already exists',
        details={"name": name, "group": group, "kind": kind},
    )


def conflict(kind: str, name: str, group: str = "") -> KubernetesError:
    plural = f"{kind}.{group}" if group else kind
    return KubernetesError(
        status=409,
        reason="Conflict",
        message=(
            f'Operation cannot be fulfilled on {plural} "{name}": the object has been modified; '
            "please apply your changes to the latest version and try again"
        ),
        details={"name": name, "group": group, "kind": kind},
    )


def gone(message: str) -> KubernetesError:
    return KubernetesError(status=410, reason="Expired", message=message, details={})


def invalid(kind: str, name: str, causes: list[dict[str, Any]], group: str = "") -> KubernetesError:
    """A 422 shaped like the API server's: the message lists every cause with its field path."""
    summary = ", ".join(f"{c['field']}: {c['message']}" for c in causes)
    if len(causes) > 1:
        summary = f"[{summary}]"
    qualified = f"{kind}.{group}" if group else kind
    return KubernetesError(
        status=422,
        reason="Invalid",
        message=f'{qualified} "{name}" is invalid: {summary}',
        details={"name": name, "group": group, "kind": kind, "causes": causes},
    )
