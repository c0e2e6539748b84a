"""TrainingJobs run by the real operator in a local cluster: waiting for a phase, reading a job's events."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

GROUP, VERSION, PLURAL = "tandem.dev", "v1alpha1", "trainingjobs"
NS = "default"


def wait_phase(custom: Any, wait_for: Callable[..., Any], name: str, phase: str, *, timeout: float) -> dict[str, Any]:
    """The job `name` once its status reports `phase`."""

    def reached() -> dict[str, Any] | None:
        job = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)
        return job if job.get("status", {}).get("phase") == phase else None

    return wait_for(reached, timeout=timeout, what=f"{name} to be {phase}")


def event_reasons(core: Any, name: str) -> list[str]:
    """The reasons of the events about `name`, oldest first (in resourceVersion order)."""
    events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
    return [e.reason for e in sorted(events, key=lambda e: int(e.metadata.resource_version))]
