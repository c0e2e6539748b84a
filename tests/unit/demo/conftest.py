"""Fixtures: a synthetic story for the demo's pure functions: what the watches and logs of a real run look like,
with round numbers (attempt 1 on ascend 4 ranks faults at step 11 with checkpoint 8, attempt 2 restarts in the
same pods and faults at step 15 with checkpoint 12, attempt 3 on h20 with 2 ranks finishes step 24)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from tandem.demo.logparse import LogRecord
from tandem.demo.model import Story, observe_job, observe_logs, observe_pod

T0 = 1_700_000_000.0


def pod(name: str, attempt: int, rank: int, pool: str, node: str | None = None,
        state: dict[str, Any] | None = None, phase: str = "Pending") -> dict[str, Any]:
    return {"metadata": {"name": name, "labels": {"tandem.dev/job": "llama-demo", "tandem.dev/attempt": str(attempt),
                                                  "tandem.dev/rank": str(rank), "tandem.dev/pool": pool}},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": phase, "containerStatuses": [{"state": state}] if state else []}}


def rec(t: float, event: str, rank: int | None = 0, **fields: Any) -> LogRecord:
    return LogRecord(time=T0 + t, event=event, rank=rank, fields=fields)


def fault(attempt: int, step: int, ckpt: int) -> dict[str, Any]:
    return {"time": "2023-11-14T22:13:20Z", "attempt": attempt, "pool": "ascend-910b", "class": "interconnect",
            "reason": "HcclSocketTimeout", "step": step, "checkpointStep": ckpt, "pod": f"llama-demo-a{attempt}-0"}


def loss(step: int) -> float:
    return 5.5 - 0.1 * step


def build_story() -> Story:
    """Attempt 2 restarts in place: the operator moves attempt 1's pods to attempt 2 at +31.5, each launcher logs
    `in_place_restart` at +31.7; attempt 3 is a full restart (a failover) into new pods."""
    story = Story(started=T0)
    # (attempt, pool, ranks per pod, created (in place: the supervisors start it), fault or end time, first step,
    # last step, resumed from)
    plan = [(1, "ascend-910b", 2, 1.0, 30.0, 1, 10, None), (2, "ascend-910b", 2, 32.0, 60.0, 9, 14, 8),
            (3, "h20", 1, 62.0, 90.0, 13, 24, 12)]
    for attempt, pool, per_pod, created, end, first, last, resumed in plan:
        world = 2 * per_pod
        in_place = attempt == 2
        for r in range(2):
            name = f"llama-demo-a{1 if in_place else attempt}-{r}"
            node = f"{pool}-node-{r + (0 if in_place else attempt - 1)}"
            if in_place:  # the label moves; the pod runs on
                observe_pod(story, "MODIFIED", pod(name, 2, r, pool, node, {"running": {}}, "Running"), T0 + 31.5)
            else:
                observe_pod(story, "ADDED", pod(name, attempt, r, pool), T0 + created)
                observe_pod(story, "MODIFIED", pod(name, attempt, r, pool, node), T0 + created + 0.2)
                observe_pod(story, "MODIFIED", pod(name, attempt, r, pool, node, {"running": {}}, "Running"),
                            T0 + created + 0.3)
            if attempt > 1:
                ended = {"terminated": {"reason": "Error" if attempt < 3 else "Completed",
                                        "exitCode": 3 if attempt < 3 else 0}}
                observe_pod(story, "MODIFIED", pod(name, attempt, r, pool, node, ended,
                                                   "Failed" if attempt < 3 else "Succeeded"),
                            T0 + end + 0.5 + r * 0.1)
            records = [rec(created + 5.0, "training_start", rank, start_step=resumed or 0, world=world,
                           micro_batch=2, accumulation=8 // world // 2, global_batch=8, resumed_from=resumed)
                       for rank in range(r * per_pod, (r + 1) * per_pod)]
            if in_place:
                records.append(rec(31.7, "in_place_restart", None, attempt=2))
            records.append(rec(created + 1.0, "resume_choice", None, step=resumed))  # the launcher: no rank
            if resumed:
                records += [rec(created + 4.9, "resumed", rank, step=resumed)
                            for rank in range(r * per_pod, (r + 1) * per_pod)]
            if r == 0:
                records += [rec(created + 6.0 + s - first, "step", 0, step=s, loss=repr(loss(s)))
                            for s in range(first, last + 1)]
            if r == 0 and attempt < 3:
                records.append(rec(end, "worker_fault", 1, reason="HcclSocketTimeout", step=last + 1))
            observe_logs(story, name, sorted(records, key=lambda r: r.time))  # a log file is in time order
        if resumed:
            story.load_started[attempt] = T0 + created + 4.0
        faults = [fault(1, 11, 8), fault(2, 15, 12)][: attempt - 1]
        observe_job(story, {"phase": "Running", "attempt": attempt, "pool": pool, "faults": faults}, T0 + created)
        if attempt < 3:
            observe_job(story, {"phase": "Restarting", "attempt": attempt, "pool": pool,
                                "faults": [fault(1, 11, 8), fault(2, 15, 12)][:attempt]}, T0 + end + 1.0)
    in_place = {"attempt": 2, "requestedAt": "2023-11-14T22:13:51Z", "pods": ["llama-demo-a1-0", "llama-demo-a1-1"],
                "completedAt": "2023-11-14T22:13:59Z"}
    observe_job(story, {"phase": "Succeeded", "attempt": 3, "pool": "h20", "restarts": 2, "failovers": 1,
                        "faults": [fault(1, 11, 8), fault(2, 15, 12)], "lastCheckpoint": {"step": 24},
                        "inPlaceRestart": in_place}, T0 + 91.0)
    return story


@pytest.fixture
def story() -> Story:
    return build_story()


@pytest.fixture
def make_pod() -> Callable[..., dict[str, Any]]:
    return pod
