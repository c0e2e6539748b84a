"""One reconcile's inputs, outputs and working state: what the core observes (`Observation`), what it
decides (`Decision`, with its `Event`s) and the `Step` that builds a Decision from an Observation.
`tandem.operator.reconcile` holds the decisions themselves."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Literal

from tandem.in_place import SupervisorReport
from tandem.operator.api import (
    AcceleratorPool,
    AcceleratorPoolStatus,
    Condition,
    Fault,
    JobPhase,
    TrainingJob,
    TrainingJobStatus,
)
from tandem.operator.capacity import Room, checkpoint_source, rooms
from tandem.operator.detect import faulty_node, node_name
from tandem.operator.device_reports import DeviceFault
from tandem.operator.observe import Obj, deleted_at, holds_node, pool_nodes, reported_checkpoint
from tandem.operator.podspec import image_for

TERMINAL = (JobPhase.SUCCEEDED, JobPhase.FAILED)


@dataclass(frozen=True)
class Observation:
    job: TrainingJob
    pools: Mapping[str, AcceleratorPool]
    nodes: Sequence[Obj]
    pods: Sequence[Obj]  # every pod this job owns (its uid), all attempts
    service_exists: bool
    now: datetime
    service_foreign: bool = False  # a Service of the job's name exists that the job does not own
    others: Sequence[Obj] = ()  # other jobs' pods (and whatever else the operator sees on pool nodes)
    logged_checkpoint: int | None = None  # the newest commit rank 0's log reports while the attempt runs
    foreign_checkpoint: str | None = None  # rank 0's log: the checkpoint it resumes is another job's or config's
    quarantined: tuple[str, ...] = ()  # rank 0's log: checkpoints this attempt set aside, each "step N (reason)"
    device_faults: Mapping[str, Sequence[DeviceFault]] = field(default_factory=dict)  # by node name
    force_delete_after: float = 30.0  # seconds a pod may stay Terminating on a dead node
    # What each pod's supervisor last said in its log (tandem.in_place), by pod name: the pods that take part in
    # in-place restarts, read while one is not Ready or an in-place restart runs.
    supervisors: Mapping[str, SupervisorReport] = field(default_factory=dict)
    # The last state the pod watch saw of this job's pods that are gone (their DELETED events' objects): why a rank
    # whose pod vanished ended, when the kubelet removed it before a reconcile read its end.
    departed: Sequence[Obj] = ()

    @cached_property
    def nodes_by_name(self) -> dict[str, Obj]:
        return {n["metadata"]["name"]: n for n in self.nodes}


@dataclass(frozen=True)
class Refusal:
    """Why a pool cannot take the job at all: an Event reason and a message naming the field."""

    reason: str
    message: str


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str
    message: str


@dataclass
class Decision:
    status: TrainingJobStatus
    create: list[Obj] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)  # pod names
    force_delete: list[str] = field(default_factory=list)  # pods stuck Terminating on a dead node
    # Pods that stay through an in-place restart: their attempt label moves to status.attempt, which is what
    # tells their supervisors to restart (tandem.in_place).
    relabel: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    # For the metrics: what this decision did, so the shell can count it once it is applied.
    restarted: tuple[str, str] | None = None  # (pool, fault class)
    failed_over: tuple[str, str] | None = None  # (from pool, to pool)
    recovered_after: float | None = None  # seconds from the fault to every pod of the next attempt Running
    in_place: Literal["restarted", "escalated"] | None = None  # an in-place restart began, or became a full one
    # Creates the pods of a new attempt: the shell admits one attempt at a time, on a fresh view of the
    # other jobs' pods, so that two jobs never both count the same free nodes.
    starts_attempt: bool = False

    def changes(self, before: TrainingJobStatus) -> bool:
        return bool(self.create or self.delete or self.force_delete or self.relabel or self.events
                    or self.status != before)

    def requeue(self, seconds: float) -> None:
        self.requeue_after = seconds if self.requeue_after is None else min(self.requeue_after, seconds)


def set_condition(status: TrainingJobStatus | AcceleratorPoolStatus, type_: str, value: bool, reason: str,
                  message: str, now: datetime, generation: int | None) -> None:
    """metav1.Condition semantics: lastTransitionTime moves only when the status flips."""
    wanted = "True" if value else "False"
    for index, condition in enumerate(status.conditions):
        if condition.type == type_:
            moved = now if condition.status.value != wanted else condition.last_transition_time
            status.conditions[index] = Condition(type=type_, status=wanted, reason=reason, message=message,
                                                 last_transition_time=moved, observed_generation=generation)
            return
    status.conditions.append(Condition(type=type_, status=wanted, reason=reason, message=message,
                                       last_transition_time=now, observed_generation=generation))


def generation(job: TrainingJob) -> int:
    return int(job.metadata.get("generation", 1))


class Step:
    """One reconcile: the working copy of the status plus the actions decided so far."""

    def __init__(self, obs: Observation) -> None:
        self.obs = obs
        self.job = obs.job
        self.decision = Decision(status=obs.job.status.model_copy(deep=True))
        self.status = self.decision.status

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.decision.events.append(Event(type_, reason, message))

    def condition(self, type_: str, value: bool, reason: str, message: str) -> None:
        set_condition(self.status, type_, value, reason, message, self.obs.now, generation(self.job))

    def move_to(self, phase: JobPhase, reason: str, message: str, warning: bool = False) -> None:
        """Change phase with an Event, a condition and a human message; no-op when already there."""
        if self.status.phase == phase and self.status.message == message:
            return
        self.status.phase, self.status.message = phase, message
        self.event("Warning" if warning else "Normal", reason, message)
        self.condition("Ready", phase == JobPhase.RUNNING, reason, message)
        if phase in TERMINAL:
            self.status.completion_time = self.obs.now
            self.condition(phase.value, True, reason, message)

    def fail(self, reason: str, message: str) -> Decision:
        self.move_to(JobPhase.FAILED, reason, message, warning=True)
        self.delete_unfinished(self.obs.pods)
        return self.decision

    def delete_unfinished(self, pods: Sequence[Obj]) -> None:
        for pod in pods:
            name = pod["metadata"]["name"]
            if holds_node(pod) and name not in self.decision.delete:
                self.decision.delete.append(name)

    def force_delete_stuck(self, pods: Sequence[Obj]) -> None:
        """A pod on a dead node never finishes terminating: no kubelet is left to confirm it."""
        nodes = self.obs.nodes_by_name
        for pod in pods:
            since = deleted_at(pod)
            if since is None or (self.obs.now - since).total_seconds() < self.obs.force_delete_after:
                continue
            node = nodes.get(node_name(pod) or "")
            if node is None or faulty_node(node, self.obs.device_faults) is not None:
                self.decision.force_delete.append(pod["metadata"]["name"])

    @cached_property
    def rooms(self) -> dict[str, Room]:
        template = self.job.spec.pod_template.spec
        return rooms(self.obs.pools, self.obs.nodes, self.obs.device_faults, self.status.excluded_nodes,
                     self.obs.others, template.tolerations, template.node_selector)

    def ineligible(self, name: str) -> Refusal | None:
        """Why the job cannot run on pool `name` at all, or None."""
        pool = self.obs.pools.get(name)
        if pool is None:
            return Refusal("PoolNotFound", f"AcceleratorPool {name!r} does not exist")
        source = checkpoint_source(self.job.spec.checkpoint.volume.to_dict())
        if source not in pool.spec.checkpoint_volume_types:
            return Refusal("CheckpointVolumeNotAllowed",
                           f"pool {name} does not permit {source} checkpoint volumes (spec.checkpoint.volume.{source};"
                           f" the pool's spec.checkpointVolumeTypes: {', '.join(pool.spec.checkpoint_volume_types)})")
        if image_for(self.job, pool) is None:
            return Refusal("NoImage", f"neither the job's container.image nor pool {name!r} names an image")
        return None

    def avoided_nodes(self, pool: AcceleratorPool) -> list[str]:
        """The nodes a new pod on `pool` must keep off: the job's excluded ones, and those that report a fault now
        (admission counted them as no room; a rank bound there would fault at once and spend the failover budget)."""
        faulty = {n["metadata"]["name"] for n in pool_nodes(pool, list(self.obs.nodes))
                  if faulty_node(n, self.obs.device_faults) is not None}
        return sorted({*self.status.excluded_nodes, *faulty})

    def capacity(self) -> dict[str, int]:
        """Pods each pool can take now; 0 for a pool the job cannot use."""
        return {name: (self.rooms[name].free if name in self.rooms and self.ineligible(name) is None else 0)
                for name in self.job.spec.pools}

    def note_checkpoint(self, pods: Sequence[Obj], fault: Fault | None = None) -> None:
        """status.lastCheckpoint follows the newest checkpointStep any rank reported."""
        steps = [s for s in (reported_checkpoint(list(pods)), fault.checkpoint_step if fault else None,
                             self.obs.logged_checkpoint) if s]
        if steps and max(steps) > self.status.last_checkpoint.step:
            self.status.last_checkpoint.step, self.status.last_checkpoint.time = max(steps), self.obs.now
