"""Builders for the operator core's inputs: jobs, pools, nodes and pods as the API returns them.
Imported by tests as `builders` (tests/support is on pytest's pythonpath)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tandem.operator.api import AcceleratorPool, TrainingJob

NOW = datetime(2026, 11, 23, 12, 0, 0, tzinfo=UTC)


def make_job(name: str = "llama", status: dict[str, Any] | None = None, **spec: Any) -> TrainingJob:
    body = {
        "apiVersion": "tandem.dev/v1alpha1", "kind": "TrainingJob",
        "metadata": {"name": name, "namespace": "ml", "uid": "uid-job", "generation": 1, "resourceVersion": "1"},
        "spec": {"nodes": 2, "pools": ["ascend-910b", "h20"], "checkpoint": {
            "volume": {"persistentVolumeClaim": {"claimName": "ckpt"}}, "intervalSteps": 50}, **spec},
        "status": status or {},
    }
    return TrainingJob.model_validate(body)


def make_pool(name: str = "ascend-910b", accelerator: str = "npu", devices: int = 8, **spec: Any) -> AcceleratorPool:
    resource = {"npu": "huawei.com/Ascend910", "gpu": "nvidia.com/gpu"}.get(accelerator)
    body: dict[str, Any] = {
        "apiVersion": "tandem.dev/v1alpha1", "kind": "AcceleratorPool", "metadata": {"name": name},
        "spec": {"accelerator": accelerator, "devicesPerNode": devices, "nodeSelector": {"tandem.dev/pool": name},
                 "image": f"example.org/tandem-runtime:{accelerator}", **spec},
    }
    if resource:
        body["spec"].setdefault("deviceResource", resource)
    return AcceleratorPool.model_validate(body)


def make_node(name: str, pool: str, ready: bool = True, devices: int = 8) -> dict[str, Any]:
    """A node of `pool` with `devices` accelerators of the kind make_pool gives that pool."""
    resource = "huawei.com/Ascend910" if pool.startswith("ascend") else "nvidia.com/gpu"
    return {"metadata": {"name": name, "labels": {"tandem.dev/pool": pool}},
            "status": {"allocatable": {resource: str(devices), "cpu": "64"},
                       "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}


def make_pod(job: str, attempt: int, rank: int, phase: str = "Pending", node: str | None = None,
             exit_code: int | None = None, reason: str | None = None, message: str = "",
             finished_at: str = "2026-11-23T12:00:00Z") -> dict[str, Any]:
    pod: dict[str, Any] = {
        "metadata": {"name": f"{job}-a{attempt}-{rank}", "namespace": "ml", "labels": {
            "tandem.dev/job": job, "tandem.dev/attempt": str(attempt), "tandem.dev/rank": str(rank),
            "tandem.dev/pool": "ascend-910b"}},
        "spec": {"nodeName": node} if node else {},
        "status": {"phase": phase},
    }
    if exit_code is not None:
        pod["status"]["containerStatuses"] = [{"name": "trainer", "state": {"terminated": {
            "exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0 else "Error"),
            "message": message, "finishedAt": finished_at}}}]
    return pod


def make_failed_launcher_pod(exit_code: int | None = 1, reason: str | None = None, message: str = "") -> dict[str, Any]:
    """A failed rank 0 pod on node n1 as the operator creates it (its container runs Tandem's launcher)."""
    pod = make_pod("llama", 1, 0, phase="Failed", node="n1", exit_code=exit_code, reason=reason, message=message)
    pod["spec"]["containers"] = [{"name": "trainer", "image": "example.org/tandem-runtime:npu",
                                  "command": ["tandem-train"]}]
    return pod
