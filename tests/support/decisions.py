"""Whole decisions, for tests that compare everything the core decided (status and actions), not a field."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from builders import NOW

from tandem.operator.reconcile import Decision


def summary(decision: Decision) -> dict[str, Any]:
    """Everything a Decision holds, as plain data: the full next status and every action."""
    return {
        "status": decision.status.to_dict(),
        "create": [f"{m['kind']}/{m['metadata']['name']}" for m in decision.create],
        "delete": list(decision.delete),
        "force_delete": list(decision.force_delete),
        "relabel": list(decision.relabel),
        "events": [(e.type, e.reason, e.message) for e in decision.events],
        "requeue_after": decision.requeue_after,
        "restarted": decision.restarted,
        "failed_over": decision.failed_over,
        "recovered_after": decision.recovered_after,
        "starts_attempt": decision.starts_attempt,
        "in_place": decision.in_place,
    }


def nothing(status: dict[str, Any], **actions: Any) -> dict[str, Any]:
    """The expected summary: `status` in full, and no action but those named."""
    return {"status": status, "create": [], "delete": [], "force_delete": [], "relabel": [], "events": [],
            "requeue_after": None, "restarted": None, "failed_over": None, "recovered_after": None,
            "starts_attempt": False, "in_place": None, **actions}


def zulu(when: datetime) -> str:
    """A time as the status dict writes it: `2026-11-23T12:00:00Z`."""
    return when.isoformat().replace("+00:00", "Z")


def condition(type_: str, value: bool, reason: str, message: str, at: str = zulu(NOW),
              generation: int = 1) -> dict[str, Any]:
    """A status condition as the status dict holds it."""
    return {"type": type_, "status": "True" if value else "False", "reason": reason, "message": message,
            "lastTransitionTime": at, "observedGeneration": generation}
