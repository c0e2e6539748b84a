"""In-place restarts (docs/design.md#in-place-restart), the core's part: which pods may stay after a fault, how
an in-place restart begins, and when it is done or has failed and becomes a full restart. Pure, like the rest of
the core; `tandem.operator.reconcile` calls these at its decision points.

An in-place restart is an attempt like any other (status.attempt increments, the fault is recorded, restarts
counts it), started inside the pods that stay: their `tandem.dev/attempt` label moves to the new attempt, which
is what tells their supervisors to restart their workers (tandem.in_place). Pods that must move are deleted and
replaced by new pods of the new attempt. Everything needed to carry on is in status.inPlaceRestart, written before
any label moves: an operator that dies half-way relabels the rest on its next reconcile."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tandem.in_place import IN_PLACE_ANNOTATION, RESTARTS_IN_PLACE
from tandem.operator.api import MAX_ATTEMPT, Fault, FaultClass, InPlaceRestart, JobPhase, TrainingJobStatus
from tandem.operator.detect import faulty_node, node_name
from tandem.operator.observe import Obj, is_terminating, parse_time, phase_of, rank_of
from tandem.operator.step import Step

IN_PLACE_RECHECK_SECONDS = 1.0  # while an in-place restart runs: how soon the operator looks again
SUPERVISOR_RECHECK_SECONDS = 2.0  # a supervised pod not Ready: its supervisor may have reported a fault


def takes_part(pod: Obj) -> bool:
    """The pod's supervisor restarts in place when asked (the operator marked it so when it created it)."""
    return (pod.get("metadata", {}).get("annotations") or {}).get(IN_PLACE_ANNOTATION) == "true"


def is_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions") or [])


def in_progress(status: TrainingJobStatus) -> bool:
    restart = status.in_place_restart
    return restart is not None and restart.attempt == status.attempt and restart.completed_at is None


def adopt(step: Step, current: list[Obj], earlier: list[Obj]) -> tuple[list[Obj], list[Obj]]:
    """Pods that stay through the running in-place restart but still carry the old attempt's label (the operator
    stopped before it moved them, or the patch failed): they belong to the current attempt, and are relabelled."""
    restart = step.status.in_place_restart
    if restart is None or restart.attempt != step.status.attempt:
        return current, earlier
    names = set(restart.pods)
    stay = [p for p in earlier if p["metadata"]["name"] in names and not is_terminating(p)]
    for pod in stay:
        step.decision.relabel.append(pod["metadata"]["name"])
    return current + stay, [p for p in earlier if p not in stay]


def _must_move(step: Step, pod: Obj, fault: Fault, excludes_node: bool) -> bool:
    """A pod moves when it cannot restart in place (no supervisor that takes part, not running, going away) or
    its node may not keep it (excluded, gone, faulty, or the node the fault was seen on and blamed)."""
    if not takes_part(pod) or phase_of(pod) != "Running" or is_terminating(pod):
        return True
    node = node_name(pod) or ""
    if node in step.status.excluded_nodes:
        return True
    if node == fault.node and (excludes_node or fault.fault_class in (FaultClass.DEVICE, FaultClass.NODE)):
        return True
    seen = step.obs.nodes_by_name.get(node)
    return seen is None or faulty_node(seen, step.obs.device_faults) is not None


@dataclass(frozen=True)
class Full:
    """Why the next restart is a full one; `escalates`: an in-place restart was tried and did not hold."""

    why: str
    escalates: bool = False


def split(step: Step, current: Sequence[Obj], fault: Fault, excludes_node: bool) -> tuple[list[Obj], list[Obj]] | Full:
    """(the pods that stay, the pods that move) for an in-place restart after `fault`, or why it must be full."""
    status, policy, now = step.status, step.job.spec.fault_policy, step.obs.now
    if not policy.in_place_restart:
        return Full("faultPolicy.inPlaceRestart is false")
    if fault.fault_class not in RESTARTS_IN_PLACE:
        return Full(f"{fault.fault_class.value} faults restart in full")
    restart = status.in_place_restart
    if in_progress(status):
        status.in_place_restart = None  # over: the full restart's attempt follows as usual
        return Full(f"the in-place restart of attempt {status.attempt} did not hold", escalates=True)
    if restart is not None and (now - restart.requested_at).total_seconds() < policy.in_place_restart_window_seconds:
        return Full(f"a fault within inPlaceRestartWindowSeconds ({policy.in_place_restart_window_seconds}s) of the "
                    f"in-place restart of attempt {restart.attempt}", escalates=True)
    move = [p for p in current if _must_move(step, p, fault, excludes_node)]
    stay = [p for p in current if p not in move]
    if not stay:
        return Full("no pod can stay")
    if not any(rank_of(p) == 0 for p in stay):
        return Full("rank 0's pod must move, and the other ranks' MASTER_ADDR names it")
    if status.attempt + 1 > MAX_ATTEMPT:
        return Full(f"attempt {status.attempt + 1} would pass the limit of {MAX_ATTEMPT} attempts")
    return stay, move


