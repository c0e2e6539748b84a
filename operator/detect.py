"""Did the current attempt fault, and where can the next one run? Pure functions over what the
operator observed: the attempt's pods, the nodes, the accelerator fault reports (docs/design.md#fault-classes).

The candidates: every failed rank, every rank still running on a node that is gone, NotReady or reports an
accelerator fault, every rank whose container cannot start. The fault is the one with the best evidence
(`_evidence_key`), not the lowest rank or the first second: a user's bug on rank 1 beats the collective error
it caused on rank 0. Two graces keep an attempt alive while nothing else ends it: a node NotReady for less than
faultPolicy.nodeNotReadyGraceSeconds, and an image pull (or a runtime's trouble) for START_GRACE_SECONDS."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tandem.faults.precedence import WEIGHT
from tandem.faults.taxonomy import MESSAGE_LIMIT, PEER_DIED, cause_rank
from tandem.in_place import SupervisorReport
from tandem.operator.api import Fault, FaultClass, TrainingJob
from tandem.operator.classify import (
    START_GRACE_SECONDS,
    Classification,
    classify_node,
    classify_pod,
    classify_waiting,
    node_reports,
    runs_launcher,
    start_failure,
)
from tandem.operator.device_reports import DeviceFault
from tandem.operator.observe import (
    Obj,
    attempt_of,
    finished_at,
    is_finished,
    parse_time,
    phase_of,
    rank_of,
    ready_condition,
    stopped_from_outside,
)
from tandem.operator.podtemplate import custom_command

# How much a source proves (tandem.faults.precedence.WEIGHT): the runtime's own report; what the kubelet, the API
# server and the device plugins saw; last, a log (the user's to write). Classification.symptom ranks below all.
# Symptoms that say outright that a peer died (tandem.faults.taxonomy.PEER_DIED) rank below those of a rank that
# waited on a peer: the rank that timed out may be the one the others lost. Worth waiting for the peer to say why.
# How long a failure that only says "my peer went away" waits for the other ranks to finish and say
# why: the runtime stops a pod's ranks within seconds of the first failure, and tearing the others
# down earlier would delete the pod whose log holds the root cause.
ROOT_CAUSE_GRACE_SECONDS = 10.0
NOT_READY_TAINTS = frozenset({"node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"})
OUT_OF_SERVICE = "node.kubernetes.io/out-of-service"


def node_name(pod: Obj) -> str | None:
    return pod.get("spec", {}).get("nodeName")


# The verdict per (node, its resourceVersion, its fault reports): every admission asks it of every node of a pool
# (about 10 ms per admission at a thousand nodes otherwise); a node that changes has a new version.
_VERDICTS: dict[tuple[str, str, tuple[DeviceFault, ...]], Classification | None] = {}
_VERDICTS_KEPT = 20_000


def faulty_node(node: Obj, device_faults: Mapping[str, Sequence[DeviceFault]]) -> Classification | None:
    name = node["metadata"]["name"]
    faults = tuple(device_faults.get(name, ()))
    version = node["metadata"].get("resourceVersion")
    if not version:  # a node never served by an API (a test's): no identity to remember it by
        return classify_node(node, faults)
    key = (name, str(version), faults)
    if key not in _VERDICTS:
        if len(_VERDICTS) >= _VERDICTS_KEPT:
            _VERDICTS.clear()
        _VERDICTS[key] = classify_node(node, faults)
    return _VERDICTS[key]


@dataclass(frozen=True)
class _Candidate:
    pod: Obj
    found: Classification
    wait: float = 0.0  # seconds of a grace still running: alone, this candidate does not end the attempt yet


def _pod_started(pod: Obj) -> datetime | None:
    """When the kubelet took the pod on (status.startTime), else when it was created: from the pod itself, so a
    restarted operator measures the same time. None only for a pod the API server never serves."""
    return (parse_time(pod.get("status", {}).get("startTime"))
            or parse_time(pod.get("metadata", {}).get("creationTimestamp")))


def _grace_left(since: datetime | None, grace: float, now: datetime) -> float:
    """Seconds of `grace` left since `since`; none without a time (decide now rather than wait for ever)."""
    if since is None:
        return 0.0
    return min(grace, max(grace - (now - since).total_seconds(), 0.0))


def _not_ready_since(node: Obj, pod: Obj) -> datetime | None:
    """When the node stopped being Ready: its Ready condition's lastTransitionTime, else the not-ready or
    unreachable taint's timeAdded. Without either, when the rank started on it (status.startTime, else its
    creation): the node was Ready then, so the grace can only end early, never be stretched, and a restarted
    operator, which remembers nothing, reads the same time from the pod. None: no time at all (decide now)."""
    ready = ready_condition(node)
    since = parse_time(ready.get("lastTransitionTime")) if ready and ready.get("status") != "True" else None
    if since:
        return since
    for taint in node.get("spec", {}).get("taints") or []:
        if isinstance(taint, dict) and taint.get("key") in NOT_READY_TAINTS:
            since = parse_time(taint.get("timeAdded"))
            if since:
                return since
    return _pod_started(pod)


def _node_grace_left(job: TrainingJob, node: Obj, found: Classification, device_faults: Sequence[DeviceFault],
                     pod: Obj, now: datetime) -> float:
    """Seconds left before a NotReady node ends the attempt. A node being deleted, declared out of service or
    reporting an accelerator fault is not waited for: that is more than a missed heartbeat."""
    if found.source != "node" or found.reason not in ("NodeNotReady", "NodeUnreachable"):
        return 0.0
    taints = {t.get("key") for t in node.get("spec", {}).get("taints") or [] if isinstance(t, dict)}
    if node.get("metadata", {}).get("deletionTimestamp") or OUT_OF_SERVICE in taints:
        return 0.0
    if node_reports(node, device_faults):
        return 0.0
    grace = float(job.spec.fault_policy.node_not_ready_grace_seconds)
    return _grace_left(_not_ready_since(node, pod), grace, now)


def _on_faulty_node(job: TrainingJob, pod: Obj, node: Obj | None,
                    device_faults: Mapping[str, Sequence[DeviceFault]], now: datetime) -> _Candidate | None:
    """A rank still running on a node that died, is NotReady or reports a fault."""
    name = node_name(pod) or ""
    if node is None:
        return _Candidate(pod, Classification(FaultClass.NODE, "NodeLost", f"node {name} is gone", "node", node=name))
    found = faulty_node(node, device_faults)
    if found is None:
        return None
    return _Candidate(pod, found, _node_grace_left(job, node, found, device_faults.get(name, ()), pod, now))


def _not_started(pod: Obj, now: datetime) -> _Candidate | None:
    """A rank whose container never ran its command; while a cause that may go away has its grace, the rank is
    only `unknown`: another rank's failure may end the attempt, but never as the user's fault."""
    failure = start_failure(pod)
    if failure is None:
        return None
    wait = _grace_left(_pod_started(pod), START_GRACE_SECONDS, now) if failure.grace else 0.0
    found = replace(failure.found, fault_class=FaultClass.UNKNOWN) if wait > 0 else failure.found
    return _Candidate(pod, found, wait)


def _finished(pod: Obj) -> datetime:
    return parse_time(finished_at(pod)) or datetime.max.replace(tzinfo=UTC)


def _evidence_key(candidate: _Candidate) -> tuple[int, int, datetime, int]:
    """Root causes before `unknown` before symptoms, whatever their times and ranks; among those, the stronger
    source; then the earliest to fail (a running rank on a dead node has not failed: last); then the lowest rank."""
    found = candidate.found
    weight = WEIGHT.get(found.source, len(WEIGHT))
    return cause_rank(found.fault_class, found.reason), weight, _finished(candidate.pod), rank_of(candidate.pod)


def _waiting_for_root_cause(best: _Candidate, pods: Sequence[Obj], now: datetime) -> float | None:
    """Seconds to wait when the best failure is only a peer's death or unknown and another rank is still
    finishing: its pod may hold the root cause."""
    pod, found = best.pod, best.found
    if found.reason not in PEER_DIED and found.fault_class != FaultClass.UNKNOWN:
        return None
    if not is_finished(pod) or not any(not is_finished(p) and p is not pod for p in pods):
        return None
    failed_at = parse_time(finished_at(pod)) or now
    left = ROOT_CAUSE_GRACE_SECONDS - (now - failed_at).total_seconds()
    return left if left > 0 else None


def _runs_launcher(job: TrainingJob, pod: Obj) -> bool:
    """The pod's own spec says what ran; the job's spec when the pod's does not show its containers."""
    launcher = runs_launcher(pod)
    return not custom_command(job) if launcher is None else launcher


