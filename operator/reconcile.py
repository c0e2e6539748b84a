"""The operator's functional core: from a TrainingJob, its pools, nodes and pods, decide the next
status and the actions that get the cluster there. No I/O and no clock: `now` is an argument.

The shell applies a Decision in a fixed order: the status first (it is the job's write-ahead
log: an operator that dies after it resumes from it), then deletions, then creations, then the
Events. Every decision is idempotent: reconciling the same state twice changes nothing."""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta

from tandem.faults.taxonomy import short
from tandem.operator import restart_in_place as in_place
from tandem.operator.api import (
    MAX_ATTEMPT,
    MAX_FAULTS,
    AcceleratorPool,
    Exclusion,
    Fault,
    FaultClass,
    JobPhase,
)
from tandem.operator.detect import departed_ranks, faulty_node, find_attempt_fault, vanished_fault
from tandem.operator.device_reports import DeviceFault
from tandem.operator.observe import (
    Obj,
    attempt_of,
    created_at,
    is_bound,
    node_is_ready,
    parse_time,
    phase_of,
    pod_ended,
    rank_of,
    ready_condition,
)
from tandem.operator.podspec import attempt_pod, headless_service
from tandem.operator.podtemplate import training_container
from tandem.operator.recovery import (
    POOL_FAULTS,
    RecoveryPlan,
    plan_after_fault,
    plan_after_pending,
    storage_location,
)
from tandem.operator.step import (  # noqa: F401  (Decision, Event, set_condition: re-exported for the shell)
    TERMINAL,
    Decision,
    Event,
    Observation,
    Step,
    generation,
    set_condition,
)

RECHECK_SECONDS = 30.0  # how soon a job waiting on something outside its pods looks again
PROGRESS_SECONDS = 30.0  # how often a running job's checkpoints are read from its rank 0's log
TEARDOWN_RECHECK_SECONDS = 2.0  # while the previous attempt's pods are still going away
UNHEALTHY_SEEN_SECONDS = 60.0  # how often an excluded node seen unhealthy restarts its release clock


def reconcile(obs: Observation) -> Decision:
    step = Step(obs)
    status = step.status
    if status.phase in TERMINAL:
        # A finished job is history: nothing in its status changes, not even observedGeneration. But a rank left
        # running (the delete that went with the verdict failed) would hold its accelerators for good.
        step.delete_unfinished(obs.pods)
        return step.decision
    if any(attempt_of(p) > status.attempt for p in obs.pods):
        # Pods of a newer attempt than our status knows: this view is stale (another replica, or a read that
        # raced a write). Deciding on it could delete the newer attempt; look again instead.
        step.decision.requeue(TEARDOWN_RECHECK_SECONDS)
        return step.decision
    status.observed_generation = generation(obs.job)
    _release_exclusions(step)
    if obs.service_foreign:
        return _wait(step, "ServiceConflict", f"a Service named {obs.job.metadata['name']!r} exists that this job "
                     "does not own (an earlier job's, being deleted, or someone else's): waiting for it to go")
    if status.attempt == 0:
        return _start_first_attempt(step)
    if status.phase == JobPhase.RESTARTING and not in_place.in_progress(status):
        return _restart_when_due(step)
    return _follow_attempt(step)


def _wait(step: Step, reason: str, message: str) -> Decision:
    """Nothing to do until something outside the job changes: say why once, look again later."""
    if step.status.message != message:
        step.status.message = message
        step.event("Warning", reason, message)
    step.condition("Admitted", False, reason, message)
    step.decision.requeue(RECHECK_SECONDS)
    return step.decision


