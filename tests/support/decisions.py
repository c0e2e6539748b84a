"""Whole decisions, for tests that compare everything the core decided (status and actions), not a field."""

from __future__ import annotations

from typing import Any

from tandem.operator.reconcile import Decision


def summary(decision: Decision) -> dict[str, Any]:
    """Everything a Decision holds, as plain data: the full next status and every action."""
    return {
        "status": decision.status.to_dict(),
        "create": [f"{m['kind']}/{m['metadata']['name']}" for m in decision.create],
        "delete": list(decision.delete),
        "force_delete": list(decision.force_delete),
        "events": [(e.type, e.reason, e.message) for e in decision.events],
        "requeue_after": decision.requeue_after,
        "restarted": decision.restarted,
        "failed_over": decision.failed_over,
        "recovered_after": decision.recovered_after,
        "starts_attempt": decision.starts_attempt,
    }


def nothing(status: dict[str, Any], **actions: Any) -> dict[str, Any]:
    """The expected summary: `status` in full, and no action but those named."""
    return {"status": status, "create": [], "delete": [], "force_delete": [], "events": [], "requeue_after": None,
            "restarted": None, "failed_over": None, "recovered_after": None, "starts_attempt": False, **actions}
