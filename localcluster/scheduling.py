"""The scheduler service (the shell around `scheduler.py`'s pure decisions), fast enough for a thousand nodes.

`ClusterView` is the scheduler's snapshot, as kube-scheduler keeps one: the nodes sorted by name, the pods
bound to each node, the pods waiting to be scheduled, and each node's usage (what its pods request, how many
they are), all kept in step with the store from its events (only the objects that changed are read again)
rather than rebuilt from every object on every event. `ClusterView.decide(pod)` answers exactly as
`scheduler.schedule(pod, nodes, pods_on_nodes)` does (tests/unit/localcluster/test_scheduling.py compares
them), only cheaper:
- the node-only filters (NodeUnschedulable, TaintToleration, NodeAffinity) depend on the pod's tolerations,
  nodeSelector and node affinity alone: their verdict per node is kept per such triple until a node changes;
- nodes with the same allocatable and the same usage fit and score alike: NodeResourcesFit and
  LeastAllocated run once per such group, InterPodAffinity per node only for pods that have the terms;
- an unschedulable verdict is kept per pod shape (what `schedule()` reads of a pod, but its name) until a
  node or a pod on a node changes: the other pending pods of a job that does not fit cost nothing.
A node whose pods' quantities do not parse sends the pod to `schedule()` itself, which fails as it fails.
`schedule_pending()` is one pass over the pending pods, oldest first; `run_scheduler()` runs a pass on
every burst of pod or node events, on the API's loop."""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from collections.abc import Mapping
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from tandem.localcluster.pod_affinity import check_pod_anti_affinity, has_anti_affinity
from tandem.localcluster.quantities import QuantityError
from tandem.localcluster.scheduler import (
    NO_NODES,
    NODES,
    PODS,
    Usage,
    _parsed,
    _score,
    bound,
    check_affinity,
    check_resources,
    check_taints,
    check_unschedulable,
    node_name,
    pod_requests,
    schedule,
    unschedulable,
    used_on,
    wants_scheduling,
)
from tandem.localcluster.store import Event, Key, Obj, Store, now_iso
from tandem.localcluster.volumes import impossible_claim

if TYPE_CHECKING:
    from tandem.localcluster.api import LocalAPI

_CACHED = 512  # node-filter verdicts and unschedulable verdicts kept, each (cleared when full)


def _node_part(pod: Obj) -> str:
    """What the node-only filters read of a pod. repr: equal reprs are equal values here (JSON data)."""
    spec = pod.get("spec") or {}
    return repr((spec.get("tolerations"), spec.get("nodeSelector"), (spec.get("affinity") or {}).get("nodeAffinity")))


def _shape(pod: Obj) -> str:
    """What `schedule()` reads of a pod but its name (the success message's only use of it)."""
    spec = pod.get("spec") or {}
    resources = [[c.get("resources") if isinstance(c, dict) else c for c in spec.get(part) or []]
                 for part in ("containers", "initContainers")]
    return repr((spec.get("tolerations"), spec.get("nodeSelector"), spec.get("affinity"), spec.get("volumes"),
                 resources, (pod.get("metadata") or {}).get("namespace")))