def _release_exclusions(step: Step) -> None:
    """An excluded node comes back once it has been Ready, with no fault reported, for nodeExclusionSeconds:
    a 1-second NotReady blip or one misread log line must not shrink the job's pool for good."""
    status, obs = step.status, step.obs
    hold = step.job.spec.fault_policy.node_exclusion_seconds
    since = {e.node: e.since for e in status.exclusions}
    kept: list[str] = []
    for name in status.excluded_nodes:
        node = obs.nodes_by_name.get(name)
        excluded_at = since.get(name, obs.now)  # excluded before exclusions were recorded: the clock starts now
        healthy_since = _healthy_since(node, obs.device_faults) if node is not None else None
        unhealthy_for = (obs.now - excluded_at).total_seconds() if node is not None and healthy_since is None else 0
        if unhealthy_for >= UNHEALTHY_SEEN_SECONDS:
            # Still unhealthy (a chip fault reported while the node stays Ready): the clock restarts, to within
            # a minute (not a status write on every reconcile).
            since[name] = obs.now
        start = max(since.get(name, obs.now), healthy_since) if healthy_since is not None else None
        if start is not None and (obs.now - start).total_seconds() >= hold:
            step.event("Normal", "NodeReleased", f"node {name} has been healthy for {hold}s: new pods may use it again")
        else:
            kept.append(name)
    status.excluded_nodes = kept
    status.exclusions = [e.model_copy(update={"since": since[e.node]}) if e.node in since else e
                         for e in status.exclusions if e.node in kept]
    known = {e.node for e in status.exclusions}
    status.exclusions += [Exclusion(node=n, since=obs.now, reason="") for n in kept if n not in known]


def _healthy_since(node: Obj, device_faults: Mapping[str, Sequence[DeviceFault]]) -> datetime | None:
    """When the node last became Ready, if it is Ready and reports no fault now."""
    if not node_is_ready(node) or faulty_node(node, device_faults) is not None:
        return None
    return parse_time(ready_condition(node).get("lastTransitionTime")) or datetime.min.replace(tzinfo=UTC)


# How much of the command an AttemptStarted Event quotes (a `python -c` program would fill it).
COMMAND_IN_EVENT = 300


def _start_attempt(step: Step, pool: AcceleratorPool, attempt: int, why: str) -> Decision:
    status, spec = step.status, step.job.spec
    if attempt > MAX_ATTEMPT:
        return step.fail("AttemptLimit", f"attempt {attempt} would pass the limit of {MAX_ATTEMPT} attempts")
    status.attempt, status.pool = attempt, str(pool.metadata["name"])
    status.start_time = status.start_time or step.obs.now
    status.next_attempt_time, status.restart_delay_seconds = None, None
    resume = f", resuming from checkpoint step {status.last_checkpoint.step}" if status.last_checkpoint.step else ""
    step.condition("Admitted", True, "Admitted", step.rooms[status.pool].describe(status.pool))
    trainer = training_container(step.job, pool)
    step.move_to(JobPhase.PENDING, "AttemptStarted",
                 f"attempt {attempt} on pool {status.pool}: {spec.nodes} pod(s) of "
                 f"{pool.spec.devices_per_node} device(s){resume}{why}; image {trainer.image}, command "
                 f"{short(shlex.join(trainer.command + trainer.args), COMMAND_IN_EVENT)}")
    if not step.obs.service_exists:
        step.decision.create.append(headless_service(step.job))
    avoided = step.avoided_nodes(pool)
    for rank in range(spec.nodes):
        step.decision.create.append(attempt_pod(step.job, pool, attempt, rank, avoided))
    step.decision.starts_attempt = True
    return step.decision


def _no_pool_message(step: Step, pools: Sequence[str]) -> tuple[str, str]:
    """(reason, message) for a job that no pool of `pools` can take now."""
    spec = step.job.spec
    missing = [p for p in pools if p not in step.obs.pools]
    if len(missing) == len(pools):
        return "PoolNotFound", (f"none of the pools {', '.join(pools)} exists: waiting for one to be created")
    parts = []
    for name in pools:
        why = step.ineligible(name)
        parts.append(why.message if why else step.rooms[name].describe(name))
    return "WaitingForRoom", f"needs room for {spec.nodes} pod(s), one per node: {'; '.join(parts)}"


def _unusable_everywhere(step: Step) -> Decision | None:
    """Every pool exists and refuses the job for a reason the job itself must fix: fail, naming the field."""
    refusals = [step.ineligible(p) for p in step.job.spec.pools]
    if not all(r is not None and r.reason != "PoolNotFound" for r in refusals):
        return None  # a missing pool may still be created: wait
    reason = "NoImage" if all(r and r.reason == "NoImage" for r in refusals) else "CheckpointVolumeNotAllowed"
    return step.fail(reason, "; ".join(r.message for r in refusals if r))


def _start_first_attempt(step: Step) -> Decision:
    """On the first pool with room for the whole gang; a job no pool can take waits, without pods, and says why."""
    spec, capacity = step.job.spec, step.capacity()
    for name in spec.pools:
        if capacity[name] >= spec.nodes:
            skipped = spec.pools[: spec.pools.index(name)]
            why = f" ({', '.join(skipped)} without room)" if skipped else ""
            return _start_attempt(step, step.obs.pools[name], 1, why)
    failed = _unusable_everywhere(step)
    return failed if failed is not None else _wait(step, *_no_pool_message(step, spec.pools))


