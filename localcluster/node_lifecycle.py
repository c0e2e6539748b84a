"""The cheap part of kube-controller-manager's node lifecycle controller, for simulated nodes.

A node fault is injected the way it shows on a real cluster: by its `Ready` condition (the node
controller writes `Unknown` when a kubelet stops posting status; a kubelet that cannot run pods
posts `False`). This controller then does what the real one does straight away:
- taints the node `node.kubernetes.io/unreachable` (Ready=Unknown) or `node.kubernetes.io/not-ready`
  (Ready=False), both `NoSchedule` (TaintNodesByCondition) and `NoExecute` with `timeAdded`
  (taint-based eviction), swapping them when the status moves between the two and removing them
  once the node is Ready again;
- sets `Ready=False` on the pods bound to the node, as `MarkPodsNotReady` does (only the status of
  an existing Ready condition changes: no reason is added, the phase stays), with the Warning
  Event `NodeNotReady` per pod and the Normal Event `NodeNotReady` for the node.
It deliberately does not evict: after the tolerationSeconds of a NoExecute taint a real cluster
deletes the pods (which then hang in Terminating until the kubelet or a force deletion removes
them); the operator must cope with pods stuck on a dead node, so nothing here deletes anything.
The kubelet's half (a down node's processes die, its statuses freeze) is in `kubelet.py`.
The decisions are pure functions; `run_node_lifecycle` is the shell."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

from tandem.localcluster.resources import GroupResource
from tandem.localcluster.store import Obj, now_iso

if TYPE_CHECKING:
    from tandem.localcluster.api import LocalAPI

PODS, NODES = GroupResource("", "pods"), GroupResource("", "nodes")
NOT_READY, UNREACHABLE = "node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"
TAINT_FOR = {"False": NOT_READY, "Unknown": UNREACHABLE}
EFFECTS = ("NoSchedule", "NoExecute")
COMPONENT = "node-controller"


# --- decisions (pure) ------------------------------------------------------------------------
def ready_status(node: Obj) -> str:
    """The node's Ready status: "True", "False" or "Unknown". A node without a Ready condition (one
    created by hand) counts as ready, as the simulated scheduler and kubelet have always used it."""
    for condition in (node.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return str(condition.get("status") or "Unknown")
    return "True"


def is_down(node: Obj | None) -> bool:
    """Whether the node's kubelet counts as dead: Ready is False or Unknown."""
    return node is not None and ready_status(node) != "True"


def _owned(taint: Obj) -> bool:
    return taint.get("key") in (NOT_READY, UNREACHABLE) and taint.get("effect") in EFFECTS


def controller_taints(node: Obj, now: str) -> list[Obj]:
    """The node's spec.taints as the controller leaves them: other taints untouched and in order,
    its own ones matching the Ready status (an existing one keeps its timeAdded)."""
    taints = list((node.get("spec") or {}).get("taints") or [])
    key = TAINT_FOR.get(ready_status(node))
    wanted = []
    for effect in EFFECTS if key else ():
        existing = next((t for t in taints if t.get("key") == key and t.get("effect") == effect), None)
        fresh = {"key": key, "effect": effect, **({"timeAdded": now} if effect == "NoExecute" else {})}
        wanted.append(existing or fresh)
    return [t for t in taints if not _owned(t) or t in wanted] + [t for t in wanted if t not in taints]


def pod_not_ready(pod: Obj, now: str) -> Obj | None:
    """The pod's status with Ready=False (lastTransitionTime moved), or None when there is nothing to
    change: MarkPodsNotReady only flips an existing Ready condition that is not False already."""
    status = pod.get("status") or {}
    conditions = status.get("conditions") or []
    ready = next((c for c in conditions if c.get("type") == "Ready"), None)
    if ready is None or ready.get("status") == "False":
        return None
    flipped = {**ready, "status": "False", "lastTransitionTime": now}
    return {**status, "conditions": [flipped if c is ready else c for c in conditions]}


def event(involved: Obj, reason: str, message: str, kind: str, now: str, suffix: str, host: str | None = None) -> Obj:
    """A core/v1 Event from the node controller about `involved` (a pod, or a node: its Events live
    in the default namespace, as for every cluster-scoped object); with `host`, from that node's kubelet."""
    meta = involved.get("metadata") or {}
    namespace = meta.get("namespace") or "default"
    reference = {"apiVersion": involved.get("apiVersion", "v1"), "kind": involved.get("kind", ""),
                 "name": meta.get("name", ""), "uid": meta.get("uid", "")}
    if meta.get("namespace"):
        reference["namespace"] = namespace
    return {"apiVersion": "v1", "kind": "Event",
            "metadata": {"name": f"{meta.get('name', '')}.{suffix}", "namespace": namespace},
            "involvedObject": reference, "reason": reason, "message": message, "type": kind,
            "source": {"component": "kubelet", "host": host} if host else {"component": COMPONENT},
            "reportingComponent": "kubelet" if host else COMPONENT, "reportingInstance": host or "",
            "firstTimestamp": now, "lastTimestamp": now, "count": 1}


# --- the service ------------------------------------------------------------------------------
def _record(api: LocalAPI, involved: Obj, reason: str, message: str, kind: str, now: str) -> None:
    api.store.create(api.types[("", "v1", "events")], (involved.get("metadata") or {}).get("namespace") or "default",
                     event(involved, reason, message, kind, now, secrets.token_hex(8)))


def mark_pod(api: LocalAPI, pod: Obj, now: str) -> None:
    status = pod_not_ready(pod, now)
    if status is not None:
        api.store.update(api.types[("", "v1", "pods")], pod, {**pod, "status": status}, "status")
        _record(api, pod, "NodeNotReady", "Node is not ready", "Warning", now)


def reconcile_node(api: LocalAPI, name: str, fell: bool) -> None:
    """Bring the stored node's taints and its pods in line with its Ready status; `fell`: the
    event being handled is the node's move from ready to down (worth one node Event)."""
    node = api.store.find(NODES, None, name)
    if node is None:
        return
    now = now_iso()
    taints = controller_taints(node, now)
    if taints != ((node.get("spec") or {}).get("taints") or []):
        spec = {**(node.get("spec") or {}), "taints": taints}
        node = api.store.update(api.types[("", "v1", "nodes")], node, {**node, "spec": spec}, None)
    if not is_down(node):
        return
    if fell:
        _record(api, node, "NodeNotReady", f"Node {name} status is now: NodeNotReady", "Normal", now)
    for (resource, _, _), pod in list(api.store.objects.items()):
        if resource == PODS and (pod.get("spec") or {}).get("nodeName") == name:
            mark_pod(api, pod, now)


async def run_node_lifecycle(api: LocalAPI) -> None:
    queue = api.store.subscribe()
    try:
        for (resource, _, name), node in list(api.store.objects.items()):
            if resource == NODES:
                reconcile_node(api, name, is_down(node))
        while True:
            change = await queue.get()
            if change.type == "DELETED":
                continue
            if change.resource == NODES:
                reconcile_node(api, change.obj["metadata"]["name"], is_down(change.obj) and not is_down(change.old))
            elif change.resource == PODS and (node_name := (change.obj.get("spec") or {}).get("nodeName")):
                # A pod that turns Ready on a node already down (a write that raced the node's fall)
                # is marked again, as the real controller does on pod updates.
                meta = change.obj["metadata"]
                current = api.store.find(PODS, meta["namespace"], meta["name"])
                if current is not None and is_down(api.store.find(NODES, None, node_name)):
                    mark_pod(api, current, now_iso())
    finally:
        api.store.unsubscribe(queue)
