"""Room for a gang: how many of a job's pods each pool can take *now*, counting what other jobs hold.

An attempt is admitted only when its pool can hold the whole gang, one pod per node (the pods carry a
required anti-affinity on their attempt), so that jobs never each hold part of a pool and wait for
the rest for ever. Pure functions over the nodes, the device reports and the pods the operator sees."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tandem.operator.api import AcceleratorPool, Toleration
from tandem.operator.detect import faulty_node
from tandem.operator.device_reports import DeviceFault
from tandem.operator.observe import Obj, is_bound, labels, node_is_ready, pod_ended, pool_nodes
from tandem.operator.podspec import POOL_LABEL

CHECKPOINT_SOURCES = ("persistentVolumeClaim", "emptyDir", "hostPath", "nfs")


@dataclass(frozen=True)
class Room:
    """What one pool offers a job's next attempt."""

    free: int  # nodes that can take one of the job's pods now
    usable: int  # nodes that are Ready, healthy and not excluded (busy or not)
    held: int  # usable nodes whose devices other pods hold

    def describe(self, pool: str) -> str:
        busy = f" ({self.held} held by other jobs)" if self.held else ""
        return f"pool {pool} has room for {self.free} pod(s) on {self.usable} usable node(s){busy}"


def _device_request(pod: Obj, resource: str) -> int:
    total = 0
    for container in pod.get("spec", {}).get("containers") or []:
        resources = container.get("resources") or {}
        value = (resources.get("requests") or {}).get(resource, (resources.get("limits") or {}).get(resource, 0))
        try:
            total += int(str(value))
        except ValueError:
            continue
    return total


def _devices(node: Obj, resource: str) -> int:
    try:
        return int(str(node.get("status", {}).get("allocatable", {}).get(resource, "0")))
    except ValueError:
        return 0


_UNSCHEDULABLE = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}


def tolerated(taint: Obj, tolerations: Sequence[Toleration]) -> bool:
    """Does one of `tolerations` tolerate `taint` (core/v1's matching rule)?"""
    for t in tolerations:
        effect = t.effect.value if t.effect else None
        operator = t.operator.value if t.operator else "Equal"
        if effect not in (None, taint.get("effect")):
            continue
        if t.key is None and operator == "Exists":
            return True
        if t.key == taint.get("key") and (operator == "Exists" or (t.value or "") == (taint.get("value") or "")):
            return True
    return False


def schedulable(node: Obj, tolerations: Sequence[Toleration]) -> bool:
    """Would the scheduler place a pod with `tolerations` on the node: not cordoned, and every NoSchedule or
    NoExecute taint tolerated?"""
    spec = node.get("spec") or {}
    if spec.get("unschedulable") and not tolerated(_UNSCHEDULABLE, tolerations):
        return False
    return all(tolerated(t, tolerations) for t in spec.get("taints") or []
               if isinstance(t, dict) and t.get("effect") in ("NoSchedule", "NoExecute"))


def room(pool: AcceleratorPool, nodes: Sequence[Obj], device_faults: Mapping[str, Sequence[DeviceFault]],
         excluded: Sequence[str], others: Sequence[Obj], tolerations: Sequence[Toleration] = (),
         node_selector: Mapping[str, str] | None = None) -> Room:
    """`others`: pods of other jobs (and anything else bound to the pool's nodes), finished or not;
    `tolerations`: the job's own, beside the pool's (a cordoned node, or one tainted against the pods, is no room);
    `node_selector`: the job's own, which its pods carry beside the pool's (the pool's value wins on a shared key:
    operator/podtemplate.py), so a node outside it is no room."""
    name, resource = str(pool.metadata.get("name", "")), pool.spec.device_resource
    tolerations = [*pool.spec.tolerations, *tolerations]
    own = {k: v for k, v in (node_selector or {}).items() if k not in pool.spec.node_selector}
    live = [p for p in others if not pod_ended(p)]
    used: Counter[str] = Counter()
    for pod in live:
        if is_bound(pod) and resource:
            used[pod["spec"]["nodeName"]] += _device_request(pod, resource)
    usable = [n for n in pool_nodes(pool, list(nodes))
              if node_is_ready(n) and n["metadata"]["name"] not in excluded and faulty_node(n, device_faults) is None
              and schedulable(n, tolerations) and all(labels(n).get(k) == v for k, v in own.items())]
    if not resource or pool.spec.accelerator.value == "cpu":
        fitting = len(usable)
    else:
        need = pool.spec.devices_per_node
        fitting = sum(1 for n in usable if _devices(n, resource) - used[n["metadata"]["name"]] >= need)
    # Other jobs' admitted pods that the scheduler has not placed yet will take nodes of this pool too.
    waiting = sum(1 for p in live if not is_bound(p) and labels(p).get(POOL_LABEL) == name)
    free = max(fitting - waiting, 0)
    return Room(free=free, usable=len(usable), held=len(usable) - free)


def rooms(pools: Mapping[str, AcceleratorPool], nodes: Sequence[Obj],
          device_faults: Mapping[str, Sequence[DeviceFault]], excluded: Sequence[str],
          others: Sequence[Obj], tolerations: Sequence[Toleration] = (),
          node_selector: Mapping[str, str] | None = None) -> dict[str, Room]:
    return {name: room(pool, nodes, device_faults, excluded, others, tolerations, node_selector)
            for name, pool in pools.items()}


def checkpoint_source(volume: Mapping[str, object]) -> str:
    """Which volume source the job's checkpoint uses (the API guarantees exactly one)."""
    return next((source for source in CHECKPOINT_SOURCES if volume.get(source) is not None), "")
