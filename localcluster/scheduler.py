"""The simulated scheduler: binds pending pods to nodes as kube-scheduler's default filters would.

`schedule()` is the pure decision: VolumeBinding's PreFilter refuses a pod whose claim cannot
exist (`persistentvolumeclaim "../x" not found`), then the filters run in kube-scheduler's order
(NodeUnschedulable, TaintToleration, NodeAffinity, NodeResourcesFit, InterPodAffinity's required
anti-affinity on the hostname), the first that rejects a node gives its reasons,
and an unschedulable pod gets the scheduler's own message, e.g.
`0/4 nodes are available: 2 Insufficient huawei.com/Ascend910, 2 node(s) didn't match Pod's node
affinity/selector.` Among fitting nodes the least allocated wins, then the name (deterministic).
The shell, `scheduling.py`, runs on every pod or node event: it retries the pending pods, deciding as
`schedule()` does from a snapshot it keeps in step, and writes bindings and PodScheduled conditions
straight into the store, on the API's loop."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from fractions import Fraction

from tandem.localcluster.node_lifecycle import TAINT_FOR, ready_status
from tandem.localcluster.pod_affinity import check_pod_anti_affinity
from tandem.localcluster.quantities import QuantityError, parse_quantity
from tandem.localcluster.resources import GroupResource
from tandem.localcluster.store import Obj
from tandem.localcluster.volumes import impossible_claim

SCHEDULER_NAME = "default-scheduler"
PODS, NODES = GroupResource("", "pods"), GroupResource("", "nodes")
FINISHED = ("Succeeded", "Failed")
_UNSCHEDULABLE_TAINT = {"key": "node.kubernetes.io/unschedulable", "effect": "NoSchedule"}
REASON_AFFINITY = "node(s) didn't match Pod's node affinity/selector"
REASON_UNSCHEDULABLE = "node(s) were unschedulable"
REASON_TOO_MANY_PODS = "Too many pods"
NO_NODES = "no nodes available to schedule pods"
Usage = tuple[dict[str, Fraction], int]  # what a node's pods request in all, and how many they are


# --- requests and capacity -------------------------------------------------------------------
def _container_requests(container: Obj) -> dict[str, Fraction]:
    resources = container.get("resources") or {}
    # The API server defaults a missing request to its limit; for devices that is how pods ask.
    merged = {**(resources.get("limits") or {}), **(resources.get("requests") or {})}
    return {name: parse_quantity(value) for name, value in merged.items()}


def pod_requests(pod: Obj) -> dict[str, Fraction]:
    """What the pod occupies on its node: the sum over containers, or the largest init container."""
    spec = pod.get("spec") or {}
    total: dict[str, Fraction] = {}
    for container in spec.get("containers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = total.get(name, Fraction(0)) + amount
    for container in spec.get("initContainers") or []:
        for name, amount in _container_requests(container).items():
            total[name] = max(total.get(name, Fraction(0)), amount)
    return {name: amount for name, amount in total.items() if amount > 0}


def allocatable(node: Obj) -> dict[str, Fraction]:
    found = (node.get("status") or {}).get("allocatable") or {}
    return dict(_parsed(tuple(sorted((str(k), str(v)) for k, v in found.items()))))


@functools.lru_cache(maxsize=1024)
def _parsed(entries: tuple[tuple[str, str], ...]) -> tuple[tuple[str, Fraction], ...]:
    """Parsed once per distinct allocatable (a pool's nodes share one): scheduling a pod scans every node."""
    result = []
    for name, value in entries:
        try:
            result.append((name, parse_quantity(value)))
        except QuantityError:
            continue  # a malformed node entry offers nothing rather than breaking scheduling
    return tuple(result)


def occupies(pod: Obj) -> bool:
    """Pods hold their node's capacity until they finish; terminating ones still run."""
    return (pod.get("status") or {}).get("phase") not in FINISHED


def used_on(pods: Iterable[Obj]) -> Usage:
    used: dict[str, Fraction] = {}
    count = 0
    for pod in pods:
        if not occupies(pod):
            continue
        count += 1
        for name, amount in pod_requests(pod).items():
            used[name] = used.get(name, Fraction(0)) + amount
    return used, count


# --- filters: each returns the reasons it rejects the node for (empty: it fits) ---------------
def _taints(node: Obj) -> list[Obj]:
    # The node lifecycle controller taints nodes that stop being Ready; the scheduler only sees
    # taints, so a node's Ready status counts as the NoSchedule taint the controller will add.
    taints = list((node.get("spec") or {}).get("taints") or [])
    key = TAINT_FOR.get(ready_status(node))
    if key and not any(t.get("key") == key and t.get("effect") == "NoSchedule" for t in taints):
        taints.append({"key": key, "effect": "NoSchedule"})
    return taints


def tolerates(toleration: Obj, taint: Obj) -> bool:
    if toleration.get("effect") and toleration["effect"] != taint.get("effect"):
        return False
    operator = toleration.get("operator") or "Equal"
    if not toleration.get("key"):
        return operator == "Exists"  # an empty key with Exists tolerates every taint
    if toleration["key"] != taint.get("key"):
        return False
    return operator == "Exists" or (toleration.get("value") or "") == (taint.get("value") or "")


def _tolerated(pod: Obj, taint: Obj) -> bool:
    return any(tolerates(t, taint) for t in (pod.get("spec") or {}).get("tolerations") or [])


def check_unschedulable(pod: Obj, node: Obj) -> list[str]:
    if (node.get("spec") or {}).get("unschedulable") and not _tolerated(pod, _UNSCHEDULABLE_TAINT):
        return [REASON_UNSCHEDULABLE]
    return []


def check_taints(pod: Obj, node: Obj) -> list[str]:
    for taint in _taints(node):
        if taint.get("effect") in ("NoSchedule", "NoExecute") and not _tolerated(pod, taint):
            return [f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"]
    return []


def _match_requirement(requirement: Obj, value: str | None) -> bool:
    operator, values = requirement.get("operator"), requirement.get("values") or []
    if operator == "In":
        return value is not None and value in values
    if operator == "NotIn":
        return value is None or value not in values
    if operator == "Exists":
        return value is not None
    if operator == "DoesNotExist":
        return value is None
    if operator in ("Gt", "Lt") and value is not None and len(values) == 1:
        try:
            actual, bound = int(value), int(values[0])
        except ValueError:
            return False
        return actual > bound if operator == "Gt" else actual < bound
    return False


def _match_term(term: Obj, node: Obj) -> bool:
    expressions, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term selects no node
    labels = (node.get("metadata") or {}).get("labels") or {}
    field_values = {"metadata.name": (node.get("metadata") or {}).get("name")}
    return all(_match_requirement(e, labels.get(e.get("key", ""))) for e in expressions) and all(
        _match_requirement(f, field_values.get(f.get("key", ""))) for f in fields
    )


def matches_node_affinity(pod: Obj, node: Obj) -> bool:
    spec = pod.get("spec") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    if any(labels.get(key) != value for key, value in (spec.get("nodeSelector") or {}).items()):
        return False
    required = (((spec.get("affinity") or {}).get("nodeAffinity") or {})
                .get("requiredDuringSchedulingIgnoredDuringExecution"))
    if not required:
        return True
    return any(_match_term(term, node) for term in required.get("nodeSelectorTerms") or [])


def check_affinity(pod: Obj, node: Obj) -> list[str]:
    return [] if matches_node_affinity(pod, node) else [REASON_AFFINITY]


def check_resources(requests: Mapping[str, Fraction], capacity: Mapping[str, Fraction], usage: Usage) -> list[str]:
    used, count = usage
    reasons = []
    if "pods" in capacity and count + 1 > capacity["pods"]:
        reasons.append(REASON_TOO_MANY_PODS)
    for name, amount in requests.items():
        if capacity.get(name, Fraction(0)) - used.get(name, Fraction(0)) < amount:
            reasons.append(f"Insufficient {name}")
    return reasons


def _score(requests: Mapping[str, Fraction], capacity: Mapping[str, Fraction],
           used: Mapping[str, Fraction]) -> float:
    """LeastAllocated: the mean free share of cpu, memory and the devices asked for, after placing. In floats: it
    only ranks nodes (every node of a pool is scored the same way, and ties go to the name), and exact fractions
    made scoring the cost of scheduling at a thousand nodes."""
    names = {"cpu", "memory", *(n for n in requests if n not in ("pods", "ephemeral-storage"))}
    shares = [(float(capacity[n]) - float(used.get(n, 0)) - float(requests.get(n, 0))) / float(capacity[n])
              for n in sorted(names) if capacity.get(n)]
    return sum(shares) / len(shares) if shares else 0.0


def node_name(node: Obj) -> str:
    return str((node.get("metadata") or {}).get("name", ""))


def schedule(pod: Obj, nodes: Sequence[Obj], pods_on_nodes: Mapping[str, Sequence[Obj]],
             usage_cache: dict[str, Usage] | None = None) -> tuple[str | None, str]:
    """(the node to bind to, an Event-style message) or (None, why no node fits). `usage_cache`
    keeps `used_on` per node name across calls that share `pods_on_nodes`; whoever changes a
    node's pods drops its entry."""
    if not nodes:
        return None, NO_NODES
    claim = impossible_claim(pod)
    if claim is not None:  # VolumeBinding's PreFilter: a claim that does not exist rejects every node
        return None, f'0/{len(nodes)} nodes are available: persistentvolumeclaim "{claim}" not found.'
    usage_cache = {} if usage_cache is None else usage_cache
    requests: dict[str, Fraction] | None = None  # computed once, when the first node gets this far
    reasons: Counter[str] = Counter()
    fitting: list[tuple[float, str]] = []
    for node in nodes:
        name = node_name(node)
        rejected = check_unschedulable(pod, node) or check_taints(pod, node) or check_affinity(pod, node)
        if rejected:
            reasons.update(set(rejected))
            continue
        usage = usage_cache.get(name)
        if usage is None:
            usage = usage_cache[name] = used_on(pods_on_nodes.get(name, ()))
        if requests is None:
            requests = pod_requests(pod)
        capacity = allocatable(node)
        rejected = check_resources(requests, capacity, usage) or check_pod_anti_affinity(
            pod, pods_on_nodes.get(name, ()))
        if rejected:
            reasons.update(set(rejected))
        else:
            fitting.append((-_score(requests, capacity, usage[0]), name))
    if fitting:
        chosen = min(fitting)[1]
        meta = pod.get("metadata") or {}
        return chosen, f"Successfully assigned {meta.get('namespace')}/{meta.get('name')} to {chosen}"
    # kube-scheduler's FitError: "<count> <reason>" sorted as strings, joined, one final period.
    counted = sorted(f"{count} {reason}" for reason, count in reasons.items())
    return None, f"0/{len(nodes)} nodes are available: {', '.join(counted)}."


# --- status writes (pure builders) ------------------------------------------------------------
def with_condition(status: Obj, condition: Obj, now: str) -> Obj:
    """`status` with `condition` set; lastTransitionTime moves only when the status flips."""
    conditions = list(status.get("conditions") or [])
    previous = next((c for c in conditions if c.get("type") == condition["type"]), None)
    stamped = {**condition, "lastTransitionTime": now}
    if previous is not None and previous.get("status") == condition["status"]:
        stamped["lastTransitionTime"] = previous.get("lastTransitionTime", now)
    conditions = [stamped if c is previous else c for c in conditions] if previous else [*conditions, stamped]
    return {**status, "conditions": conditions}


def bound(pod: Obj, node: str, now: str) -> Obj:
    """A new pod sharing what it does not change with `pod` (stored objects are never mutated in place)."""
    status = with_condition(pod.get("status") or {}, {"type": "PodScheduled", "status": "True"}, now)
    return {**pod, "spec": {**pod["spec"], "nodeName": node}, "status": status}


def unschedulable(pod: Obj, message: str, now: str) -> Obj:
    condition = {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}
    status = with_condition(pod.get("status") or {"phase": "Pending"}, condition, now)
    return {**pod, "status": {**status, "phase": "Pending"}}


def wants_scheduling(pod: Obj) -> bool:
    spec, meta = pod.get("spec") or {}, pod.get("metadata") or {}
    return (not spec.get("nodeName") and not meta.get("deletionTimestamp") and occupies(pod)
            and spec.get("schedulerName", SCHEDULER_NAME) == SCHEDULER_NAME)
