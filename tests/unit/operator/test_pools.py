import pytest
from builders import NOW, make_node, make_pool

from tandem.faults.taxonomy import FaultClass
from tandem.operator.device_reports import DeviceFault
from tandem.operator.pools import pool_status


def test_pool_counts_matching_and_ready_nodes() -> None:
    nodes = [make_node("a", "ascend-910b"), make_node("b", "ascend-910b", ready=False), make_node("g", "h20")]
    status = pool_status(make_pool(), nodes, NOW)
    assert (status.nodes, status.ready_nodes) == (2, 1)
    ready = status.conditions[0]
    assert (ready.type, ready.status.value, ready.reason) == ("Ready", "True", "NodesReady")


def test_pool_without_nodes_says_so() -> None:
    status = pool_status(make_pool("empty"), [make_node("a", "ascend-910b")], NOW)
    assert status.nodes == 0 and status.conditions[0].reason == "NoNodes"


def test_transition_time_moves_only_when_readiness_flips() -> None:
    pool = make_pool()
    first = pool_status(pool, [make_node("a", "ascend-910b")], NOW)
    pool = pool.model_copy(update={"status": first})
    later = NOW.replace(hour=13)
    assert pool_status(pool, [make_node("a", "ascend-910b")], later).conditions[0].last_transition_time == NOW
    assert pool_status(pool, [make_node("a", "ascend-910b", ready=False)], later).conditions[0].last_transition_time \
        == later


CHIP = DeviceFault("a", FaultClass.DEVICE, "NpuChipFault", "Ascend910-4: CardUnhealthy", "ascend-device-plugin")
LINK = DeviceFault("b", FaultClass.INTERCONNECT, "NpuLinkFault", "Ascend910-0: link down", "ascend-device-plugin")


@pytest.mark.parametrize(("ready", "faults", "expected"), [
    ({"a": True, "b": True}, {}, (2, 2, [], "True", "NodesReady", "2 of 2 node(s) ready and healthy")),
    ({"a": True, "b": True}, {"a": [CHIP]}, (2, 2, ["a"], "True", "NodesReady", "1 of 2 node(s) ready and healthy")),
    ({"a": False, "b": False}, {}, (2, 0, [], "False", "NoReadyNodes", "none of 2 node(s) is ready")),
    # Ready nodes that all carry an open fault: the pool cannot take a job, and the message says why (it said
    # "none ready" while `readyNodes` said 2).
    ({"a": True, "b": True}, {"a": [CHIP], "b": [LINK]},
     (2, 2, ["a", "b"], "False", "NoHealthyNodes",
      "none of 2 node(s) is ready and healthy: the 2 ready node(s) have an open accelerator or interconnect fault")),
    ({"a": True, "b": False}, {"a": [CHIP]},
     (2, 1, ["a"], "False", "NoHealthyNodes",
      "none of 2 node(s) is ready and healthy: the 1 ready node(s) have an open accelerator or interconnect fault")),
])
def test_the_pools_status_case_by_case(ready: dict[str, bool], faults: dict[str, list[DeviceFault]],
                                       expected: tuple[object, ...]) -> None:
    nodes = [make_node(name, "ascend-910b", ready=is_ready) for name, is_ready in ready.items()]
    status = pool_status(make_pool(), nodes, NOW, faults)
    cond = status.conditions[0]
    assert (status.nodes, status.ready_nodes, status.faulty_nodes, cond.status.value, cond.reason,
            cond.message) == expected
