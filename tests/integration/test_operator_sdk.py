"""A team's own scripts on the SDK, with the real operator on the local cluster (issue 17): a plain PyTorch DDP script
and a Hugging Face Trainer script train on an Ascend-like pool of 2 devices per pod under tandem-run and torchrun,
die after their step-3 checkpoint with HCCL's error, fail over to a GPU-like pool of 1 device per pod, and resume
there from step 3 with the same global batch (and, for the DDP script, the same weights and data position), to
Succeeded; status.lastCheckpoint follows."""

from __future__ import annotations

import sys
from functools import partial
from pathlib import Path
from typing import Any

import operator_jobs
import pytest
from hf_trainer_script import SCRIPT as HF_SCRIPT
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


@pytest.fixture(scope="module")
def small_pools(custom: Any) -> None:
    custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools",
                                        small_pool("npu-two", "npu", "huawei.com/Ascend910", 2, "ascend-910b"))
    custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools",
                                        small_pool("gpu-one", "gpu", "nvidia.com/gpu", 1, "h20"))


def fail_over_and_succeed(custom: Any, core: Any, wait_for: Any, name: str, layout: str, script: Path,
                          env: list[dict[str, str]]) -> str:
    """Run `script` with torchrun under tandem-run on npu-two, then gpu-one; check that HCCL's error after the
    step-3 checkpoint failed it over and that it succeeded there at step 6; return the last attempt's rank-0 log.
    The tests' jobs mount the same claim: each names its checkpoint layout."""
    job = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
           "spec": {"nodes": 1, "pools": ["npu-two", "gpu-one"],
                    "container": {"command": ["tandem-run", "--checkpoint-layout", layout, "--", sys.executable,
                                              "-P", "-m", "torch.distributed.run", str(script)], "env": env},
                    "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "ckpt"}},
                                   "path": f"/checkpoints/{name}"},
                    "faultPolicy": {"backoffSeconds": 0, "maxBackoffSeconds": 0, "failoverAfterFaults": 1}}}
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job)
    status = wait_phase(custom, wait_for, name, "Succeeded")["status"]
    fault = status["faults"][0]
    assert (fault["class"], fault["reason"], fault["checkpointStep"], fault["pool"]) == (
        "interconnect", "HcclSocketTimeout", 3, "npu-two")
    assert (status["pool"], status["failovers"], status["lastCheckpoint"]["step"]) == ("gpu-one", 1, 6)
    return str(core.read_namespaced_pod_log(f"{name}-a{status['attempt']}-0", NS))


@pytest.mark.timeout(300)
@pytest.mark.usefixtures("small_pools")
def test_an_sdk_script_fails_over_to_another_world_size_and_resumes(custom: Any, core: Any, wait_for: Any,
                                                                       tmp_path: Path) -> None:
    script = tmp_path / "train.py"
    script.write_text(SCRIPT)
    log = fail_over_and_succeed(custom, core, wait_for, "sdk-ddp", "tandem", script,
                                [{"name": "FAIL_ON_ATTEMPT", "value": "1"}])
    # World 2 -> 1: the same weights and data position (24 samples), the same global batch (2x2x2 = 2x4x1 = 8).
    loaded = next(line for line in log.splitlines() if line.startswith("loaded "))
    assert loaded.startswith("loaded 3 sample 24 ") and loaded.endswith(" same-weights True world 1 plan 2x4")


@pytest.mark.timeout(400)
@pytest.mark.usefixtures("small_pools")
def test_a_trainer_script_fails_over_and_keeps_its_global_batch(custom: Any, core: Any, wait_for: Any,
                                                                 tmp_path: Path) -> None:
    """The Hugging Face Trainer on tandem.sdk.hf: HCCL's error at step 4 on the 2-device pool, then the 1-device
    pool resumes the Trainer's checkpoint-3 with 2 sequences x 4 passes instead of 2 x 2 x 2 ranks (8 either way)."""
    script = tmp_path / "train_hf.py"
    script.write_text(HF_SCRIPT)
    env = [{"name": "DIE_AT_STEP", "value": "4"}, {"name": "DIE_ON_ATTEMPT", "value": "1"},
           {"name": "DIE_WITH", "value": "EI0006: Getting socket times out. Reason: Remote Rank did not send the data"
                                         " in time."}]
    log = fail_over_and_succeed(custom, core, wait_for, "sdk-hf", "huggingface", script, env)
    assert "plan 2 4" in log
