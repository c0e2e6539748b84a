"""Local clusters that integration modules share (their `cluster` fixture overrides tests/conftest.py's)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tandem.localcluster.cluster import LocalCluster
from tandem.localcluster.nodes import ClusterConfig, SimulatedPool


def three_ascend_nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Three Ascend and two H20 nodes of 8 devices each: a 2-pod job that lost a node still fits its pool,
    and three 2-pod jobs cannot all run at once."""
    with LocalCluster(ClusterConfig(pools=[
        SimulatedPool(name="ascend-910b", accelerator="npu", nodes=3, devices_per_node=8),
        SimulatedPool(name="h20", accelerator="gpu", nodes=2, devices_per_node=8),
    ])) as local:
        local.kubeconfig_path = local.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        yield local
