"""Did the current attempt fault, and where can the next one run? Pure functions over what the
operator observed: the attempt's pods, the nodes, the accelerator fault reports."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from tandem.operator.api import AcceleratorPool, Fault, FaultClass, TrainingJob
from tandem.operator.classify import Classification, classify_node, classify_pod
from tandem.operator.device_reports import DeviceFault
from tandem.operator.observe import (
    Obj,
    finished_at,
    is_finished,
    node_is_ready,
    parse_time,
    phase_of,
    pool_nodes,
    rank_of,
)

MESSAGE_LIMIT = 1024
# Texts a rank prints *because* another rank died first: never the root cause when another exists.
SECONDARY_REASONS = frozenset({"PeerConnectionLost"})
# How long a failure that only says "my peer went away" waits for the other ranks to finish and say
# why: the runtime stops a pod's ranks within seconds of the first failure, and tearing the others
# down earlier would delete the pod whose log holds the root cause.
ROOT_CAUSE_GRACE_SECONDS = 10.0


def node_name(pod: Obj) -> str | None:
    return pod.get("spec", {}).get("nodeName")


def faulty_node(node: Obj, device_faults: Mapping[str, Sequence[DeviceFault]]) -> Classification | None:
    return classify_node(node, device_faults.get(node["metadata"]["name"], ()))


def pod_slots(node: Obj, pool: AcceleratorPool) -> int:
    """How many of the pool's pods a node holds: its allocatable devices / devicesPerNode (one for
    a CPU pool). Other jobs' pods are the scheduler's business; this is what the node could hold."""
    resource = pool.spec.device_resource
    if not resource or pool.spec.accelerator.value == "cpu":
        return 1
    try:
        devices = int(str(node.get("status", {}).get("allocatable", {}).get(resource, "0")))
    except ValueError:
        return 0
    return devices // max(pool.spec.devices_per_node, 1)


def usable_capacity(pools: Mapping[str, AcceleratorPool], nodes: Sequence[Obj],
                    device_faults: Mapping[str, Sequence[DeviceFault]], excluded: Sequence[str]) -> dict[str, int]:
    """Pods per pool a new attempt can place on nodes that are Ready, have no open fault and are not
    excluded by the job."""
    capacity = {}
    for name, pool in pools.items():
        usable = [n for n in pool_nodes(pool, list(nodes))
                  if node_is_ready(n) and n["metadata"]["name"] not in excluded
                  and faulty_node(n, device_faults) is None]
        capacity[name] = sum(pod_slots(n, pool) for n in usable)
    return capacity


def _root_cause_key(item: tuple[Obj, Classification]) -> tuple[bool, str, bool, int]:
    pod, found = item
    finished = finished_at(pod)
    return (found.reason in SECONDARY_REASONS, finished or "~", found.fault_class == FaultClass.UNKNOWN, rank_of(pod))


def _waiting_for_root_cause(best: tuple[Obj, Classification], pods: Sequence[Obj], now: datetime) -> float | None:
    """Seconds to wait when the best failure is only a symptom and another rank is still finishing."""
    pod, found = best
    if found.reason not in SECONDARY_REASONS and found.fault_class != FaultClass.UNKNOWN:
        return None
    if not any(not is_finished(p) and p is not pod for p in pods):
        return None
    failed_at = parse_time(finished_at(pod)) or now
    left = ROOT_CAUSE_GRACE_SECONDS - (now - failed_at).total_seconds()
    return left if left > 0 else None


def attempt_fault(job: TrainingJob, pods: Sequence[Obj], nodes_by_name: Mapping[str, Obj],
                  device_faults: Mapping[str, Sequence[DeviceFault]], now: datetime) -> Fault | float | None:
    """The fault that ends the attempt, if any: a failed rank (the first to fail is the root cause),
    or a rank on a node that died or reports an accelerator fault while the rank still runs. A number
    instead: seconds to wait for the other ranks, when the only failure so far is a symptom."""
    candidates: list[tuple[Obj, Classification]] = []
    for pod in pods:
        node = nodes_by_name.get(node_name(pod) or "")
        if phase_of(pod) == "Failed":
            candidates.append((pod, classify_pod(pod, node, device_faults.get(node_name(pod) or "", ()))))
        elif not is_finished(pod) and node_name(pod):
            found = faulty_node(node, device_faults) if node is not None else Classification(
                fault_class=FaultClass.NODE, reason="NodeLost", message=f"node {node_name(pod)} is gone",
                source="node", node=node_name(pod))
            if found is not None:
                candidates.append((pod, found))
    if not candidates:
        return None
    best = min(candidates, key=_root_cause_key)
    wait = _waiting_for_root_cause(best, pods, now)
    if wait is not None:
        return wait
    pod, found = best
    status = job.status
    return Fault.model_validate({
        "time": now, "attempt": status.attempt, "pool": status.pool or job.spec.pools[0],
        "node": found.node or node_name(pod), "pod": pod["metadata"]["name"], "class": found.fault_class,
        "reason": found.reason, "message": found.message[:MESSAGE_LIMIT], "step": found.step,
        "checkpointStep": found.checkpoint_step if found.checkpoint_step is not None else status.last_checkpoint.step,
    })


def vanished_fault(job: TrainingJob, missing_ranks: Sequence[int], now: datetime) -> Fault:
    """Pods deleted under a running attempt (by a person, an eviction, a node's removal)."""
    status = job.status
    return Fault.model_validate({
        "time": now, "attempt": status.attempt, "pool": status.pool or job.spec.pools[0], "class": FaultClass.NODE,
        "reason": "PodLost", "message": f"pod(s) of rank {list(missing_ranks)} disappeared while the attempt ran",
        "checkpointStep": status.last_checkpoint.step,
    })
