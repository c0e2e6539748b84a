"""A team's plain PyTorch script on the SDK, with the real operator on the local cluster (issue 17): it trains on an
Ascend-like pool of 2 devices per pod under tandem-run and torchrun, dies after its step-3 checkpoint with HCCL's
error on one rank, fails over to a GPU-like pool of 1 device per pod, and resumes there from step 3 with the same
weights, the same data position and the same global batch, to Succeeded; status.lastCheckpoint follows."""

from __future__ import annotations

import sys
import textwrap
from functools import partial
from pathlib import Path
from typing import Any

import operator_jobs
import pytest

GROUP, VERSION, PLURAL = "tandem.dev", "v1alpha1", "trainingjobs"
NS = "default"
wait_phase = partial(operator_jobs.wait_phase, timeout=180)
EI0006 = "EI0006: Getting socket times out. Reason: Remote Rank did not send the data in time."

SCRIPT = textwrap.dedent(f'''
    import hashlib, os, pathlib, sys
    import torch, torch.distributed as dist
    import tandem.sdk as sdk
    from tandem.sdk.checkpoint import Checkpointer

    def digest(model):
        weights = torch.cat([p.detach().flatten() for p in model.parameters()])
        return hashlib.sha256(weights.numpy().tobytes()).hexdigest()[:16]

    ctx = sdk.init()
    record = pathlib.Path(os.environ["TANDEM_CHECKPOINT_DIR"]) / "sdk-weights"
    torch.manual_seed(0)
    model = torch.nn.Linear(8, 8)
    if ctx.world_size > 1:
        model = torch.nn.parallel.DistributedDataParallel(model)
    optim = torch.optim.Adam(model.parameters(), lr=0.01)
    ckpt = Checkpointer(ctx, keep=2)
    loaded = ckpt.load(model, optim)
    start, state = loaded if loaded else (0, {{"sample": 0}})
    plan = sdk.batch_plan(8, micro_batch=2)
    if ctx.rank == 0:
        saved = (record / f"{{start}}").read_text() if start else None
        print(f"loaded {{start}} sample {{state['sample']}} same-weights {{saved == digest(model)}} "
              f"world {{ctx.world_size}} plan {{plan.micro_batch}}x{{plan.accumulation}}", flush=True)
    for step in range(start + 1, start + 4):
        for _ in range(plan.accumulation):
            model(torch.randn(plan.micro_batch, 8)).pow(2).mean().backward()
        ckpt.wait_staged()
        optim.step()
        optim.zero_grad()
        state = {{"sample": state["sample"] + plan.micro_batch * plan.accumulation * ctx.world_size}}
        sdk.progress(step)
        ckpt.save(step, model, optim, state)
        ckpt.wait()
        if ctx.rank == 0:
            record.mkdir(exist_ok=True)
            (record / f"{{step}}").write_text(digest(model))
    if ctx.world_size > 1:
        dist.barrier()  # rank 0 has committed the last checkpoint
    if os.environ["TANDEM_ATTEMPT"] == "1" and ctx.rank == 1:
        print({EI0006!r}, file=sys.stderr, flush=True)
        sys.exit(1)
    if dist.is_initialized():
        dist.destroy_process_group()
''')


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
                                              str(script)]},
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
    assert "loaded 3 sample 24 same-weights True world 1 plan 2x4" in log
