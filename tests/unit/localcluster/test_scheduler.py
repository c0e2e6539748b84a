"""The scheduler's decisions (pure), in kube-scheduler's words."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.localcluster.nodes import DEFAULT_CLUSTER, node_manifests
from tandem.localcluster.scheduler import NO_NODES, bound, schedule, unschedulable, wants_scheduling

ASCEND = "huawei.com/Ascend910"


def _node(name: str, labels: dict[str, str] | None = None, ready: str = "True", **spec: Any) -> dict[str, Any]:
    allocatable = {"cpu": "8", "memory": "32Gi", "pods": "110", ASCEND: "8", **spec.pop("allocatable", {})}
    return {"metadata": {"name": name, "labels": labels or {}}, "spec": spec,
            "status": {"allocatable": allocatable, "conditions": [{"type": "Ready", "status": ready}]}}


def _pod(name: str = "p", *, requests: dict[str, str] | None = None, limits: dict[str, str] | None = None,
         phase: str = "Pending", **spec: Any) -> dict[str, Any]:
    resources = {k: v for k, v in (("requests", requests), ("limits", limits)) if v}
    return {"metadata": {"name": name, "namespace": "ml"},
            "spec": {"containers": [{"name": "main", "resources": resources}], **spec}, "status": {"phase": phase}}


def _affinity(*terms: dict[str, Any]) -> dict[str, Any]:
    return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": list(terms)}}}


def _expr(key: str, operator: str, *values: str) -> dict[str, Any]:
    return {"matchExpressions": [{"key": key, "operator": operator, **({"values": list(values)} if values else {})}]}


def test_message_like_the_real_scheduler_on_the_default_cluster() -> None:
    nodes = node_manifests(DEFAULT_CLUSTER)
    full = {n["metadata"]["name"]: [_pod("x", limits={ASCEND: "8"}, nodeName=n["metadata"]["name"])]
            for n in nodes if "ascend" in n["metadata"]["name"]}
    pod = _pod(limits={ASCEND: "8"}, nodeSelector={"tandem.dev/pool": "ascend-910b"})
    assert schedule(pod, nodes, full) == (None, "0/4 nodes are available: 2 Insufficient huawei.com/Ascend910, "
                                                "2 node(s) didn't match Pod's node affinity/selector.")
    chosen, message = schedule(pod, nodes, {})
    assert chosen == "ascend-910b-node-0" and message == "Successfully assigned ml/p to ascend-910b-node-0"


def test_no_nodes() -> None:
    assert schedule(_pod(), [], {}) == (None, NO_NODES)


def test_reasons_are_counted_and_sorted_as_strings() -> None:
    nodes = [_node(f"n{i}", {"pool": "a" if i < 10 else "b"}) for i in range(12)]
    _, message = schedule(_pod(nodeSelector={"pool": "b"}, requests={"cpu": "9"}), nodes, {})
    # "10 ..." sorts before "2 ..." as strings, as Go's sort.Strings does.
    assert message == ("0/12 nodes are available: 10 node(s) didn't match Pod's node affinity/selector, "
                       "2 Insufficient cpu.")


def test_a_node_gives_every_insufficient_resource() -> None:
    _, message = schedule(_pod(requests={"cpu": "9", "memory": "33Gi"}, limits={"nvidia.com/gpu": "1"}),
                          [_node("a")], {})
    assert message == ("0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory, "
                       "1 Insufficient nvidia.com/gpu.")


def test_filters_run_in_order_and_the_first_rejection_speaks() -> None:
    tainted = _node("a", taints=[{"key": "dedicated", "value": "npu", "effect": "NoSchedule"}])
    _, message = schedule(_pod(nodeSelector={"x": "y"}, requests={"cpu": "99"}), [tainted], {})
    assert message == "0/1 nodes are available: 1 node(s) had untolerated taint {dedicated: npu}."
    cordoned = _node("b", unschedulable=True)
    _, message = schedule(_pod(), [cordoned], {})
    assert message == "0/1 nodes are available: 1 node(s) were unschedulable."


@pytest.mark.parametrize(("toleration", "fits"), [
    ({"key": "dedicated", "operator": "Equal", "value": "npu", "effect": "NoSchedule"}, True),
    ({"key": "dedicated", "value": "npu"}, True),  # Equal is the default operator, any effect
    ({"key": "dedicated", "operator": "Exists"}, True),
    ({"operator": "Exists"}, True),  # an empty key with Exists tolerates everything
    ({"key": "dedicated", "value": "gpu"}, False),
    ({"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}, False),
    ({"key": "other", "operator": "Exists"}, False),
])
def test_tolerations(toleration: dict[str, str], fits: bool) -> None:
    node = _node("a", taints=[{"key": "dedicated", "value": "npu", "effect": "NoSchedule"}])
    assert (schedule(_pod(tolerations=[toleration]), [node], {})[0] == "a") is fits


def test_prefer_no_schedule_taints_do_not_filter() -> None:
    node = _node("a", taints=[{"key": "soft", "effect": "PreferNoSchedule"}])
    assert schedule(_pod(), [node], {})[0] == "a"


def test_not_ready_nodes_look_tainted_as_the_node_controller_taints_them() -> None:
    nodes = [_node("a", ready="False"), _node("b", ready="Unknown")]
    _, message = schedule(_pod(), nodes, {})
    assert message == ("0/2 nodes are available: 1 node(s) had untolerated taint {node.kubernetes.io/not-ready: }, "
                       "1 node(s) had untolerated taint {node.kubernetes.io/unreachable: }.")
    tolerant = _pod(tolerations=[{"key": "node.kubernetes.io/not-ready", "operator": "Exists"}])
    assert schedule(tolerant, nodes, {})[0] == "a"


@pytest.mark.parametrize(("term", "fits"), [
    (_expr("zone", "In", "z1", "z2"), True),
    (_expr("zone", "In", "z2"), False),
    (_expr("zone", "NotIn", "z2"), True),
    (_expr("missing", "NotIn", "z2"), True),
    (_expr("zone", "Exists"), True),
    (_expr("zone", "DoesNotExist"), False),
    (_expr("missing", "DoesNotExist"), True),
    (_expr("devices", "Gt", "7"), True),
    (_expr("devices", "Gt", "8"), False),
    (_expr("devices", "Lt", "9"), True),
    (_expr("zone", "Gt", "1"), False),  # not an integer
    ({"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["a"]}]}, True),
    ({"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": ["a"]}]}, False),
    ({}, False),  # an empty term selects nothing
])
def test_required_node_affinity(term: dict[str, Any], fits: bool) -> None:
    node = _node("a", {"zone": "z1", "devices": "8"})
    assert (schedule(_pod(affinity=_affinity(term)), [node], {})[0] == "a") is fits


def test_affinity_terms_are_ored_and_expressions_anded() -> None:
    node = _node("a", {"zone": "z1", "pool": "p"})
    both = {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["z1"]},
                                 {"key": "pool", "operator": "In", "values": ["q"]}]}
    assert schedule(_pod(affinity=_affinity(both)), [node], {})[0] is None
    assert schedule(_pod(affinity=_affinity(both, _expr("pool", "In", "p"))), [node], {})[0] == "a"


def test_node_selector_and_affinity_must_both_match() -> None:
    node = _node("a", {"zone": "z1"})
    pod = _pod(nodeSelector={"zone": "z1"}, affinity=_affinity(_expr("zone", "In", "z2")))
    assert schedule(pod, [node], {})[0] is None


def test_capacity_counts_running_and_terminating_pods_but_not_finished_ones() -> None:
    node = _node("a")
    pod = _pod(limits={ASCEND: "4"})
    running = _pod("r", limits={ASCEND: "4"}, phase="Running")
    terminating = {**_pod("t", limits={ASCEND: "4"}, phase="Running"), "metadata": {
        "name": "t", "deletionTimestamp": "2026-01-01T00:00:00Z"}}
    finished = [_pod(f"f{i}", limits={ASCEND: "8"}, phase=phase) for i, phase in enumerate(("Succeeded", "Failed"))]
    assert schedule(pod, [node], {"a": [running, *finished]})[0] == "a"
    assert schedule(pod, [node], {"a": [running, terminating]})[0] is None


def test_requests_win_over_limits_and_init_containers_take_the_max() -> None:
    node = _node("a", allocatable={"cpu": "2"})
    pod = _pod(requests={"cpu": "1"}, limits={"cpu": "4"})
    assert schedule(pod, [node], {})[0] == "a"
    pod["spec"]["initContainers"] = [{"name": "init", "resources": {"requests": {"cpu": "3"}}}]
    assert schedule(pod, [node], {})[1] == "0/1 nodes are available: 1 Insufficient cpu."


def test_too_many_pods() -> None:
    node = _node("a", allocatable={"pods": "1"})
    _, message = schedule(_pod(), [node], {"a": [_pod("other", phase="Running")]})
    assert message == "0/1 nodes are available: 1 Too many pods."


def test_least_allocated_spreads_then_the_name_breaks_ties() -> None:
    nodes = [_node("b"), _node("a")]
    assert schedule(_pod(limits={ASCEND: "4"}), nodes, {})[0] == "a"
    busy = {"a": [_pod("x", limits={ASCEND: "4"}, phase="Running")]}
    assert schedule(_pod(limits={ASCEND: "4"}), nodes, busy)[0] == "b"


def test_only_pending_unbound_live_default_scheduler_pods_are_scheduled() -> None:
    assert wants_scheduling(_pod())
    assert not wants_scheduling(_pod(nodeName="a"))
    assert not wants_scheduling(_pod(schedulerName="volcano"))
    assert not wants_scheduling(_pod(phase="Failed"))
    deleting = _pod()
    deleting["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert not wants_scheduling(deleting)


def test_status_builders_keep_transition_times_and_are_idempotent() -> None:
    pod = _pod()
    once = unschedulable(pod, "0/1 nodes are available: 1 Too many pods.", "t1")
    again = unschedulable(once, "0/1 nodes are available: 1 Too many pods.", "t2")
    assert once == again and once["status"]["conditions"] == [{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/1 nodes are available: 1 Too many pods.", "lastTransitionTime": "t1"}]
    placed = bound(again, "a", "t3")
    assert placed["spec"]["nodeName"] == "a" and pod["spec"].get("nodeName") is None
    assert placed["status"]["conditions"] == [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t3"}]


def test_a_pass_binds_in_one_write_and_a_second_pass_writes_nothing() -> None:
    from tandem.localcluster.api import LocalAPI
    from tandem.localcluster.scheduling import schedule_pending

    api = LocalAPI()
    for manifest in node_manifests(DEFAULT_CLUSTER):
        api.store.create(api.types[("", "v1", "nodes")], None, manifest)
    pods = api.types[("", "v1", "pods")]
    for name, devices in (("fits", "8"), ("too-big", "9")):
        api.store.create(pods, "ml", {**_pod(name, limits={ASCEND: devices}), "metadata": {"name": name}})
    before = api.store.rv
    schedule_pending(api)
    assert api.store.rv == before + 2  # one binding, one PodScheduled=False
    fits, too_big = (api.store.get(pods, "ml", n) for n in ("fits", "too-big"))
    assert fits["spec"]["nodeName"] == "ascend-910b-node-0"
    assert fits["status"]["conditions"][0]["type"] == "PodScheduled"
    message = too_big["status"]["conditions"][0]["message"]
    assert message == "0/4 nodes are available: 4 Insufficient huawei.com/Ascend910."
    schedule_pending(api)
    assert api.store.rv == before + 2


def _gang_pod(name: str, attempt: str, node: str | None = None, namespace: str = "ml") -> dict[str, Any]:
    gang = {"matchLabels": {"tandem.dev/job-uid": "u1", "tandem.dev/attempt": attempt}}
    pod = _pod(name, limits={ASCEND: "1"}, affinity={"podAntiAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": [{"labelSelector": gang,
                                                            "topologyKey": "kubernetes.io/hostname"}]}},
               **({"nodeName": node} if node else {}))
    pod["metadata"].update(namespace=namespace, labels={"tandem.dev/job-uid": "u1", "tandem.dev/attempt": attempt})
    return pod


def test_a_required_pod_anti_affinity_keeps_an_attempts_ranks_on_separate_nodes() -> None:
    """Each node has room for 8 such pods; the anti-affinity still allows one rank of the attempt per node."""
    nodes = [_node("n0"), _node("n1")]
    on_n0 = {"n0": [_gang_pod("a1-0", "1", "n0")]}
    assert schedule(_gang_pod("a1-1", "1"), nodes, on_n0)[0] == "n1"
    full = {"n0": [_gang_pod("a1-0", "1", "n0")], "n1": [_gang_pod("a1-1", "1", "n1")]}
    assert schedule(_gang_pod("a1-2", "1"), nodes, full) == (
        None, "0/2 nodes are available: 2 node(s) didn't match pod anti-affinity rules.")
    # Another attempt's pods, another namespace's and finished ones do not repel it.
    finished = _gang_pod("a1-0", "1", "n0")
    finished["status"]["phase"] = "Failed"
    others = {"n0": [_gang_pod("a2-0", "2", "n0"), _gang_pod("x", "1", "n0", namespace="other"), finished]}
    assert schedule(_gang_pod("a1-1", "1"), [_node("n0")], others)[0] == "n0"
