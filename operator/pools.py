"""AcceleratorPool status from the nodes that match its selector (pure)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from tandem.operator.api import AcceleratorPool, AcceleratorPoolStatus
from tandem.operator.device_reports import DeviceFault
from tandem.operator.observe import Obj, node_is_ready, pool_nodes
from tandem.operator.step import set_condition


def pool_status(pool: AcceleratorPool, nodes: Sequence[Obj], now: datetime,
                device_faults: Mapping[str, Sequence[DeviceFault]] | None = None) -> AcceleratorPoolStatus:
    """Node counts, the nodes with an open accelerator/interconnect fault, and a Ready condition."""
    matching = pool_nodes(pool, list(nodes))
    ready = [n for n in matching if node_is_ready(n)]
    reports = device_faults or {}
    faulty = sorted(n["metadata"]["name"] for n in matching if reports.get(n["metadata"]["name"]))
    status = pool.status.model_copy(deep=True)
    status.nodes, status.ready_nodes, status.faulty_nodes = len(matching), len(ready), faulty
    healthy = [n for n in ready if n["metadata"]["name"] not in faulty]
    if healthy:
        value, reason, message = True, "NodesReady", f"{len(healthy)} of {len(matching)} node(s) ready and healthy"
    elif ready:
        value, reason, message = False, "NoHealthyNodes", (
            f"none of {len(matching)} node(s) is ready and healthy: the {len(ready)} ready node(s) have an open "
            "accelerator or interconnect fault")
    elif matching:
        value, reason, message = False, "NoReadyNodes", f"none of {len(matching)} node(s) is ready"
    else:
        value, reason, message = False, "NoNodes", f"no node matches nodeSelector {pool.spec.node_selector}"
    set_condition(status, "Ready", value, reason, message, now, pool.metadata.get("generation"))
    return status