def _waiting(job: TrainingJob, pod: Obj, reports: Mapping[str, SupervisorReport]) -> _Candidate | None:
    """A rank whose supervisor kept its pod after its workers faulted in this attempt and waits for the operator."""
    report = reports.get(pod["metadata"]["name"])
    if report is None or report.state != "faulted" or report.attempt != job.status.attempt or report.fault is None:
        return None
    found = classify_waiting(pod, report.fault)
    return _Candidate(pod, found) if found is not None else None


def _candidates(job: TrainingJob, pods: Sequence[Obj], nodes_by_name: Mapping[str, Obj],
                device_faults: Mapping[str, Sequence[DeviceFault]], now: datetime,
                reports: Mapping[str, SupervisorReport]) -> list[_Candidate]:
    """Every failed rank (and one that exited 0 after its pod was marked for disruption), every rank still running
    on a node that died or reports a fault or whose supervisor reports its workers' fault, and every rank whose
    container cannot start."""
    candidates: list[_Candidate] = []
    for pod in pods:
        node = nodes_by_name.get(node_name(pod) or "")
        if phase_of(pod) == "Failed" or stopped_from_outside(pod):
            found = classify_pod(pod, node, device_faults.get(node_name(pod) or "", ()),
                                 launcher=_runs_launcher(job, pod))
            candidates.append(_Candidate(pod, found))
        elif not is_finished(pod):
            found = _on_faulty_node(job, pod, node, device_faults, now) if node_name(pod) else None
            if found := found or _waiting(job, pod, reports) or _not_started(pod, now):
                candidates.append(found)
    return candidates


