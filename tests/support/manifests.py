"""Manifests the tests share: the repository's examples, the tables of broken ones, and the two
pools the operator tests run on."""

from __future__ import annotations

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
