"""What the demo has seen of the story, and how each observation updates it (pure: no I/O, no clock).

Times are seconds since the epoch. The API's own timestamps have one-second resolution, so the
moments that split a recovery into phases are the moments the demo *received* the watch events
(milliseconds after the API wrote them), and the runtime's log lines, which carry microseconds."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tandem.demo.logparse import LogRecord
from tandem.operator.podspec import ATTEMPT_LABEL, POOL_LABEL, RANK_LABEL


@dataclass
class PodSeen:
    name: str
    attempt: int
    rank: int
    pool: str
    node: str | None = None
    phase: str = "Pending"
    created: float | None = None  # first watch event (ADDED)
    scheduled: float | None = None  # first event with spec.nodeName
    running: float | None = None  # first event with the container running
    finished: float | None = None  # first event with the container terminated
    deleted: float | None = None  # the DELETED event
    exit_reason: str | None = None
    exit_code: int | None = None
    # In-place restarts: each later attempt the pod was moved to (its label), and when the demo saw the move.
    moved: dict[int, float] = field(default_factory=dict)

    @property
    def attempts(self) -> list[int]:
        """Every attempt the pod ran: the one it was created for, then those it stayed through."""
        return [self.attempt, *sorted(self.moved)]


@dataclass
class EventSeen:
    at: float
    type: str
    reason: str
    message: str
    involved: str


@dataclass
class Story:
    """Everything observed: pods by name, the job's status as last seen and when each fault appeared in it,
    the Events, the log records by pod, and when each resumed attempt began reading its checkpoint."""

    started: float
    pods: dict[str, PodSeen] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    fault_seen: list[float] = field(default_factory=list)  # [i]: when status.faults[i] was first seen
    phases: list[tuple[float, str, int, str]] = field(default_factory=list)  # (at, phase, attempt, pool)
    events: list[EventSeen] = field(default_factory=list)
    event_names: set[str] = field(default_factory=set)
    logs: dict[str, list[LogRecord]] = field(default_factory=dict)
    load_started: dict[int, float] = field(default_factory=dict)  # attempt -> atime of the checkpoint's .metadata
    # The log records of each (pod, attempt): a pod that stayed through an in-place restart logs several attempts,
    # split where its launcher logged `in_place_restart`.
    attempt_logs: dict[tuple[str, int], list[LogRecord]] = field(default_factory=dict)

    # -- derived views --------------------------------------------------------------------------
    def attempts(self) -> list[int]:
        """The attempts the demo saw pods of, in order."""
        return sorted({a for p in self.pods.values() for a in p.attempts})

    def attempt_pods(self, attempt: int) -> list[PodSeen]:
        return sorted((p for p in self.pods.values() if attempt in p.attempts), key=lambda p: p.rank)

    def records(self, attempt: int, event: str | None = None) -> list[LogRecord]:
        found = [r for pod in self.attempt_pods(attempt) for r in self.attempt_logs.get((pod.name, attempt), [])
                 if event is None or r.event == event]
        return sorted(found, key=lambda r: r.time)

    def stayed(self, attempt: int) -> list[PodSeen]:
        """The pods an in-place restart moved to `attempt` (none for an attempt of new pods)."""
        return [p for p in self.attempt_pods(attempt) if attempt in p.moved]


def one_line(text: str) -> str:
    # HCCL's messages run over several lines ("Solution: ..."): a table row or a CI log line needs one.
    return " ".join(text.split())


def _container_state(pod: dict[str, Any]) -> dict[str, Any]:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    return (statuses[0].get("state") or {}) if statuses else {}


def observe_pod(story: Story, kind: str, pod: dict[str, Any], at: float) -> PodSeen | None:
    """Apply one watch event (ADDED, MODIFIED, DELETED) of a job's pod; first sightings win, so a
    replayed watch changes nothing."""
    meta = pod.get("metadata") or {}
    labels = meta.get("labels") or {}
    if ATTEMPT_LABEL not in labels:
        return None
    seen = story.pods.get(meta["name"])
    if seen is None:
        seen = story.pods[meta["name"]] = PodSeen(
            name=meta["name"], attempt=int(labels[ATTEMPT_LABEL]), rank=int(labels.get(RANK_LABEL, 0)),
            pool=labels.get(POOL_LABEL, ""), created=at)
    elif str(labels[ATTEMPT_LABEL]).isdigit() and int(labels[ATTEMPT_LABEL]) > seen.attempts[-1]:
        seen.moved[int(labels[ATTEMPT_LABEL])] = at  # an in-place restart: the operator moved the label
    node = (pod.get("spec") or {}).get("nodeName")
    if node:
        seen.node = node
        seen.scheduled = seen.scheduled or at
    state = _container_state(pod)
    if "running" in state or "terminated" in state:
        seen.running = seen.running or at
    if "terminated" in state:
        seen.finished = seen.finished or at
        seen.exit_reason = state["terminated"].get("reason")
        seen.exit_code = state["terminated"].get("exitCode")
    seen.phase = (pod.get("status") or {}).get("phase") or seen.phase
    if kind == "DELETED":
        seen.deleted = seen.deleted or at
        seen.phase = "Deleted"
    return seen


def observe_job(story: Story, status: dict[str, Any], at: float) -> None:
    """A new version of the job's status: note the faults and phase changes it shows for the first time."""
    story.status = status
    for _ in range(len(story.fault_seen), len(status.get("faults") or [])):
        story.fault_seen.append(at)
    now = (status.get("phase", "Pending"), int(status.get("attempt") or 0), status.get("pool") or "")
    if not story.phases or story.phases[-1][1:] != now:
        story.phases.append((at, *now))


def observe_event(story: Story, event: dict[str, Any], at: float) -> EventSeen | None:
    name = (event.get("metadata") or {}).get("name", "")
    if name in story.event_names:
        return None
    story.event_names.add(name)
    involved = event.get("involvedObject") or {}
    seen = EventSeen(at=at, type=event.get("type") or "Normal", reason=event.get("reason") or "",
                     message=event.get("message") or "",
                     involved=f"{involved.get('kind', '')}/{involved.get('name', '')}")
    story.events.append(seen)
    return seen


def observe_logs(story: Story, pod: str, records: list[LogRecord]) -> None:
    """A pod's new log records, each given to the attempt it belongs to (the launcher logs `in_place_restart`
    before a new attempt's workers start in the same pod)."""
    known = story.logs.setdefault(pod, [])
    seen = story.pods.get(pod)
    attempt = seen.attempt if seen is not None else 0
    for earlier in known:
        attempt = _attempt_after(earlier, attempt)
    known.extend(records)
    for record in records:
        attempt = _attempt_after(record, attempt)
        story.attempt_logs.setdefault((pod, attempt), []).append(record)


def _attempt_after(record: LogRecord, attempt: int) -> int:
    value = record.fields.get("attempt") if record.event == "in_place_restart" else None
    return int(value) if isinstance(value, int | str) and str(value).isdigit() else attempt