@dataclass(frozen=True)
class AttemptFault:
    """The fault that ends an attempt (for status.faults) and the evidence behind it."""

    fault: Fault
    cause: Classification

    @property
    def excludes_node(self) -> bool:
        """Whether fault.node deserves exclusion: an interconnect/device/node fault whose evidence is not a
        symptom (a rank that lost its peer, a collective that waited) and not only words in a log tail."""
        return self.cause.excludes_node


def attempt_fault(job: TrainingJob, pods: Sequence[Obj], nodes_by_name: Mapping[str, Obj],
                  device_faults: Mapping[str, Sequence[DeviceFault]], now: datetime) -> Fault | float | None:
    """`find_attempt_fault` without the evidence: the Fault, seconds to wait, or None."""
    found = find_attempt_fault(job, pods, nodes_by_name, device_faults, now)
    return found.fault if isinstance(found, AttemptFault) else found


def find_attempt_fault(job: TrainingJob, pods: Sequence[Obj], nodes_by_name: Mapping[str, Obj],
                       device_faults: Mapping[str, Sequence[DeviceFault]], now: datetime,
                       reports: Mapping[str, SupervisorReport] | None = None) -> AttemptFault | float | None:
    """The fault that ends the attempt, if any, and the evidence behind it (see `_evidence_key`). A number
    instead: seconds to wait, when the only failure so far is a symptom and another rank may still say why, or
    when every candidate is still in its grace (a NotReady node, an image pull)."""
    candidates = _candidates(job, pods, nodes_by_name, device_faults, now, reports or {})
    if not candidates:
        return None
    if all(c.wait > 0 for c in candidates):
        return min(c.wait for c in candidates)
    # Something ends the attempt now; a rank still in its grace competes as what it is so far.
    best = min(candidates, key=_evidence_key)
    wait = _waiting_for_root_cause(best, pods, now)
    if wait is not None:
        return wait
    pod, found = best.pod, best.found
    status = job.status
    return AttemptFault(Fault.model_validate({
        "time": now, "attempt": status.attempt, "pool": status.pool or job.spec.pools[0],
        "node": found.node or node_name(pod), "pod": pod["metadata"]["name"], "class": found.fault_class,
        "reason": found.reason, "message": found.message[:MESSAGE_LIMIT], "step": found.step,
        "checkpointStep": found.checkpoint_step if found.checkpoint_step is not None else status.last_checkpoint.step,
    }), found)


def departed_ranks(job: TrainingJob, missing_ranks: Sequence[int], departed: Sequence[Obj]) -> list[Obj]:
    """The last state the pod watch saw of the attempt's ranks whose pods are gone (their DELETED events' objects):
    the kubelet removes an evicted pod right after writing its end, and a failed pod may be deleted before a
    reconcile read it. They are judged with the other ranks; a rank whose last state proves nothing is PodLost."""
    return [p for p in departed if attempt_of(p) == job.status.attempt and rank_of(p) in missing_ranks]


def vanished_fault(job: TrainingJob, missing_ranks: Sequence[int], now: datetime) -> Fault:
    """Pods deleted under a running attempt (by a person, an eviction, a node's removal)."""
    status = job.status
    return Fault.model_validate({
        "time": now, "attempt": status.attempt, "pool": status.pool or job.spec.pools[0], "class": FaultClass.NODE,
        "reason": "PodLost", "message": f"pod(s) of rank {list(missing_ranks)} disappeared while the attempt ran",
        "checkpointStep": status.last_checkpoint.step,
    })
