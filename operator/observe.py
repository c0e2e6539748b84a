"""Reading the cluster as the core needs it: what a pod's status says about its rank, which
nodes belong to a pool. Pure functions over plain Kubernetes objects."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tandem.operator.api import AcceleratorPool
from tandem.operator.podspec import ATTEMPT_LABEL, RANK_LABEL

Obj = dict[str, Any]


def labels(obj: Obj) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def attempt_of(pod: Obj) -> int:
    try:
        return int(labels(pod).get(ATTEMPT_LABEL, "0"))
    except ValueError:
        return 0


def rank_of(pod: Obj) -> int:
    try:
        return int(labels(pod).get(RANK_LABEL, "-1"))
    except ValueError:
        return -1


def phase_of(pod: Obj) -> str:
    return str(pod.get("status", {}).get("phase") or "Pending")


def is_bound(pod: Obj) -> bool:
    return bool(pod.get("spec", {}).get("nodeName"))


def is_terminating(pod: Obj) -> bool:
    return bool(pod.get("metadata", {}).get("deletionTimestamp"))


def is_finished(pod: Obj) -> bool:
    return phase_of(pod) in ("Succeeded", "Failed")


@dataclass(frozen=True)
class PodFailure:
    """Why a pod failed, as the kubelet reported it."""

    pod: str
    rank: int
    node: str | None
    reason: str
    exit_code: int | None
    message: str
    finished_at: str

    def describe(self) -> str:
        code = f" (exit code {self.exit_code})" if self.exit_code is not None else ""
        detail = f": {self.message.strip()}" if self.message.strip() else ""
        return f"pod {self.pod} (rank {self.rank}) failed: {self.reason}{code}{detail}"


def _terminated_state(pod: Obj) -> Obj:
    for status in pod.get("status", {}).get("containerStatuses") or []:
        terminated = (status.get("state") or {}).get("terminated")
        if terminated:
            return dict(terminated)
    return {}


def failure_of(pod: Obj) -> PodFailure:
    terminated = _terminated_state(pod)
    status = pod.get("status", {})
    return PodFailure(
        pod=pod["metadata"]["name"],
        rank=rank_of(pod),
        node=pod.get("spec", {}).get("nodeName"),
        reason=str(terminated.get("reason") or status.get("reason") or "Failed"),
        exit_code=terminated.get("exitCode"),
        message=str(terminated.get("message") or status.get("message") or ""),
        finished_at=str(terminated.get("finishedAt") or ""),
    )


def first_failure(pods: list[Obj]) -> PodFailure | None:
    """The rank that failed first is the root cause; the others were stopped by its fall."""
    failures = [failure_of(p) for p in pods if phase_of(p) == "Failed"]
    return min(failures, key=lambda f: (f.finished_at or "~", f.rank)) if failures else None


def node_is_ready(node: Obj) -> bool:
    conditions = node.get("status", {}).get("conditions") or []
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pool_nodes(pool: AcceleratorPool, nodes: list[Obj]) -> list[Obj]:
    selector = pool.spec.node_selector
    return [n for n in nodes if all(labels(n).get(k) == v for k, v in selector.items())]


def parse_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value.replace("Z", "+00:00")) if value else None


def termination_report(pod: Obj) -> dict[str, Any] | None:
    """The runtime's JSON termination message (DESIGN.md section 4), when the pod's container wrote one."""
    message = _terminated_state(pod).get("message")
    if not message or not str(message).lstrip().startswith("{"):
        return None
    try:
        report = json.loads(message)
    except ValueError:
        return None
    return report if isinstance(report, dict) else None


def reported_checkpoint(pods: list[Obj]) -> int | None:
    """The newest complete checkpoint any rank reported on exit."""
    steps = [r.get("checkpointStep") for r in map(termination_report, pods) if r]
    steps = [s for s in steps if isinstance(s, int)]
    return max(steps) if steps else None


def created_at(pod: Obj) -> datetime | None:
    return parse_time(pod.get("metadata", {}).get("creationTimestamp"))


def deleted_at(pod: Obj) -> datetime | None:
    return parse_time(pod.get("metadata", {}).get("deletionTimestamp"))
