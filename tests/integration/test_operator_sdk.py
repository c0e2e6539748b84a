"""A team's plain PyTorch script on the SDK, with the real operator on the local cluster (issue 17): it trains on an
Ascend-like pool of 2 devices per pod under tandem-run and torchrun, dies after its step-3 checkpoint with HCCL's
error on one rank, fails over to a GPU-like pool of 1 device per pod, and resumes there from step 3 with the same
weights, the same data position and the same global batch, to Succeeded; status.lastCheckpoint follows."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import operator_jobs
import pytest
from sdk_ddp import SCRIPT

GROUP, VERSION, PLURAL = "tandem.dev", "v1alpha1", "trainingjobs"
NS = "default"
wait_phase = partial(operator_jobs.wait_phase, timeout=180)
def small_pool(name: str, accelerator: str, resource: str, devices: int, nodes_of: str) -> dict[str, Any]:
    """A pool of `devices` per pod on the simulated nodes of `nodes_of`; the runtime's CPU path, as in the local
    examples (the simulated nodes have no NPU or GPU)."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AcceleratorPool", "metadata": {"name": name},
            "spec": {"accelerator": accelerator, "deviceResource": resource, "devicesPerNode": devices,
                     "nodeSelector": {"tandem.dev/pool": nodes_of}, "image": "example.org/team/ddp:1",
                     "env": [{"name": "TANDEM_ACCELERATOR", "value": "cpu"},
                             {"name": "TANDEM_BACKEND", "value": "gloo"}]}}


@pytest.mark.timeout(300)
def test_an_sdk_script_fails_over_to_another_world_size_and_resumes(custom: Any, core: Any, wait_for: Any,
                                                                       tmp_path: Path) -> None:
    custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools",
                                        small_pool("npu-two", "npu", "huawei.com/Ascend910", 2, "ascend-910b"))
    custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools",
                                        small_pool("gpu-one", "gpu", "nvidia.com/gpu", 1, "h20"))
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    job = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": "sdk-ddp"},
           "spec": {"nodes": 1, "pools": ["npu-two", "gpu-one"],
                    "container": {"command": ["tandem-run", "--", sys.executable, "-P", "-m", "torch.distributed.run",
                                              str(script)], "env": [{"name": "FAIL_ON_ATTEMPT", "value": "1"}]},
                    "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "ckpt"}},
                                   "path": "/checkpoints/sdk-ddp"},
                    "faultPolicy": {"backoffSeconds": 0, "maxBackoffSeconds": 0, "failoverAfterFaults": 1}}}
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job)
    status = wait_phase(custom, wait_for, "sdk-ddp", "Succeeded")["status"]
    fault = status["faults"][0]
    assert (fault["class"], fault["reason"], fault["checkpointStep"], fault["pool"]) == (
        "interconnect", "HcclSocketTimeout", 3, "npu-two")
    assert (status["pool"], status["failovers"], status["lastCheckpoint"]["step"]) == ("gpu-one", 1, 6)
    log = core.read_namespaced_pod_log(f"sdk-ddp-a{status['attempt']}-0", NS)
    # World 2 -> 1: the same weights and data position (24 samples), the same global batch (2x2x2 = 2x4x1 = 8).
    loaded = next(line for line in log.splitlines() if line.startswith("loaded "))
    assert loaded.startswith("loaded 3 sample 24 ") and loaded.endswith(" same-weights True world 1 plan 2x4")
