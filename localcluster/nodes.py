"""Simulated nodes, made from a small cluster config: pools, node count, devices per node."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

from tandem.localcluster.simulated import NODE_ANNOTATION, PodScript

POOL_LABEL = "tandem.dev/pool"
DEVICE_RESOURCES = {"npu": "huawei.com/Ascend910", "gpu": "nvidia.com/gpu"}


class SimulatedPool(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    name: str
    accelerator: Literal["npu", "gpu", "cpu"]
    nodes: int = Field(ge=0)
    devices_per_node: int = Field(default=8, ge=0, alias="devicesPerNode")
    device_resource: str | None = Field(default=None, alias="deviceResource")
    cpu: str = "64"
    memory: str = "512Gi"
    labels: dict[str, str] = Field(default_factory=dict)
    taints: list[dict[str, str]] = Field(default_factory=list)
    # Pods on these nodes run no process but this script (KWOK-style, for scale tests): simulated.py.
    simulated_pods: PodScript | None = Field(default=None, alias="simulatedPods")

    def resource(self) -> str | None:
        return self.device_resource or DEVICE_RESOURCES.get(self.accelerator)


class ClusterConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pools: list[SimulatedPool]

    @classmethod
    def load(cls, path: str | Path | None) -> ClusterConfig:
        if path is None:
            return DEFAULT_CLUSTER
        return cls.model_validate(yaml.safe_load(Path(path).read_text()))


# Matches examples/local/ (and the real-cluster examples/): an Ascend 910B pool and an NVIDIA H20 pool.
DEFAULT_CLUSTER = ClusterConfig(pools=[
    SimulatedPool(name="ascend-910b", accelerator="npu", nodes=2, devices_per_node=8),
    SimulatedPool(name="h20", accelerator="gpu", nodes=2, devices_per_node=8),
])


def node_manifests(config: ClusterConfig) -> list[dict[str, Any]]:
    manifests = []
    for pool in config.pools:
        for index in range(pool.nodes):
            name = f"{pool.name}-node-{index}"
            capacity = {"cpu": pool.cpu, "memory": pool.memory, "pods": "110"}
            if pool.resource() and pool.devices_per_node:
                capacity[str(pool.resource())] = str(pool.devices_per_node)
            manifests.append({
                "apiVersion": "v1",
                "kind": "Node",
                "metadata": {"name": name, "labels": {
                    POOL_LABEL: pool.name, "kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64", **pool.labels,
                }, **({"annotations": {NODE_ANNOTATION: pool.simulated_pods.to_json()}}
                      if pool.simulated_pods is not None else {})},
                "spec": {"taints": pool.taints} if pool.taints else {},
                "status": {
                    "capacity": capacity,
                    "allocatable": dict(capacity),
                    "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                                    "message": "tandem local simulated kubelet is posting ready status"}],
                    "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                                  {"type": "Hostname", "address": name}],
                    "nodeInfo": {"kubeletVersion": "v1.32.0-tandem-local", "operatingSystem": "linux",
                                 "architecture": "amd64", "containerRuntimeVersion": "tandem-local://1",
                                 "kernelVersion": "", "osImage": "tandem local", "kubeProxyVersion": "",
                                 "machineID": "", "systemUUID": "", "bootID": ""},
                },
            })
    return manifests