class ClusterView:
    """The nodes and pods of `objects` (a store's), kept in step by `sync()` with what changed since."""

    def __init__(self, objects: Mapping[Key, Obj]) -> None:
        self.objects = objects
        self.nodes: dict[str, Obj] = {}
        self.pending: dict[Key, Obj] = {}  # pods that want scheduling
        self._order: dict[Key, tuple[int, str, str, str]] = {}  # their place in the queue
        self._settled: dict[Key, tuple[int, Obj]] = {}  # (version, the pod as written) of an unschedulable verdict
        self.on_node: dict[str, dict[Key, Obj]] = {}  # every pod with a nodeName, by that name
        self._placed: dict[Key, str] = {}
        self._sorted: list[Obj] | None = None
        self._group: dict[str, int] = {}  # node name -> its group (see _group_of)
        self._groups: dict[tuple[Any, ...], int] = {}  # (allocatable, usage) -> group
        self._group_shapes: list[tuple[tuple[str, str], ...]] = []  # group -> its allocatable
        self._usage: dict[str, Usage] = {}
        self._node_filters: dict[str, tuple[int, list[str], Counter[str]]] = {}
        self._unschedulable: dict[str, tuple[int, str]] = {}
        self.nodes_version = 0  # moves when a node changes
        self.version = 0  # moves when anything a decision depends on changes: a node, a pod on a node
        self._dirty: set[Key] = set()
        self._queue: asyncio.Queue[Event] | None = None
        self._store: Store | None = None
        for key, obj in list(objects.items()):
            if key[0] in (PODS, NODES):
                self.apply(key, obj)

    @classmethod
    def following(cls, store: Store) -> ClusterView:
        """A view of the store that learns from its events which objects to read again."""
        view = cls(store.objects)
        view._store, view._queue = store, store.subscribe()
        return view

    def close(self) -> None:
        if self._store is not None and self._queue is not None:
            self._store.unsubscribe(self._queue)
            self._queue = None

    # --- keeping in step --------------------------------------------------------------------------
    def drain(self) -> None:
        """Note which pods and nodes the queued events touched (cheap; keeps the queue short)."""
        while self._queue is not None and not self._queue.empty():
            event = self._queue.get_nowait()
            if event.resource in (PODS, NODES):
                meta = event.obj["metadata"]
                self._dirty.add((event.resource, meta.get("namespace"), meta["name"]))

    def sync(self) -> None:
        """Read again the objects that changed: the view is then what rebuilding it from `objects` gives."""
        self.drain()
        if len(self._groups) >= _CACHED * 8:  # numbered anew, between decisions: shapes no node has any more go
            self._groups.clear()
            self._group_shapes.clear()
            self._group.clear()
        for key in self._dirty:
            self.apply(key, self.objects.get(key))
        self._dirty.clear()

    def apply(self, key: Key, obj: Obj | None) -> None:
        """The object stored under `key` now (None: gone)."""
        if key[0] == NODES:
            if self.nodes.get(key[2]) is not obj:
                if obj is None:
                    del self.nodes[key[2]]
                else:
                    self.nodes[key[2]] = obj
                self._sorted = None
                self._group.pop(key[2], None)
                self.nodes_version += 1
                self.version += 1
            return
        before = self._placed.get(key)
        if obj is not None and (self.pending.get(key) is obj or (
                before is not None and self.on_node[before].get(key) is obj)):
            return  # seen already (the pass's own binding, read again)
        if before is not None:
            del self._placed[key]
            pods = self.on_node[before]
            del pods[key]
            if not pods:
                del self.on_node[before]
            self._forget_usage(before)
        self.pending.pop(key, None)
        node = obj["spec"].get("nodeName") if obj is not None else None
        if obj is not None and node:
            self.on_node.setdefault(node, {})[key] = obj
            self._placed[key] = node
            self._forget_usage(node)
        elif obj is not None and wants_scheduling(obj):
            self.pending[key] = obj
            self._order[key] = _queue_order(obj)
        if key not in self.pending:
            self._order.pop(key, None)
            self._settled.pop(key, None)

    def _forget_usage(self, node: str) -> None:
        self._usage.pop(node, None)
        self._group.pop(node, None)
        self.version += 1

    # --- reads ------------------------------------------------------------------------------------
    def queue(self) -> list[Obj]:
        """The pending pods, highest priority first, then oldest first."""
        return [self.pending[key] for key in sorted(self.pending, key=self._order.__getitem__)]

    def settle(self, pod: Obj) -> None:
        """Note that `pod`, as stored now, was found unschedulable with the view as it is now."""
        meta = pod["metadata"]
        self._settled[(PODS, meta.get("namespace"), meta["name"])] = (self.version, pod)

    def settled(self, key: Key, pod: Obj) -> bool:
        """Whether deciding again would find what was written already (nothing it depends on changed)."""
        known = self._settled.get(key)
        return known is not None and known[0] == self.version and known[1] is pod

    def sorted_nodes(self) -> list[Obj]:
        if self._sorted is None:
            self._sorted = sorted(self.nodes.values(), key=node_name)
        return self._sorted

    def pods_on_nodes(self) -> dict[str, list[Obj]]:
        return {name: list(pods.values()) for name, pods in self.on_node.items()}

    def _group_of(self, name: str) -> int:
        """The group of a node (-1: its pods' quantities do not parse): nodes with the same allocatable
        and the same usage fit and score a pod alike. Groups are small numbers, cheap to hash."""
        try:
            usage = used_on(self.on_node.get(name, {}).values())
        except QuantityError:
            group = -1
        else:
            self._usage[name] = usage
            found = (self.nodes[name].get("status") or {}).get("allocatable") or {}
            allocatable_key = tuple(sorted((str(k), str(v)) for k, v in found.items()))
            shape = (allocatable_key, tuple(sorted(usage[0].items())), usage[1])
            group = self._groups.get(shape)
            if group is None:
                group = self._groups[shape] = len(self._group_shapes)
                self._group_shapes.append(allocatable_key)
        self._group[name] = group
        return group

    def _passing(self, pod: Obj, nodes: list[Obj]) -> tuple[list[str], Counter[str]]:
        """The nodes the node-only filters let through, in name order, and the others' reasons."""
        part = _node_part(pod)
        cached = self._node_filters.get(part)
        if cached is not None and cached[0] == self.nodes_version:
            return cached[1], cached[2]
        passing: list[str] = []
        reasons: Counter[str] = Counter()
        for node in nodes:
            rejected = check_unschedulable(pod, node) or check_taints(pod, node) or check_affinity(pod, node)
            if rejected:
                reasons.update(set(rejected))
            else:
                passing.append(node_name(node))
        if len(self._node_filters) >= _CACHED:
            self._node_filters.clear()
        self._node_filters[part] = (self.nodes_version, passing, reasons)
        return passing, reasons

    # --- the decision -----------------------------------------------------------------------------
    def decide(self, pod: Obj) -> tuple[str | None, str]:
        """`schedule(pod, self.sorted_nodes(), self.pods_on_nodes())`, QuantityError included."""
        nodes = self.sorted_nodes()
        if not nodes:
            return None, NO_NODES
        claim = impossible_claim(pod)
        if claim is not None:
            return None, f'0/{len(nodes)} nodes are available: persistentvolumeclaim "{claim}" not found.'
        shape = _shape(pod)
        known = self._unschedulable.get(shape)
        if known is not None and known[0] == self.version:
            return None, known[1]
        passing, node_reasons = self._passing(pod, nodes)
        reasons = Counter(node_reasons)
        groups: dict[int, list[str]] = {}
        known_groups = self._group
        for name in passing:  # the one loop over every node a pod costs: kept lean
            group = known_groups.get(name)
            if group is None:
                group = self._group_of(name)
            if group < 0:  # schedule() raises here, or on an earlier node, or not at all: ask it
                return schedule(pod, nodes, self.pods_on_nodes())
            members = groups.get(group)
            if members is None:
                groups[group] = [name]
            else:
                members.append(name)
        fitting: list[tuple[float, str]] = []
        if groups:
            requests: dict[str, Fraction] = pod_requests(pod)
            anti = has_anti_affinity(pod)
            for group, names in groups.items():
                capacity = dict(_parsed(self._group_shapes[group]))
                usage = self._usage[names[0]]
                rejected = check_resources(requests, capacity, usage)
                if rejected:
                    for reason in set(rejected):
                        reasons[reason] += len(names)
                    continue
                if anti:
                    fits = []
                    for name in names:
                        refused = check_pod_anti_affinity(pod, list(self.on_node.get(name, {}).values()))
                        if refused:
                            reasons.update(set(refused))
                        else:
                            fits.append(name)
                    names = fits
                if names:
                    fitting.append((-_score(requests, capacity, usage[0]), names[0]))
        if fitting:
            chosen = min(fitting)[1]
            meta = pod.get("metadata") or {}
            return chosen, f"Successfully assigned {meta.get('namespace')}/{meta.get('name')} to {chosen}"
        counted = sorted(f"{count} {reason}" for reason, count in reasons.items())
        message = f"0/{len(nodes)} nodes are available: {', '.join(counted)}."
        if len(self._unschedulable) >= _CACHED:
            self._unschedulable.clear()
        self._unschedulable[shape] = (self.version, message)
        return None, message


