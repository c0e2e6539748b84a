from builders import NOW, make_node, make_pool

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