def _restart_when_due(step: Step) -> Decision:
    """Between attempts: tear the old one down, then wait out the backoff, then start the next."""
    status, obs, spec = step.status, step.obs, step.job.spec
    step.delete_unfinished(obs.pods)
    step.force_delete_stuck(obs.pods)
    if any(not pod_ended(p) for p in obs.pods):
        step.decision.requeue(TEARDOWN_RECHECK_SECONDS)  # never two attempts' ranks at once
        return step.decision
    if status.next_attempt_time is None:  # the pods have stopped: the backoff starts now
        status.next_attempt_time = obs.now + timedelta(seconds=status.restart_delay_seconds or 0)
    if obs.now < status.next_attempt_time:
        step.decision.requeue((status.next_attempt_time - obs.now).total_seconds())
        return step.decision
    target = status.pool or spec.pools[0]
    if step.capacity().get(target, 0) < spec.nodes:
        return _wait_for_room(step, target)
    return _start_attempt(step, obs.pools[target], status.attempt + 1, "")


def _wait_for_room(step: Step, target: str) -> Decision:
    """The next attempt's pool cannot take the gang now: another pool that can (a move, within maxFailovers),
    else wait; never a part of the gang on a pool that cannot hold it all."""
    status, spec = step.status, step.job.spec
    waited = (step.obs.now - (status.next_attempt_time or step.obs.now)).total_seconds()
    capacity = step.capacity()
    gone = target not in step.obs.pools
    plan = plan_after_pending(spec, target, capacity, spec.fault_policy.pending_timeout_seconds if gone else waited,
                              status.failovers)
    if plan is not None:
        status.failovers += 1
        step.decision.failed_over = (target, plan.pool)
        status.pool_faults = 0
        return _start_attempt(step, step.obs.pools[plan.pool], status.attempt + 1, f" (moved from {target}: "
                              f"{'the pool was deleted' if gone else 'no room there'})")
    failed = _unusable_everywhere(step)
    if failed is not None:
        return failed
    reason, message = _no_pool_message(step, [target])
    if not gone:
        step.decision.requeue(max(spec.fault_policy.pending_timeout_seconds - waited, 1.0))
    return _wait(step, reason, f"attempt {status.attempt + 1}: {message}")


def _follow_attempt(step: Step) -> Decision:
    status, spec, obs = step.status, step.job.spec, step.obs
    pool = obs.pools.get(status.pool or "")
    current = [p for p in obs.pods if attempt_of(p) == status.attempt]
    earlier = [p for p in obs.pods if attempt_of(p) != status.attempt]
    current, earlier = in_place.adopt(step, current, earlier)
    step.delete_unfinished(earlier)
    step.force_delete_stuck(earlier)
    step.note_checkpoint(current)
    if obs.foreign_checkpoint:
        _warn_foreign_checkpoint(step, obs.foreign_checkpoint)
    if obs.quarantined:
        _warn_quarantined(step, obs.quarantined)

    present = {rank_of(p) for p in current}
    missing = [rank for rank in range(spec.nodes) if rank not in present]
    # Ranks whose pods are gone under a running attempt count with their last state, beside the others.
    gone = departed_ranks(step.job, missing, obs.departed) if status.phase == JobPhase.RUNNING else []
    found = find_attempt_fault(step.job, [*current, *gone], obs.nodes_by_name, obs.device_faults, obs.now,
                               obs.supervisors)
    if isinstance(found, float):
        step.decision.requeue(found)  # a symptom or a grace so far: let the other ranks finish and tell why
        return step.decision
    if found is not None:
        return _recover(step, current, found.fault, excludes_node=found.excludes_node)
    if missing and status.phase == JobPhase.RUNNING:
        return _recover(step, current, vanished_fault(step.job, missing, obs.now), excludes_node=False)
    if len(current) == spec.nodes and all(phase_of(p) == "Succeeded" for p in current):
        step.move_to(JobPhase.SUCCEEDED, "Succeeded", f"all {spec.nodes} rank(s) finished")
        step.delete_unfinished(current)  # pods that sidecars keep running after their rank ended
        return step.decision
    if pool is None:
        step.condition("PoolAvailable", False, "PoolNotFound", f"AcceleratorPool {status.pool!r} was deleted: the "
                       "running attempt goes on; the next attempt goes to the next pool that exists")
        if missing or not all(is_bound(p) for p in current):  # nothing can be (re)created there: move on
            step.delete_unfinished(current)
            return _schedule_next_attempt(step, RecoveryPlan("restart", status.pool or "", 0.0, "PoolNotFound",
                                                             f"AcceleratorPool {status.pool!r} was deleted before "
                                                             f"attempt {status.attempt} was running: next pool"))
    else:
        if not obs.service_exists:
            step.decision.create.append(headless_service(step.job))
        leaving = {rank_of(p) for p in earlier if not pod_ended(p)}  # a rank's old pod goes before its new one
        master = _master_attempt(current, status.attempt)
        avoided = step.avoided_nodes(pool) if missing else []
        for rank in missing:
            if rank not in leaving:
                step.decision.create.append(attempt_pod(step.job, pool, status.attempt, rank, avoided,
                                                        master_attempt=master))
        if not missing and _pending_too_long(step, current):
            return step.decision
    if in_place.in_progress(status):
        late = in_place.follow(step, current, missing, PROGRESS_SECONDS)
        return _recover(step, current, late, excludes_node=False) if late is not None else step.decision
    _follow_pods(step, current, missing)
    if in_place.supervisor_silent(current):
        step.decision.requeue(in_place.SUPERVISOR_RECHECK_SECONDS)
    return step.decision


