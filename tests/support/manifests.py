"""Manifests the tests share: the repository's examples, the tables of broken ones, and the two
pools the operator tests run on."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION = "tandem.dev", "v1alpha1"


def example(kind: str) -> dict[str, Any]:
    """The first manifest of `kind` in examples/."""
    for path in sorted((REPO / "examples").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc["kind"] == kind:
                return doc
    raise LookupError(kind)


def cases(name: str) -> list[Any]:
    """A table of tests/data as pytest params, one per `case`."""
    return [pytest.param(c, id=c["case"]) for c in yaml.safe_load((REPO / "tests/data" / name).read_text())]


def simulated_pools() -> list[dict[str, Any]]:
    """An Ascend 910B and an NVIDIA H20 pool, matching the local cluster's simulated nodes."""
    def pool(name: str, accelerator: str, resource: str, image: str) -> dict[str, Any]:
        return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AcceleratorPool", "metadata": {"name": name},
                "spec": {"accelerator": accelerator, "deviceResource": resource, "devicesPerNode": 8,
                         "nodeSelector": {"tandem.dev/pool": name}, "image": image}}

    return [pool("ascend-910b", "npu", "huawei.com/Ascend910", "example.org/tandem-runtime:npu"),
            pool("h20", "gpu", "nvidia.com/gpu", "example.org/tandem-runtime:cuda")]


def ascend_fault_report(node: str, chip: str = "Ascend910-3", level: str = "RestartNPU") -> dict[str, Any]:
    """The Ascend device plugin's per-node ConfigMap (format: Ascend/mind-cluster,
    docs/en/scheduling/api/ascend_device_plugin.md), with one chip in a fault that needs a restart."""
    faults = [{"fault_type": "CardUnhealthy", "npu_name": chip, "fault_level": level, "fault_handling": level,
               "fault_code": "80E01801"}]
    device_list = {"huawei.com/Ascend910": "Ascend910-0,Ascend910-1", "huawei.com/Ascend910-Fault": json.dumps(faults),
                   "huawei.com/Ascend910-NetworkUnhealthy": "", "huawei.com/Ascend910-Unhealthy": chip}
    info = {"DeviceInfo": {"DeviceList": device_list, "UpdateTime": 1744182144}, "SuperPodID": -2,
            "ServerIndex": -2, "CheckCode": "local"}
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"mindx-dl-deviceinfo-{node}", "namespace": "kube-system",
                         "labels": {"mx-consumer-cim": "true"}},  # the plugin's label: the operator lists by it
            "data": {"DeviceInfoCfg": json.dumps(info)}}
