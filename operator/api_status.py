"""The status halves of the Tandem API: what the operator observes and decides, kept in the objects' status
subresource (re-exported by `tandem.operator.api`, the API in one import)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, StrictInt

from tandem.operator.api_types import (
    _CONDITIONS_LIST_MAP,
    _EMPTY_OBJECT_DEFAULT,
    MAX_FAULTS,
    Conditions,
    FaultClass,
    JobPhase,
    _Lenient,
)


class AcceleratorPoolStatus(_Lenient):
    """What the operator observes about the pool's nodes."""

    nodes: StrictInt = Field(0, ge=0, description="Nodes that match the pool's nodeSelector.")
    ready_nodes: StrictInt = Field(0, ge=0, description="Matching nodes that are Ready.")
    faulty_nodes: list[str] = Field(default=[], description="Nodes with an open accelerator or interconnect fault.")
    conditions: Conditions = Field(
        default=[], description="Observations of the pool's state.", json_schema_extra=_CONDITIONS_LIST_MAP
    )


class Fault(_Lenient):
    """One fault the operator saw, newest last."""

    time: datetime = Field(description="When the fault was seen.")
    attempt: StrictInt = Field(ge=1, description="The attempt the fault ended.")
    pool: str = Field(description="The pool the attempt ran on.")
    node: str | None = Field(None, description="The node the fault was seen on, when known.")
    pod: str | None = Field(None, description="The pod the fault was seen in, when known.")
    fault_class: FaultClass = Field(
        alias="class", description="interconnect, device, node, oom, storage, user or unknown."
    )
    reason: str = Field(description="Short CamelCase reason, e.g. HcclTimeout, OOMKilled, NodeNotReady.")
    message: str = Field("", description="Human-readable details.")
    step: StrictInt | None = Field(None, ge=0, description="The optimizer step the runtime was at, when reported.")
    checkpoint_step: StrictInt | None = Field(
        None, ge=0, description="The newest complete checkpoint when the fault hit; the next attempt resumes there."
    )


class LastCheckpoint(_Lenient):
    """The newest complete checkpoint the runtime reported."""

    step: StrictInt = Field(0, ge=0, description="Optimizer steps the checkpoint holds; 0: none yet.")
    time: datetime | None = Field(None, description="When the checkpoint was reported.")


class Exclusion(_Lenient):
    """A node the job's pods avoid, since when, and why."""

    node: str = Field(description="The node's name.")
    since: datetime = Field(description="When the node was excluded.")
    reason: str = Field("", description="The fault that excluded it.")


class InPlaceRestart(_Lenient):
    """The newest in-place restart: the attempt it started inside the pods that stayed, and how it went."""

    attempt: StrictInt = Field(ge=1, description="The attempt the restart started.")
    requested_at: datetime = Field(description="When the operator asked the pods' supervisors to restart.")
    pods: list[str] = Field(default=[], description="The pods that stayed: their label moves to the new attempt.")
    completed_at: datetime | None = Field(
        None, description="When every rank of the new attempt had passed its first step; absent while in progress."
    )


class PendingEvent(_Lenient):
    """An Event decided but not yet posted: written with the status, so a crash or an API error between the
    two loses nothing (the next reconcile posts it)."""

    type: Literal["Normal", "Warning"] = Field(description="Normal or Warning.")
    reason: str = Field(description="CamelCase reason.")
    message: str = Field("", description="Human-readable details.")
    time: datetime = Field(description="When the operator decided it.")


class TrainingJobStatus(_Lenient):
    """What the operator observed and decided; everything it needs to continue lives here."""

    observed_generation: StrictInt = Field(0, ge=0, description="metadata.generation this status reflects.")
    phase: JobPhase = Field(
        JobPhase.PENDING, description="Pending, Starting, Running, Restarting, Succeeded or Failed."
    )
    message: str = Field("", description="Why the job is in its phase, for a human.")
    pool: str | None = Field(None, description="The pool of the current attempt.")
    attempt: StrictInt = Field(
        0, ge=0, description="Increments on every restart or failover; 1 is the first attempt, 0: none yet."
    )
    restarts: StrictInt = Field(0, ge=0, description="Restarts so far, all pools together.")
    failovers: StrictInt = Field(0, ge=0, description="Moves to another pool so far.")
    last_checkpoint: LastCheckpoint = Field(
        default_factory=LastCheckpoint,
        description="The newest complete checkpoint.",
        json_schema_extra=_EMPTY_OBJECT_DEFAULT,
    )
    faults: list[Fault] = Field(
        default=[], max_length=MAX_FAULTS, description=f"Faults seen, newest last, at most {MAX_FAULTS}."
    )
    excluded_nodes: list[str] = Field(default=[], description="Nodes new pods avoid because they faulted.")
    exclusions: list[Exclusion] = Field(
        default=[], description="When and why each of excludedNodes was excluded (released after"
        " faultPolicy.nodeExclusionSeconds of health)."
    )
    pool_faults: StrictInt = Field(
        0, ge=0, description="Interconnect/device faults on the current pool since the job arrived there."
    )
    pending_events: list[PendingEvent] = Field(default=[], description="Events decided, not yet posted.")
    conditions: Conditions = Field(
        default=[],
        description="Observations of the job's state: Ready, Progressing, Failed ...",
        json_schema_extra=_CONDITIONS_LIST_MAP,
    )
    next_attempt_time: datetime | None = Field(
        None, description="While Restarting: when the next attempt starts (the backoff ends); absent while the"
        " previous attempt's pods are still stopping."
    )
    restart_delay_seconds: StrictInt | None = Field(
        None, ge=0, description="While Restarting: the backoff, counted from when the previous attempt's pods stopped."
    )
    in_place_restart: InPlaceRestart | None = Field(
        None, description="The newest in-place restart (faultPolicy.inPlaceRestart), while it runs and after."
    )
    start_time: datetime | None = Field(None, description="When the first attempt started.")
    completion_time: datetime | None = Field(None, description="When the job Succeeded or Failed.")

    def to_patch(self) -> dict[str, Any]:
        """The status as a JSON merge patch: a field that is now absent is sent as null, which clears it
        (left out, the stored value would stay, and every reconcile would send the patch again)."""
        body = self.to_dict()
        for name, info in type(self).model_fields.items():
            key = info.alias or name
            if key not in body:
                body[key] = None
        return body