def _master_attempt(current: Sequence[Obj], attempt: int) -> int:
    """The attempt rank 0's pod was created for (its name and hostname carry it): an older one when rank 0
    stayed through an in-place restart, and the MASTER_ADDR of a replaced rank must name that pod."""
    for pod in current:
        if rank_of(pod) == 0:
            prefix, _, rest = pod["metadata"]["name"].rpartition("-a")
            number = rest.rpartition("-")[0]
            if prefix and number.isdigit():
                return int(number)
    return attempt


def _warn_foreign_checkpoint(step: Step, notice: str) -> None:
    """Once per notice: the checkpoint folder holds another job's (or another training config's) checkpoints."""
    message = f"attempt {step.status.attempt} {notice}"
    known = next((c for c in step.status.conditions if c.type == "CheckpointProvenance"), None)
    if known is None or known.message != message:
        step.event("Warning", "ForeignCheckpoint", message)
    step.condition("CheckpointProvenance", False, "ForeignCheckpoint", message)


def _warn_quarantined(step: Step, quarantined: Sequence[str]) -> None:
    """Once per new set: checkpoints that failed verification were set aside (quarantine/ on the volume)."""
    message = (f"attempt {step.status.attempt} set aside {len(quarantined)} checkpoint(s) that failed verification"
               f" ({'; '.join(quarantined)}); they are kept in quarantine/ on the checkpoint volume")
    known = next((c for c in step.status.conditions if c.type == "CheckpointIntegrity"), None)
    if known is None or known.message != message:
        step.event("Warning", "CheckpointQuarantined", message)
    step.condition("CheckpointIntegrity", False, "CheckpointQuarantined", message)


def _recover(step: Step, current: list[Obj], fault: Fault, excludes_node: bool) -> Decision:
    """Record the fault, tear the gang down, and let the policy pick: fail, restart, or fail over. The node is
    excluded only on strong evidence against it (`AttemptFault.excludes_node`): a rank that merely lost its peer,
    or words in a log that no library printed, must not shrink the job's pool."""
    status, spec = step.status, step.job.spec
    step.note_checkpoint(current, fault)
    status.faults = [*status.faults, fault][-MAX_FAULTS:]
    if fault.fault_class in POOL_FAULTS:
        status.pool_faults += 1
    where = f" on node {fault.node}" if fault.node else ""
    volume = f"; {storage_location(spec, fault.message)}" if fault.fault_class == FaultClass.STORAGE else ""
    step.event("Warning", "FaultDetected", f"attempt {fault.attempt}, {fault.pod or 'a pod'}{where}: "
               f"{fault.fault_class.value}/{fault.reason}: {fault.message}{volume}")
    if spec.fault_policy.exclude_faulty_nodes and fault.node and excludes_node:
        _exclude(step, fault.node, f"{fault.fault_class.value}/{fault.reason}")
    current_pool = status.pool or spec.pools[0]
    plan = plan_after_fault(spec, status.faults, status.restarts, current_pool, step.capacity(),
                            pool_faults=status.pool_faults, failovers=status.failovers)
    if plan.outcome == "fail":
        return step.fail(plan.reason, plan.message)
    step.decision.restarted = (status.pool or "", fault.fault_class.value)
    status.restarts += 1
    summary = (f"{fault.fault_class.value} fault {fault.reason}: restart {status.restarts} of "
               f"{spec.fault_policy.max_restarts}")
    pods = in_place.split(step, current, fault, excludes_node) if plan.outcome == "restart" else None
    if isinstance(pods, tuple):
        in_place.start(step, *pods, summary)
        return step.decision
    if pods is not None and pods.escalates:
        step.decision.in_place = "escalated"
        plan = dataclasses.replace(plan, message=f"{plan.message}; a full restart: {pods.why}")
    step.delete_unfinished(current)
    return _schedule_next_attempt(step, plan)


