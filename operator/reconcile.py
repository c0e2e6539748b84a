"""The operator's functional core: from a TrainingJob, its pools, nodes and pods, decide the next
status and the actions that get the cluster there. No I/O and no clock: `now` is an argument.

The shell applies a Decision in a fixed order: the status first (it is the job's write-ahead
log: an operator that dies after it resumes from it), then deletions, then creations, then the
Events. Every decision is idempotent: reconciling the same state twice changes nothing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property
from typing import Literal

from tandem.operator.api import (
    MAX_FAULTS,
    AcceleratorPool,
    AcceleratorPoolStatus,
    Condition,
    Fault,
    FaultClass,
    JobPhase,
    TrainingJob,
    TrainingJobStatus,
)
from tandem.operator.detect import attempt_fault, faulty_node, node_name, usable_capacity, vanished_fault
from tandem.operator.device_reports import DeviceFault
from tandem.operator.observe import (
    Obj,
    attempt_of,
    created_at,
    deleted_at,
    is_bound,
    is_finished,
    is_terminating,
    phase_of,
    rank_of,
    reported_checkpoint,
)
from tandem.operator.podspec import attempt_pod, headless_service, image_for
from tandem.operator.recovery import RecoveryPlan, plan_after_fault, plan_after_pending

TERMINAL = (JobPhase.SUCCEEDED, JobPhase.FAILED)
RECHECK_SECONDS = 30.0  # how soon a job waiting on something outside its pods looks again
TEARDOWN_RECHECK_SECONDS = 2.0  # while the previous attempt's pods are still going away
EXCLUDABLE = frozenset({FaultClass.INTERCONNECT, FaultClass.DEVICE, FaultClass.NODE})


@dataclass(frozen=True)
class Observation:
    job: TrainingJob
    pools: Mapping[str, AcceleratorPool]
    nodes: Sequence[Obj]
    pods: Sequence[Obj]  # every pod labelled with this job, all attempts
    service_exists: bool
    now: datetime
    device_faults: Mapping[str, Sequence[DeviceFault]] = field(default_factory=dict)  # by node name
    force_delete_after: float = 30.0  # seconds a pod may stay Terminating on a dead node

    @cached_property
    def nodes_by_name(self) -> dict[str, Obj]:
        return {n["metadata"]["name"]: n for n in self.nodes}


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
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    # For the metrics: what this decision did, so the shell can count it once it is applied.
    restarted: tuple[str, str] | None = None  # (pool, fault class)
    failed_over: tuple[str, str] | None = None  # (from pool, to pool)
    recovered_after: float | None = None  # seconds from the fault to every pod of the next attempt Running

    def changes(self, before: TrainingJobStatus) -> bool:
        return bool(self.create or self.delete or self.force_delete or self.events or self.status != before)

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


def _generation(job: TrainingJob) -> int:
    return int(job.metadata.get("generation", 1))


class _Step:
    """One reconcile: the working copy of the status plus the actions decided so far."""

    def __init__(self, obs: Observation) -> None:
        self.obs = obs
        self.job = obs.job
        self.decision = Decision(status=obs.job.status.model_copy(deep=True))
        self.status = self.decision.status

    def event(self, type_: Literal["Normal", "Warning"], reason: str, message: str) -> None:
        self.decision.events.append(Event(type_, reason, message))

    def condition(self, type_: str, value: bool, reason: str, message: str) -> None:
        set_condition(self.status, type_, value, reason, message, self.obs.now, _generation(self.job))

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
            if not is_finished(pod) and not is_terminating(pod) and name not in self.decision.delete:
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

    def capacity(self) -> dict[str, int]:
        return usable_capacity(self.obs.pools, self.obs.nodes, self.obs.device_faults, self.status.excluded_nodes)

    def note_checkpoint(self, pods: Sequence[Obj], fault: Fault | None = None) -> None:
        """status.lastCheckpoint follows the newest checkpointStep any rank reported."""
        steps = [s for s in (reported_checkpoint(list(pods)), fault.checkpoint_step if fault else None) if s]
        if steps and max(steps) > self.status.last_checkpoint.step:
            self.status.last_checkpoint.step, self.status.last_checkpoint.time = max(steps), self.obs.now


def reconcile(obs: Observation) -> Decision:
    step = _Step(obs)
    status, spec = step.status, obs.job.spec
    if status.phase in TERMINAL:
        return step.decision  # a finished job is history: nothing is changed, not even observedGeneration
    status.observed_generation = _generation(obs.job)

    pool_name = status.pool or spec.pools[0]
    pool = obs.pools.get(pool_name)
    if pool is None:
        return step.fail("PoolNotFound", f"AcceleratorPool {pool_name!r} does not exist")
    if image_for(obs.job, pool) is None:
        return step.fail("NoImage", f"neither the job's container.image nor pool {pool_name!r} names an image")

    if status.attempt == 0:
        return _start_first_attempt(step)
    if status.phase == JobPhase.RESTARTING:
        return _restart_when_due(step, pool)
    return _follow_attempt(step, pool)


def _start_attempt(step: _Step, pool: AcceleratorPool, attempt: int, why: str) -> Decision:
    status, spec = step.status, step.job.spec
    status.attempt, status.pool = attempt, str(pool.metadata["name"])
    status.start_time, status.next_attempt_time = status.start_time or step.obs.now, None
    resume = f", resuming from checkpoint step {status.last_checkpoint.step}" if status.last_checkpoint.step else ""
    step.move_to(JobPhase.PENDING, "AttemptStarted",
                 f"attempt {attempt} on pool {status.pool}: {spec.nodes} pod(s) of "
                 f"{pool.spec.devices_per_node} device(s){resume}{why}")
    if not step.obs.service_exists:
        step.decision.create.append(headless_service(step.job))
    for rank in range(spec.nodes):
        step.decision.create.append(attempt_pod(step.job, pool, attempt, rank, status.excluded_nodes))
    return step.decision


def _start_first_attempt(step: _Step) -> Decision:
    """On the first pool that has room; a job no pool can hold waits, without pods, and says why."""
    spec, capacity = step.job.spec, step.capacity()
    for name in spec.pools:
        pool = step.obs.pools.get(name)
        if pool is not None and capacity.get(name, 0) >= spec.nodes:
            step.condition("PoolCapacity", True, "Enough", f"pool {name} has room for {capacity[name]} pod(s)")
            skipped = spec.pools[: spec.pools.index(name)]
            return _start_attempt(step, pool, 1, f" ({', '.join(skipped)} too small)" if skipped else "")
    first = spec.pools[0]
    message = f"needs room for {spec.nodes} pod(s); pool {first} has room for {capacity.get(first, 0)}"
    if len(spec.pools) > 1:
        message += ", and no other pool has enough"
    if step.status.message != message:
        step.status.message = message
        step.event("Warning", "PoolTooSmall", message)
    step.condition("PoolCapacity", False, "PoolTooSmall", message)
    step.decision.requeue(RECHECK_SECONDS)
    return step.decision


def _restart_when_due(step: _Step, pool: AcceleratorPool) -> Decision:
    """Between attempts: tear the old one down, wait out the backoff, then start the next."""
    status, obs = step.status, step.obs
    step.delete_unfinished(obs.pods)
    step.force_delete_stuck(obs.pods)
    due = status.next_attempt_time or obs.now
    if obs.now < due:
        step.decision.requeue((due - obs.now).total_seconds())
        return step.decision
    if any(not is_finished(p) for p in obs.pods):
        step.decision.requeue(TEARDOWN_RECHECK_SECONDS)  # never two attempts' ranks at once
        return step.decision
    return _start_attempt(step, pool, status.attempt + 1, "")


def _follow_attempt(step: _Step, pool: AcceleratorPool) -> Decision:
    status, spec, obs = step.status, step.job.spec, step.obs
    current = [p for p in obs.pods if attempt_of(p) == status.attempt]
    earlier = [p for p in obs.pods if attempt_of(p) != status.attempt]
    step.delete_unfinished(earlier)
    step.force_delete_stuck(earlier)

    fault = attempt_fault(step.job, current, obs.nodes_by_name, obs.device_faults, obs.now)
    if isinstance(fault, float):
        step.decision.requeue(fault)  # a symptom so far: let the other ranks finish and tell why
        return step.decision
    present = {rank_of(p) for p in current}
    missing = [rank for rank in range(spec.nodes) if rank not in present]
    if fault is None and missing and status.phase == JobPhase.RUNNING:
        fault = vanished_fault(step.job, missing, obs.now)
    if fault is not None:
        return _recover(step, current, fault)
    if len(current) == spec.nodes and all(phase_of(p) == "Succeeded" for p in current):
        step.note_checkpoint(current)
        step.move_to(JobPhase.SUCCEEDED, "Succeeded", f"all {spec.nodes} rank(s) finished")
        return step.decision
    if not obs.service_exists:
        step.decision.create.append(headless_service(step.job))
    for rank in missing:
        step.decision.create.append(attempt_pod(step.job, pool, status.attempt, rank, status.excluded_nodes))
    if not missing and _pending_too_long(step, current):
        return step.decision
    _follow_pods(step, current, missing)
    return step.decision


def _recover(step: _Step, current: list[Obj], fault: Fault) -> Decision:
    """Record the fault, tear the gang down, and let the policy pick: fail, restart, or fail over."""
    status, spec = step.status, step.job.spec
    step.note_checkpoint(current, fault)
    status.faults = [*status.faults, fault][-MAX_FAULTS:]
    where = f" on node {fault.node}" if fault.node else ""
    step.event("Warning", "FaultDetected", f"attempt {fault.attempt}, {fault.pod or 'a pod'}{where}: "
               f"{fault.fault_class.value}/{fault.reason}: {fault.message}")
    if spec.fault_policy.exclude_faulty_nodes and fault.node and fault.fault_class in EXCLUDABLE:
        status.excluded_nodes = sorted({*status.excluded_nodes, fault.node})
    step.delete_unfinished(current)
    plan = plan_after_fault(spec, status.faults, status.restarts, status.pool or spec.pools[0], step.capacity())
    if plan.outcome == "fail":
        return step.fail(plan.reason, plan.message)
    step.decision.restarted = (status.pool or "", fault.fault_class.value)
    status.restarts += 1
    return _schedule_next_attempt(step, plan)


def _schedule_next_attempt(step: _Step, plan: RecoveryPlan) -> Decision:
    status = step.status
    if plan.outcome == "failover":
        step.decision.failed_over = (status.pool or "", plan.pool)
        status.failovers += 1
        status.pool = plan.pool
    status.next_attempt_time = step.obs.now + timedelta(seconds=plan.delay_seconds)
    step.move_to(JobPhase.RESTARTING, plan.reason, plan.message, warning=plan.outcome == "failover")
    step.decision.requeue(plan.delay_seconds)
    return step.decision


def _pending_too_long(step: _Step, current: list[Obj]) -> bool:
    """Pods unschedulable for pendingTimeoutSeconds move the job to the next pool (no fault, no restart)."""
    unbound = [p for p in current if not is_bound(p)]
    created = [t for t in map(created_at, current) if t is not None]
    if not unbound or not created:
        return False
    waited = (step.obs.now - min(created)).total_seconds()
    spec = step.job.spec
    plan = plan_after_pending(spec, step.status.pool or spec.pools[0], step.capacity(), waited)
    if plan is None:
        step.decision.requeue(max(spec.fault_policy.pending_timeout_seconds - waited, 1.0))
        return False
    step.delete_unfinished(current)
    _schedule_next_attempt(step, plan)
    return True


def _follow_pods(step: _Step, current: list[Obj], missing: list[int]) -> None:
    if missing:
        return  # they are being created: the phase stays where it is
    status = step.status
    if all(phase_of(p) in ("Running", "Succeeded") for p in current):
        if status.phase != JobPhase.RUNNING and status.faults and status.faults[-1].attempt == status.attempt - 1:
            step.decision.recovered_after = (step.obs.now - status.faults[-1].time).total_seconds()
        step.move_to(JobPhase.RUNNING, "Running", f"all {len(current)} rank(s) running")
    elif all(is_bound(p) for p in current):
        step.move_to(JobPhase.STARTING, "Starting", f"all {len(current)} pod(s) scheduled; waiting for them to run")
    else:
        waiting = sum(1 for p in current if not is_bound(p))
        step.move_to(JobPhase.PENDING, "Scheduling", f"waiting for {waiting} pod(s) to be scheduled")
