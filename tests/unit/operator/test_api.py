"""The API models: defaults, enums, bounds, cross-field rules and the camelCase wire format."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import ValidationError

from tandem.operator.api import (
    Accelerator,
    AcceleratorPool,
    AcceleratorPoolSpec,
    Backend,
    ChipGeneration,
    Condition,
    ConditionStatus,
    Fault,
    FaultClass,
    FaultPolicy,
    JobPhase,
    TrainingJob,
    TrainingJobSpec,
    TrainingJobStatus,
    default_backend,
)


def _job_spec(**overrides: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "pools": ["ascend-910b", "h20"],
        "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "ckpt"}}},
    }
    spec.update(overrides)
    return spec


def _job(**spec_overrides: Any) -> dict[str, Any]:
    return {
        "apiVersion": "tandem.dev/v1alpha1",
        "kind": "TrainingJob",
        "metadata": {"name": "llama-demo", "namespace": "ml"},
        "spec": _job_spec(**spec_overrides),
    }


def _error_names(exc: ValidationError) -> str:
    """Every location and message of the errors, so a test can ask whether a field is named."""
    return " ".join(".".join(map(str, err["loc"])) + " " + err["msg"] for err in exc.errors())


def test_job_spec_defaults_follow_the_design() -> None:
    spec = TrainingJobSpec.model_validate(_job_spec())
    assert spec.nodes == 1
    assert spec.container.image is None
    assert spec.container.command is None
    assert spec.container.args == [] and spec.container.env == []
    assert spec.container.resources.requests == {} and spec.container.resources.limits == {}
    assert spec.training == {}
    assert spec.checkpoint.path == "/checkpoints"
    assert spec.checkpoint.interval_steps == 200
    assert spec.checkpoint.keep == 3
    assert spec.fault_policy == FaultPolicy(
        max_restarts=10,
        backoff_seconds=10,
        max_backoff_seconds=300,
        failover_after_faults=2,
        pending_timeout_seconds=600,
        exclude_faulty_nodes=True,
        fail_back=False,
    )


def test_job_status_defaults() -> None:
    status = TrainingJob.model_validate(_job()).status
    assert status.phase is JobPhase.PENDING
    assert (status.attempt, status.restarts, status.failovers, status.observed_generation) == (0, 0, 0, 0)
    assert status.pool is None and status.message == ""
    assert status.last_checkpoint.step == 0 and status.last_checkpoint.time is None
    assert status.faults == [] and status.excluded_nodes == [] and status.conditions == []
    assert status.start_time is None and status.completion_time is None


def test_pool_spec_defaults_and_effective_backend() -> None:
    pool = AcceleratorPoolSpec.model_validate({"accelerator": "cpu"})
    assert pool.device_resource is None
    assert pool.devices_per_node == 1
    assert pool.node_selector == {} and pool.tolerations == [] and pool.env == []
    assert pool.image is None and pool.backend is None and pool.host_network is False
    assert pool.effective_backend() is Backend.GLOO


@pytest.mark.parametrize(
    ("accelerator", "backend"),
    [(Accelerator.NPU, Backend.HCCL), (Accelerator.GPU, Backend.NCCL), (Accelerator.CPU, Backend.GLOO)],
)
def test_backend_defaults_from_accelerator(accelerator: Accelerator, backend: Backend) -> None:
    pool = AcceleratorPoolSpec(accelerator=accelerator, device_resource="example.org/device")
    assert default_backend(accelerator) is backend
    assert pool.effective_backend() is backend


def test_gloo_runs_on_any_accelerator_and_overrides_the_default() -> None:
    pool = AcceleratorPoolSpec.model_validate(
        {"accelerator": "npu", "deviceResource": "huawei.com/Ascend910", "backend": "gloo"}
    )
    assert pool.effective_backend() is Backend.GLOO


def test_a_chip_generation_belongs_to_an_npu_pool() -> None:
    npu = {"accelerator": "npu", "deviceResource": "huawei.com/Ascend910"}
    assert AcceleratorPoolSpec.model_validate({**npu, "chipGeneration": "ascend910b"}).chip_generation == "ascend910b"
    with pytest.raises(ValueError, match="only an npu pool has one"):
        AcceleratorPoolSpec.model_validate({"accelerator": "gpu", "deviceResource": "nvidia.com/gpu",
                                            "chipGeneration": "ascend910b"})
    with pytest.raises(ValueError, match="chipGeneration"):
        AcceleratorPoolSpec.model_validate({**npu, "chipGeneration": "ascend950"})


def test_enum_values_are_the_contract() -> None:
    assert [a.value for a in Accelerator] == ["npu", "gpu", "cpu"]
    assert [b.value for b in Backend] == ["hccl", "nccl", "gloo"]
    assert [g.value for g in ChipGeneration] == ["ascend910", "ascend910b", "ascend910c"]
    assert [p.value for p in JobPhase] == ["Pending", "Starting", "Running", "Restarting", "Succeeded", "Failed"]
    assert [c.value for c in FaultClass] == ["interconnect", "device", "node", "oom", "storage", "user",
                                                  "unknown"]
    assert [s.value for s in ConditionStatus] == ["True", "False", "Unknown"]


def test_round_trip_through_the_wire_names() -> None:
    wire = _job(
        nodes=2,
        container={"image": "example.org/rt:cuda", "resources": {"requests": {"cpu": 8, "memory": "64Gi"}}},
        training={"model": "test", "globalBatch": 64, "nested": {"anything": [1, "two"]}},
        faultPolicy={"backoffSeconds": 5, "maxBackoffSeconds": 60, "failBack": True},
    )
    wire["status"] = {
        "observedGeneration": 3,
        "phase": "Restarting",
        "pool": "ascend-910b",
        "attempt": 2,
        "restarts": 1,
        "lastCheckpoint": {"step": 400, "time": "2025-01-02T03:04:05Z"},
        "faults": [
            {
                "time": "2025-01-02T03:04:06Z",
                "attempt": 1,
                "pool": "ascend-910b",
                "node": "node-a",
                "pod": "llama-demo-a1-3",
                "class": "interconnect",
                "reason": "HcclTimeout",
                "message": "rank 3",
            }
        ],
        "excludedNodes": ["node-a"],
        "conditions": [
            {
                "type": "Progressing",
                "status": "True",
                "reason": "Restarting",
                "message": "",
                "lastTransitionTime": "2025-01-02T03:04:06Z",
            }
        ],
    }
    job = TrainingJob.model_validate(wire)
    assert job.spec.fault_policy.fail_back is True
    assert job.status.faults[0].fault_class is FaultClass.INTERCONNECT
    assert job.status.last_checkpoint.time == datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    again = job.to_dict()
    assert again["spec"]["faultPolicy"]["maxBackoffSeconds"] == 60
    assert again["spec"]["training"] == wire["spec"]["training"]
    assert again["status"]["faults"][0]["class"] == "interconnect"
    assert "fault_class" not in again["status"]["faults"][0]
    assert TrainingJob.model_validate(again) == job


def test_python_names_are_accepted_too() -> None:
    spec = TrainingJobSpec(
        pools=["h20"],
        checkpoint={"volume": {"host_path": {"path": "/data/ckpt"}}, "interval_steps": 5},
        fault_policy=FaultPolicy(max_restarts=0),
    )
    assert spec.checkpoint.volume.host_path is not None
    assert spec.to_dict()["checkpoint"]["intervalSteps"] == 5
    fault = Fault(time=datetime(2025, 1, 1, tzinfo=UTC), attempt=1, pool="h20", fault_class="device", reason="Xid79")
    assert fault.to_dict()["class"] == "device"


def test_spec_refuses_unknown_fields_but_status_tolerates_them() -> None:
    with pytest.raises(ValidationError) as exc:
        TrainingJobSpec.model_validate(_job_spec(faultPolicy={"maxRetries": 3}))
    assert "faultPolicy.maxRetries" in _error_names(exc.value)
    status = TrainingJobStatus.model_validate({"phase": "Running", "futureField": 1})
    assert status.phase is JobPhase.RUNNING


def _with(path: str, value: Any) -> dict[str, Any]:
    """A valid job spec with the value at the dotted path replaced (or added)."""
    spec = copy.deepcopy(_job_spec())
    *parents, leaf = path.split(".")
    node = spec
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return spec


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param(_with("nodes", 0), "nodes", id="zero-nodes"),
        pytest.param(_with("nodes", "two"), "nodes", id="string-for-number"),
        pytest.param(_with("nodes", "2"), "nodes", id="numeric-string-for-number"),
        pytest.param(_with("nodes", True), "nodes", id="bool-for-number"),
        pytest.param(_with("pools", []), "pools", id="empty-pools"),
        pytest.param(_with("pools", ["h20", "h20"]), "pools", id="repeated-pool"),
        pytest.param(_with("pools", ["Not_A_Name"]), "pools", id="pool-not-a-dns-name"),
        pytest.param(_with("pools", ["p" * 64]), "pools", id="pool-name-longer-than-a-label-value"),
        pytest.param(_with("faultPolicy.backoffSeconds", -1), "backoffSeconds", id="negative-backoff"),
        pytest.param(_with("faultPolicy.maxRestarts", -1), "maxRestarts", id="negative-restarts"),
        pytest.param(_with("faultPolicy.maxBackoffSeconds", 5), "maxBackoffSeconds", id="cap-below-backoff"),
        pytest.param(_with("faultPolicy.backoffSeconds", 301), "maxBackoffSeconds", id="backoff-above-default-cap"),
        pytest.param(_with("faultPolicy.failoverAfterFaults", 0), "failoverAfterFaults", id="zero-failover"),
        pytest.param(_with("faultPolicy.pendingTimeoutSeconds", 0), "pendingTimeoutSeconds", id="zero-pending"),
        pytest.param(_with("faultPolicy.excludeFaultyNodes", "yes"), "excludeFaultyNodes", id="string-for-bool"),
        pytest.param(_with("checkpoint.intervalSteps", 0), "intervalSteps", id="zero-interval"),
        pytest.param(_with("checkpoint.keep", 0), "keep", id="zero-keep"),
        pytest.param(_with("checkpoint.path", "checkpoints"), "path", id="relative-path"),
        pytest.param(_with("checkpoint.volume", {}), "persistentVolumeClaim", id="no-volume-source"),
        pytest.param(_with("checkpoint.volume.emptyDir", {}), "persistentVolumeClaim", id="two-volume-sources"),
        pytest.param(_with("checkpoint.volume.persistentVolumeClaim", {}), "claimName", id="claim-without-name"),
        pytest.param(_with("container.resources.requests", {"cpu": 0.5}), "cpu", id="float-quantity"),
        pytest.param(_with("container.command", "python"), "command", id="string-for-list"),
        pytest.param(_with("container.env", [{"value": "1"}]), "name", id="env-without-name"),
        pytest.param(_with("nodez", 2), "nodez", id="unknown-field"),
        pytest.param(_with("container.imageName", "x"), "imageName", id="unknown-nested-field"),
    ],
)
def test_bad_job_specs_are_refused_naming_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        TrainingJobSpec.model_validate(spec)
    assert field in _error_names(exc.value)


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        pytest.param({"accelerator": "tpu", "deviceResource": "x"}, "accelerator", id="unknown-accelerator"),
        pytest.param({"accelerator": "npu"}, "deviceResource", id="npu-without-device-resource"),
        pytest.param({"accelerator": "gpu", "deviceResource": None}, "deviceResource", id="gpu-null-resource"),
        pytest.param(
            {"accelerator": "npu", "deviceResource": "huawei.com/Ascend910", "backend": "nccl"},
            "backend",
            id="nccl-on-npu",
        ),
        pytest.param({"accelerator": "cpu", "backend": "hccl"}, "backend", id="hccl-on-cpu"),
        pytest.param({"accelerator": "gpu", "deviceResource": "g", "backend": "mpi"}, "backend", id="bad-backend"),
        pytest.param({"accelerator": "cpu", "devicesPerNode": 0}, "devicesPerNode", id="zero-devices"),
        pytest.param(
            {"accelerator": "cpu", "tolerations": [{"key": "k", "effect": "Sometimes"}]}, "effect", id="bad-effect"
        ),
        pytest.param({"accelerator": "cpu", "hostNet": True}, "hostNet", id="unknown-field"),
    ],
)
def test_bad_pool_specs_are_refused_naming_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as exc:
        AcceleratorPoolSpec.model_validate(spec)
    assert field in _error_names(exc.value)


def test_cap_equal_to_backoff_and_zero_backoff_are_fine() -> None:
    assert FaultPolicy(backoff_seconds=30, max_backoff_seconds=30).max_backoff_seconds == 30
    assert FaultPolicy(backoff_seconds=0, max_backoff_seconds=0).backoff_seconds == 0


def test_each_volume_source_alone_is_accepted() -> None:
    for volume in (
        {"persistentVolumeClaim": {"claimName": "ckpt", "readOnly": True}},
        {"hostPath": {"path": "/mnt/ckpt", "type": "DirectoryOrCreate"}},
        {"emptyDir": {}},
        {"emptyDir": {"medium": "Memory", "sizeLimit": "10Gi"}},
        {"nfs": {"server": "nfs.example.org", "path": "/export/ckpt"}},
    ):
        TrainingJobSpec.model_validate(_with("checkpoint.volume", volume))


def test_quantities_are_ints_or_strings() -> None:
    spec = TrainingJobSpec.model_validate(
        _with("container.resources", {"requests": {"cpu": 8, "memory": "64Gi"}, "limits": {"cpu": "8500m"}})
    )
    assert spec.container.resources.requests == {"cpu": 8, "memory": "64Gi"}


def test_env_value_from_is_free_form() -> None:
    env = [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf", "key": "token"}}}]
    spec = TrainingJobSpec.model_validate(_with("container.env", env))
    assert spec.to_dict()["container"]["env"] == env


def test_pool_resource_round_trip() -> None:
    wire = {
        "apiVersion": "tandem.dev/v1alpha1",
        "kind": "AcceleratorPool",
        "metadata": {"name": "h20"},
        "spec": {"accelerator": "gpu", "deviceResource": "nvidia.com/gpu", "devicesPerNode": 8},
        "status": {"nodes": 4, "readyNodes": 3, "faultyNodes": ["node-a"]},
    }
    pool = AcceleratorPool.model_validate(wire)
    assert pool.status.faulty_nodes == ["node-a"]
    assert AcceleratorPool.model_validate(pool.to_dict()) == pool
    with pytest.raises(ValidationError):
        AcceleratorPool.model_validate({**wire, "kind": "TrainingJob"})


def test_a_pool_name_is_at_most_a_label_value_long() -> None:
    """Its pods carry it in their tandem.dev/pool label, which Kubernetes caps at 63 characters."""
    wire = {"metadata": {"name": "p" * 63}, "spec": {"accelerator": "cpu"}}
    assert AcceleratorPool.model_validate(wire).metadata["name"] == "p" * 63
    with pytest.raises(ValidationError, match=r"metadata\.name must be at most 63 characters"):
        AcceleratorPool.model_validate({**wire, "metadata": {"name": "p" * 64}})


def test_status_bounds() -> None:
    fault = {"time": "2025-01-01T00:00:00Z", "attempt": 1, "pool": "h20", "class": "oom", "reason": "OOMKilled"}
    TrainingJobStatus.model_validate({"faults": [fault] * 20})
    with pytest.raises(ValidationError) as exc:
        TrainingJobStatus.model_validate({"faults": [fault] * 21})
    assert "faults" in _error_names(exc.value)
    with pytest.raises(ValidationError) as exc:
        TrainingJobStatus.model_validate({"faults": [{**fault, "class": "cosmic-ray"}]})
    assert "class" in _error_names(exc.value)
    with pytest.raises(ValidationError) as exc:
        TrainingJobStatus.model_validate({"phase": "Sleeping"})
    assert "phase" in _error_names(exc.value)


def test_conditions_are_metav1_shaped_and_keyed_by_type() -> None:
    ready = {
        "type": "Ready",
        "status": "True",
        "reason": "AllPodsRunning",
        "lastTransitionTime": "2025-01-01T00:00:00Z",
    }
    condition = Condition.model_validate(ready)
    assert condition.status is ConditionStatus.TRUE and condition.message == ""
    with pytest.raises(ValidationError) as exc:
        TrainingJobStatus.model_validate({"conditions": [ready, ready]})
    assert "conditions" in _error_names(exc.value)
    with pytest.raises(ValidationError) as exc:
        Condition.model_validate({**ready, "status": "Maybe"})
    assert "status" in _error_names(exc.value)
    with pytest.raises(ValidationError) as exc:
        Condition.model_validate({**ready, "reason": "not a reason"})
    assert "reason" in _error_names(exc.value)