def start(step: Step, stay: list[Obj], move: list[Obj], why: str) -> None:
    """The next attempt, inside the pods that stay; the others are deleted now and replaced once they are gone."""
    status = step.status
    status.attempt += 1
    names = sorted(p["metadata"]["name"] for p in stay)
    status.in_place_restart = InPlaceRestart(attempt=status.attempt, requested_at=step.obs.now, pods=names)
    step.decision.relabel += names
    step.delete_unfinished(move)
    step.decision.in_place = "restarted"
    moved = sorted(rank_of(p) for p in move)
    replaced = f"; rank(s) {', '.join(map(str, moved))} get new pods" if moved else ""
    resume = f" from checkpoint step {status.last_checkpoint.step}" if status.last_checkpoint.step else ""
    step.move_to(JobPhase.RESTARTING, "InPlace",
                 f"{why}: attempt {status.attempt} restarts in place{resume}: {len(stay)} pod(s) stay{replaced}")
    step.decision.requeue(IN_PLACE_RECHECK_SECONDS)


def _stepping(step: Step, pod: Obj, restart: InPlaceRestart) -> bool:
    """The pod's supervisor says the new attempt's workers passed their first step, or the pod turned Ready after
    the restart was asked for (the line may have scrolled out of the log's tail)."""
    report = step.obs.supervisors.get(pod["metadata"]["name"])
    if report is not None and report.attempt == restart.attempt and report.state == "stepping":
        return True
    ready = next((c for c in pod.get("status", {}).get("conditions") or [] if c.get("type") == "Ready"), {})
    since = parse_time(ready.get("lastTransitionTime"))
    # Strictly after: times have whole seconds, and a Ready of the old workers in the same second proves nothing.
    return ready.get("status") == "True" and since is not None and since > restart.requested_at


def follow(step: Step, current: list[Obj], missing: list[int], progress_seconds: float) -> Fault | None:
    """While an in-place restart runs: every rank past its first step (done: Running), the deadline passed (the
    Fault that makes the next restart a full one), or look again soon."""
    status, now = step.status, step.obs.now
    restart = status.in_place_restart
    assert restart is not None
    stayed = {p["metadata"]["name"] for p in current if p["metadata"]["name"] in restart.pods}
    behind = sorted({*missing, *(rank_of(p) for p in current if (p["metadata"]["name"] in stayed
                                                                 and not _stepping(step, p, restart))
                                 or (p["metadata"]["name"] not in stayed and phase_of(p) != "Running"))})
    took = (now - restart.requested_at).total_seconds()
    if not behind:
        restart.completed_at = now
        if status.faults:
            step.decision.recovered_after = (now - status.faults[-1].time).total_seconds()
        step.move_to(JobPhase.RUNNING, "Running", f"all {step.job.spec.nodes} rank(s) running: attempt "
                     f"{status.attempt} restarted in place in {took:.0f}s")
        step.decision.requeue(progress_seconds)
        return None
    deadline = step.job.spec.fault_policy.in_place_restart_deadline_seconds
    if took < deadline:
        step.decision.requeue(min(IN_PLACE_RECHECK_SECONDS, deadline - took))
        return None
    return Fault.model_validate({
        "time": now, "attempt": status.attempt, "pool": status.pool or step.job.spec.pools[0],
        "class": FaultClass.UNKNOWN, "reason": "InPlaceRestartTimedOut",
        "message": f"rank(s) {', '.join(map(str, behind))} did not reach their first step within "
                   f"inPlaceRestartDeadlineSeconds ({deadline}s) of the in-place restart",
        "checkpointStep": status.last_checkpoint.step,
    })


def supervisor_silent(pods: Sequence[Obj]) -> bool:
    """A supervised pod runs but is not Ready: its log may hold a fault its supervisor waits with."""
    return any(takes_part(p) and phase_of(p) == "Running" and not is_ready(p) for p in pods)