def _exclude(step: Step, node: str, reason: str) -> None:
    status = step.status
    if node not in status.excluded_nodes:
        status.excluded_nodes = sorted({*status.excluded_nodes, node})
    status.exclusions = [e for e in status.exclusions if e.node != node]
    status.exclusions.append(Exclusion(node=node, since=step.obs.now, reason=reason))


def _schedule_next_attempt(step: Step, plan: RecoveryPlan) -> Decision:
    status = step.status
    if in_place.in_progress(status):  # it did not finish: over, and the next attempt is a full one
        status.in_place_restart = None
    if plan.outcome == "failover":
        step.decision.failed_over = (status.pool or "", plan.pool)
        status.failovers += 1
        status.pool, status.pool_faults = plan.pool, 0
    status.next_attempt_time, status.restart_delay_seconds = None, round(plan.delay_seconds)
    step.move_to(JobPhase.RESTARTING, plan.reason, plan.message, warning=plan.outcome == "failover")
    step.decision.requeue(TEARDOWN_RECHECK_SECONDS)
    return step.decision


def _scheduler_says(pods: Sequence[Obj]) -> str:
    """The scheduler's reason for the first unscheduled pod (`0/3 nodes are available: ...`), if any."""
    for pod in pods:
        for condition in pod.get("status", {}).get("conditions") or []:
            if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
                return str(condition.get("message") or condition.get("reason") or "")
    return ""


def _pending_too_long(step: Step, current: list[Obj]) -> bool:
    """Pods unschedulable for pendingTimeoutSeconds move the job to the next pool (no fault, no restart)."""
    # From the oldest pod still waiting for a node: the pods that stayed through an in-place restart may be hours
    # old while the replaced rank's new pod was created a second ago.
    created = [t for t in map(created_at, (p for p in current if not is_bound(p))) if t is not None]
    if not created:
        return False
    waited = (step.obs.now - min(created)).total_seconds()
    spec, status = step.job.spec, step.status
    plan = plan_after_pending(spec, status.pool or spec.pools[0], step.capacity(), waited, status.failovers)
    if plan is None:
        step.decision.requeue(max(spec.fault_policy.pending_timeout_seconds - waited, 1.0))
        return False
    step.delete_unfinished(current)
    _schedule_next_attempt(step, plan)
    return True


def _follow_pods(step: Step, current: list[Obj], missing: list[int]) -> None:
    if missing:
        return  # they are being created: the phase stays where it is
    status = step.status
    if all(phase_of(p) in ("Running", "Succeeded") for p in current):
        if status.phase != JobPhase.RUNNING and status.faults and status.faults[-1].attempt == status.attempt - 1:
            step.decision.recovered_after = (step.obs.now - status.faults[-1].time).total_seconds()
        step.move_to(JobPhase.RUNNING, "Running", f"all {len(current)} rank(s) running")
        step.decision.requeue(PROGRESS_SECONDS)  # its checkpoints, read from rank 0's log
    elif all(is_bound(p) for p in current):
        step.move_to(JobPhase.STARTING, "Starting", f"all {len(current)} pod(s) scheduled; waiting for them to run")
    else:
        unbound = [p for p in current if not is_bound(p)]
        says = _scheduler_says(unbound)
        step.move_to(JobPhase.PENDING, "Scheduling",
                     f"waiting for {len(unbound)} pod(s) to be scheduled" + (f": {says}" if says else ""))
