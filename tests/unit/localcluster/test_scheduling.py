"""The scheduler service's fast path decides exactly as the pure `schedule()` does (randomised comparisons over
nodes, taints, affinity, devices, anti-affinity on the hostname, finished pods and malformed quantities), and its
view of the store stays what rebuilding it from the store gives."""

from __future__ import annotations

import copy
import random
from typing import Any

import pytest

from tandem.localcluster import scheduling, store
from tandem.localcluster.api import LocalAPI
from tandem.localcluster.quantities import QuantityError
from tandem.localcluster.scheduler import NODES, PODS, bound, schedule, unschedulable, wants_scheduling
from tandem.localcluster.scheduling import ClusterView, schedule_pending

ASCEND, GPU = "huawei.com/Ascend910", "nvidia.com/gpu"
Obj = dict[str, Any]


def _node(rnd: random.Random, index: int) -> Obj:
    name = f"n{index:02d}"
    pool = rnd.choice(["a", "a", "a", "b"])
    allocatable = rnd.choice([
        {"cpu": "8", "memory": "32Gi", "pods": "110", ASCEND: "8"},
        {"cpu": "8", "memory": "32Gi", "pods": "3", ASCEND: "2"},
        {"cpu": "16", "memory": "64Gi", "pods": "110", GPU: "4"},
        {"cpu": "4", "memory": "16Gi", "pods": "110", ASCEND: "8", "bad": "x!"},
    ])
    spec: Obj = {}
    if rnd.random() < 0.15:
        spec["taints"] = [rnd.choice([{"key": "dedicated", "value": "npu", "effect": "NoSchedule"},
                                      {"key": "soft", "effect": "PreferNoSchedule"},
                                      {"key": "evict", "effect": "NoExecute"}])]
    if rnd.random() < 0.08:
        spec["unschedulable"] = True
    ready = rnd.choice(["True"] * 10 + ["False", "Unknown"])
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "labels": {"pool": pool, "kubernetes.io/hostname": name, "rank": str(index)}},
            "spec": spec, "status": {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": ready}]}}


TEMPLATES: list[Obj] = [
    {"limits": {ASCEND: "1"}},
    {"limits": {ASCEND: "1"}, "nodeSelector": {"pool": "a"}},
    {"limits": {ASCEND: "4"}, "nodeSelector": {"pool": "a"}},
    {"limits": {ASCEND: "1"}, "anti": True},
    {"limits": {ASCEND: "2"}, "anti": True, "nodeSelector": {"pool": "a"}},
    {"requests": {"cpu": "3", "memory": "10Gi"}},
    {"limits": {GPU: "1"}, "tolerations": [{"key": "dedicated", "operator": "Exists"}]},
    {"limits": {ASCEND: "1"}, "tolerations": [{"operator": "Exists"}]},
    {"limits": {ASCEND: "1"}, "affinity": {"matchExpressions": [{"key": "rank", "operator": "Gt", "values": ["5"]}]}},
    {"limits": {ASCEND: "1"}, "affinity": {"matchFields": [
        {"key": "metadata.name", "operator": "NotIn", "values": ["n00", "n01"]}]}},
    {"limits": {ASCEND: "9"}},
    {"requests": {"cpu": "lots"}},  # a quantity that does not parse
    {"limits": {ASCEND: "1"}, "claim": "../x"},
    {"limits": {ASCEND: "1"}, "init": {"cpu": "6"}},
    {},
]


def _pod(rnd: random.Random, name: str, template: Obj, namespace: str = "ml") -> Obj:
    resources = {k: dict(template[k]) for k in ("requests", "limits") if k in template}
    spec: Obj = {"containers": [{"name": "main", "image": "x", "resources": resources}]}
    if "init" in template:
        spec["initContainers"] = [{"name": "init", "image": "x", "resources": {"requests": dict(template["init"])}}]
    if "nodeSelector" in template:
        spec["nodeSelector"] = dict(template["nodeSelector"])
    if "tolerations" in template:
        spec["tolerations"] = copy.deepcopy(template["tolerations"])
    affinity: Obj = {}
    if "affinity" in template:
        affinity["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [copy.deepcopy(template["affinity"])]}}
    attempt = rnd.choice(["1", "2"])
    if template.get("anti"):
        affinity["podAntiAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": [{
            "labelSelector": {"matchLabels": {"attempt": attempt}}, "topologyKey": "kubernetes.io/hostname"}]}
    if affinity:
        spec["affinity"] = affinity
    if "claim" in template:
        spec["volumes"] = [{"name": "data", "persistentVolumeClaim": {"claimName": template["claim"]}}]
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": {"attempt": attempt}},
            "spec": spec, "status": {"phase": "Pending"}}


def _decision(decide: Any) -> tuple[Any, ...]:
    try:
        return ("decided", *decide())
    except QuantityError as exc:
        return ("QuantityError", str(exc))


def _key(obj: Obj) -> Any:
    meta = obj["metadata"]
    return (NODES, None, meta["name"]) if obj["kind"] == "Node" else (PODS, meta["namespace"], meta["name"])


@pytest.mark.parametrize("seed", range(40))
def test_the_view_decides_as_schedule_does(seed: int) -> None:
    """Pods placed one after another, as a pass places them, with pods finishing or going and nodes changing
    between decisions: every decision (node, message, or the QuantityError) is schedule()'s."""
    rnd = random.Random(seed)
    objects: dict[Any, Obj] = {}
    for index in range(rnd.randint(1, 14)):
        node = _node(rnd, index)
        objects[_key(node)] = node
    node_names = sorted(k[2] for k in objects)
    # Pods bound already, some finished, some in another namespace; now and then one with a malformed request.
    for index in range(rnd.randint(0, 12)):
        template = rnd.choice(TEMPLATES[:-4]) if rnd.random() < 0.97 else {"requests": {"cpu": "lots"}}
        pod = _pod(rnd, f"old-{index}", template, rnd.choice(["ml", "ml", "other"]))
        pod["spec"]["nodeName"] = rnd.choice([*node_names, "gone-node"])
        pod["status"]["phase"] = rnd.choice(["Running", "Running", "Succeeded", "Failed"])
        objects[_key(pod)] = pod
    view = ClusterView(objects)

    def reference_inputs() -> tuple[list[Obj], dict[str, list[Obj]]]:
        nodes = sorted((o for k, o in objects.items() if k[0] == NODES), key=lambda n: n["metadata"]["name"])
        on_nodes: dict[str, list[Obj]] = {}
        for k, o in objects.items():
            if k[0] == PODS and o["spec"].get("nodeName"):
                on_nodes.setdefault(o["spec"]["nodeName"], []).append(o)
        return nodes, on_nodes

    def change(key: Any, obj: Obj | None) -> None:
        if obj is None:
            objects.pop(key, None)
        else:
            objects[key] = obj
        view.apply(key, obj)

    bound_count = 0
    for index in range(rnd.randint(5, 40)):
        pod = _pod(rnd, f"p-{index}", rnd.choice(TEMPLATES))
        change(_key(pod), pod)
        nodes, on_nodes = reference_inputs()
        expected = _decision(lambda pod=pod, nodes=nodes, on_nodes=on_nodes: schedule(pod, nodes, on_nodes))
        assert _decision(lambda pod=pod: view.decide(pod)) == expected, (seed, index)
        assert view.sorted_nodes() == nodes
        if expected[0] == "decided" and expected[1] is not None:
            change(_key(pod), bound(pod, expected[1], "t"))
            bound_count += 1
        elif expected[0] == "decided":
            change(_key(pod), unschedulable(pod, expected[2], "t"))  # still pending: decided again later
            stored = objects[_key(pod)]
            again = _decision(lambda stored=stored: view.decide(stored))
            assert again == expected
        roll = rnd.random()
        placed = [k for k, o in objects.items() if k[0] == PODS and o["spec"].get("nodeName")]
        if roll < 0.15 and placed:  # a pod finishes
            key = rnd.choice(placed)
            change(key, {**objects[key], "status": {"phase": rnd.choice(["Succeeded", "Failed"])}})
        elif roll < 0.25 and placed:  # a pod goes
            change(rnd.choice(placed), None)
        elif roll < 0.35:  # a node changes: tainted, cordoned, not ready, or replaced by a new one
            fresh = _node(rnd, rnd.randrange(len(node_names) + 1))
            change(_key(fresh), fresh)
            node_names = sorted({*node_names, fresh["metadata"]["name"]})
        elif roll < 0.38 and len(node_names) > 1:
            gone = node_names.pop(rnd.randrange(len(node_names)))
            change((NODES, None, gone), None)
    pending = {k for k, o in objects.items() if k[0] == PODS and wants_scheduling(o)}
    assert set(view.pending) == pending


def _reference_pass(api: LocalAPI) -> None:
    """The scheduler's pass before the view: everything rebuilt from the store, schedule() per pod."""
    import dataclasses

    objects = api.store.objects
    nodes = sorted((o for (gr, _, _), o in objects.items() if gr == NODES), key=lambda n: n["metadata"]["name"])
    pods = [o for (gr, _, _), o in objects.items() if gr == PODS]
    on_nodes: dict[str, list[Obj]] = {}
    for pod in pods:
        if pod["spec"].get("nodeName"):
            on_nodes.setdefault(pod["spec"]["nodeName"], []).append(pod)
    pending = sorted((p for p in pods if wants_scheduling(p)), key=lambda p: (
        -int(p["spec"].get("priority") or 0), p["metadata"].get("creationTimestamp", ""),
        p["metadata"].get("namespace", ""), p["metadata"]["name"]))
    pods_type = api.types[("", "v1", "pods")]
    binding_type = dataclasses.replace(pods_type, subresources=[])
    usage: dict[str, Any] = {}
    for pod in pending:
        try:
            chosen, message = schedule(pod, nodes, on_nodes, usage)
        except QuantityError as exc:
            chosen, message = None, f"0/{len(nodes)} nodes are available: {exc}."
        if chosen is not None:
            written = api.store.update(binding_type, pod, bound(pod, chosen, "t"), None)
            on_nodes.setdefault(chosen, []).append(written)
            usage.pop(chosen, None)
        else:
            api.store.update(pods_type, pod, unschedulable(pod, message, "t"), "status")


def _outcome(api: LocalAPI) -> dict[Any, Any]:
    return {k: (o["spec"].get("nodeName"), o.get("status"), o["metadata"]["resourceVersion"])
            for k, o in api.store.objects.items() if k[0] == PODS}


@pytest.mark.parametrize("seed", range(12))
def test_passes_write_what_the_reference_pass_writes(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole passes, with priorities and pods arriving between passes, on two stores: the same writes."""
    monkeypatch.setattr(store, "now_iso", lambda clock=None: "2026-01-01T00:00:00Z")
    monkeypatch.setattr(scheduling, "now_iso", lambda clock=None: "t")
    rnd = random.Random(1000 + seed)
    apis = [LocalAPI(), LocalAPI()]
    follower = ClusterView.following(apis[1].store)
    nodes = [_node(rnd, i) for i in range(rnd.randint(1, 10))]
    for api in apis:
        for node in nodes:
            api.store.create(api.types[("", "v1", "nodes")], None, copy.deepcopy(node))
    for round_ in range(4):
        batch = []
        for index in range(rnd.randint(1, 15)):
            pod = _pod(rnd, f"r{round_}-{index}", rnd.choice(TEMPLATES))
            if rnd.random() < 0.2:
                pod["spec"]["priority"] = rnd.choice([1, 100])
            batch.append(pod)
        for api in apis:
            for pod in batch:
                api.store.create(api.types[("", "v1", "pods")], "ml", copy.deepcopy(pod))
        for _ in range(2):  # again: later bindings change earlier pods' messages; then nothing changes
            _reference_pass(apis[0])
            schedule_pending(apis[1], follower)
            assert _outcome(apis[0]) == _outcome(apis[1]), round_
        if rnd.random() < 0.5:  # a pod on a node finishes: the unschedulable ones are decided again
            placed = sorted(k for k, o in apis[0].store.objects.items() if k[0] == PODS and o["spec"].get("nodeName"))
            if placed:
                key = rnd.choice(placed)
                for api in apis:
                    current = api.store.objects[key]
                    api.store.update(api.types[("", "v1", "pods")], current,
                                     {**current, "status": {**current["status"], "phase": "Succeeded"}}, "status")
        waiting = sorted(k for k, o in apis[0].store.objects.items() if k[0] == PODS and wants_scheduling(o))
        if waiting:  # someone else writes a pending pod: its status, or what it asks of nodes
            key, roll = rnd.choice(waiting), rnd.random()
            for api in apis:
                current = api.store.objects[key]
                if roll < 0.5:
                    api.store.update(api.types[("", "v1", "pods")], current,
                                     {**current, "status": {"phase": "Pending"}}, "status")
                else:
                    api.store.update(api.types[("", "v1", "pods")], current,
                                     {**current, "spec": {**current["spec"], "nodeSelector": {"pool": "b"}}}, None)
        for _ in range(2):
            _reference_pass(apis[0])
            schedule_pending(apis[1], follower)
            assert _outcome(apis[0]) == _outcome(apis[1]), round_
        _reference_pass(apis[0])
        schedule_pending(apis[1])  # with a view of its own, built from the store
        assert _outcome(apis[0]) == _outcome(apis[1]), round_
    follower.close()


def test_a_following_view_is_what_rebuilding_gives() -> None:
    api = LocalAPI()
    view = ClusterView.following(api.store)
    rnd = random.Random(7)
    pods_type, nodes_type = api.types[("", "v1", "pods")], api.types[("", "v1", "nodes")]
    for index in range(4):
        api.store.create(nodes_type, None, _node(rnd, index))
    for index in range(20):
        api.store.create(pods_type, "ml", _pod(rnd, f"p{index}", rnd.choice(TEMPLATES)))
    schedule_pending(api, view)
    for key in [k for k in api.store.objects if k[0] == PODS][:5]:
        api.store.remove(key)
    api.store.remove((NODES, None, "n01"))
    view.sync()
    fresh = ClusterView(api.store.objects)
    assert view.pending == fresh.pending and view.on_node == fresh.on_node and view.nodes == fresh.nodes
    assert view.sorted_nodes() == fresh.sorted_nodes()
    view.close()