# --- the service ------------------------------------------------------------------------------
def _queue_order(pod: Obj) -> tuple[int, str, str, str]:
    meta = pod["metadata"]
    return -int(pod["spec"].get("priority") or 0), meta.get("creationTimestamp", ""), meta.get("namespace", ""), \
        meta["name"]


def schedule_pending(api: LocalAPI, view: ClusterView | None = None) -> None:
    """One pass over the pending pods, oldest first, each seeing the bindings made before it. `view`:
    the service's own, kept across passes; without one, a view is built from the store for this pass."""
    if view is None:
        view = ClusterView(api.store.objects)
    view.sync()
    pending = view.queue()
    if not pending:
        return
    nodes = view.sorted_nodes()
    pods_type = api.types[("", "v1", "pods")]
    # Binding sets spec.nodeName and the PodScheduled condition in one write, as the binding
    # subresource does; a type without the status subresource lets the store take both.
    binding_type = dataclasses.replace(pods_type, subresources=[])
    now = now_iso()
    for pod in pending:
        meta = pod["metadata"]
        key = (PODS, meta.get("namespace"), meta["name"])
        if view.settled(key, pod):  # unschedulable, and still so: the write would change nothing
            continue
        try:
            chosen, message = view.decide(pod)
        except QuantityError as exc:
            chosen, message = None, f"0/{len(nodes)} nodes are available: {exc}."
        if chosen is not None:
            view.apply(key, api.store.update(binding_type, pod, bound(pod, chosen, now), None))
        else:
            view.settle(api.store.update(pods_type, pod, unschedulable(pod, message, now), "status"))


async def run_scheduler(api: LocalAPI) -> None:
    queue = api.store.subscribe()
    view = ClusterView.following(api.store)
    try:
        while True:
            schedule_pending(api, view)
            event = await queue.get()
            relevant = event.resource in (PODS, NODES)
            while not queue.empty():  # one pass for a burst of events
                relevant = queue.get_nowait().resource in (PODS, NODES) or relevant
            while not relevant:
                view.drain()
                relevant = (await queue.get()).resource in (PODS, NODES)
    finally:
        api.store.unsubscribe(queue)
        view.close()
