"""A job's own code and settings in its pods (operator/podtemplate.py, issue 16): the training container per
accelerator over the shared settings over the pool's defaults, the pod template merged into the contract, the
launch environment people's launchers read, and the fields that would break the contract refused, naming them.
Every pod built here is checked against the Kubernetes schema (kubernetes-validate, strict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pydantic
import pytest
import yaml
from builders import make_job, make_pool

from tandem.operator.api import AcceleratorPool, TrainingJob
from tandem.operator.podspec import attempt_pod

NPU, GPU = make_pool("ascend-910b", "npu", 8), make_pool("h20", "gpu", 4)
MEGATRON = {
    "image": "example.org/team/megatron:base",
    "command": ["bash", "-c"],
    "args": ["torchrun pretrain_gpt.py --tensor-model-parallel-size 2"],
    "env": [{"name": "DATA_PATH", "value": "/data/corpus"}, {"name": "LOG_LEVEL", "value": "info"}],
    "resources": {"requests": {"cpu": "16", "memory": "128Gi"}, "limits": {"memory": "256Gi"}},
    "workingDir": "/workspace",
    "byAccelerator": {
        "npu": {"image": "example.org/team/mindspeed:cann8", "command": ["bash", "-c"],
                "args": ["torchrun pretrain_gpt.py --tensor-model-parallel-size 4"],
                "env": [{"name": "LOG_LEVEL", "value": "debug"}, {"name": "HCCL_CONNECT_TIMEOUT", "value": "1200"}],
                "resources": {"requests": {"memory": "192Gi"}}},
        "gpu": {"image": "example.org/team/megatron:cu124", "env": [{"name": "NCCL_IB_TIMEOUT", "value": "22"}],
                "workingDir": "/opt/megatron"},
    },
}


def _trainer(pod: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in pod["spec"]["containers"] if c["name"] == "trainer")


def _env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in _trainer(pod)["env"]}


def _valid(pod: dict[str, Any]) -> dict[str, Any]:
    kubernetes_validate.validate(pod, "1.32", strict=True)
    return pod


# (pool, what the training container gets): byAccelerator over container over the pool's defaults.
@pytest.mark.parametrize(("pool", "expected"), [
    (NPU, {"image": "example.org/team/mindspeed:cann8", "command": ["bash", "-c"],
           "args": ["torchrun pretrain_gpt.py --tensor-model-parallel-size 4"], "workingDir": "/workspace",
           "env": {"DATA_PATH": "/data/corpus", "LOG_LEVEL": "debug", "HCCL_CONNECT_TIMEOUT": "1200"},
           "resources": {"requests": {"cpu": "16", "memory": "192Gi", "huawei.com/Ascend910": "8"},
                         "limits": {"memory": "256Gi", "huawei.com/Ascend910": "8"}}}),
    (GPU, {"image": "example.org/team/megatron:cu124", "command": ["bash", "-c"],
           "args": ["torchrun pretrain_gpt.py --tensor-model-parallel-size 2"], "workingDir": "/opt/megatron",
           "env": {"DATA_PATH": "/data/corpus", "LOG_LEVEL": "info", "NCCL_IB_TIMEOUT": "22"},
           "resources": {"requests": {"cpu": "16", "memory": "128Gi", "nvidia.com/gpu": "4"},
                         "limits": {"memory": "256Gi", "nvidia.com/gpu": "4"}}}),
])
def test_the_training_container_per_accelerator(pool: Any, expected: dict[str, Any]) -> None:
    pod = _valid(attempt_pod(make_job(container=MEGATRON), pool, attempt=2, rank=1))
    trainer = _trainer(pod)
    job_env = {k: v for k, v in _env(pod).items() if k in expected["env"]}
    assert {**{k: trainer.get(k) for k in ("image", "command", "args", "workingDir", "resources")}, "env": job_env} \
        == expected


def test_the_pools_defaults_are_beneath_everything() -> None:
    job = make_job(container={"byAccelerator": {"gpu": {"command": ["python", "train.py"]}}})
    npu, gpu = _trainer(attempt_pod(job, NPU, 1, 0)), _trainer(attempt_pod(job, GPU, 1, 0))
    assert (npu["image"], npu["command"], "workingDir" in npu) == ("example.org/tandem-runtime:npu", ["tandem-train"],
                                                                    False)
    assert (gpu["image"], gpu["command"]) == ("example.org/tandem-runtime:gpu", ["python", "train.py"])


@pytest.mark.parametrize(("pool", "rank", "launch"), [
    (NPU, 1, {"NNODES": "2", "NODE_RANK": "1", "NPROC_PER_NODE": "8", "WORLD_SIZE": "16"}),
    (GPU, 0, {"NNODES": "2", "NODE_RANK": "0", "NPROC_PER_NODE": "4", "WORLD_SIZE": "8"}),
])
def test_the_launch_environment_describes_the_attempts_pool(pool: Any, rank: int, launch: dict[str, str]) -> None:
    env = _env(attempt_pod(make_job(), pool, attempt=3, rank=rank))
    addr = "llama-a3-0.llama.ml.svc"
    assert {k: env[k] for k in launch} == launch
    assert {k: env[f"PET_{k}"] for k in ("NNODES", "NODE_RANK", "NPROC_PER_NODE")} == {
        k: launch[k] for k in ("NNODES", "NODE_RANK", "NPROC_PER_NODE")}
    assert (env["MASTER_ADDR"], env["PET_MASTER_ADDR"], env["MASTER_PORT"], env["PET_MASTER_PORT"]) == (
        addr, addr, "29500", "29500")


TEMPLATE = {
    "metadata": {"labels": {"team": "llm", "tandem.dev/job": "spoofed"}, "annotations": {"cost-center": "42"}},
    "spec": {
        "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "corpus", "readOnly": True}},
                    {"name": "hf-cache", "emptyDir": {}}],
        "initContainers": [{"name": "stage", "image": "busybox", "command": ["sh", "-c", "cp -r /src /data"]}],
        "containers": [{"name": "metrics", "image": "example.org/dcgm-exporter:3"}],
        "serviceAccountName": "trainer",
        "imagePullSecrets": [{"name": "registry"}],
        "schedulerName": "volcano",
        "priorityClassName": "training-high",
        "securityContext": {"runAsUser": 0, "fsGroup": 0},
        "nodeSelector": {"topology.example.org/rack": "r1", "tandem.dev/pool": "elsewhere"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "llm", "effect": "NoSchedule"}],
    },
}


def test_the_pod_template_is_merged_into_the_contract() -> None:
    container = {"volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                 "securityContext": {"capabilities": {"add": ["IPC_LOCK"]}}, "shmSize": "16Gi"}
    pod = _valid(attempt_pod(make_job(container=container, podTemplate=TEMPLATE), NPU, attempt=1, rank=0))
    meta, spec, trainer = pod["metadata"], pod["spec"], _trainer(pod)
    assert meta["labels"]["team"] == "llm" and meta["labels"]["tandem.dev/job"] == "llama"  # the contract's win
    assert meta["annotations"] == {"cost-center": "42", "tandem.dev/in-place-restart": "true"}
    assert [v["name"] for v in spec["volumes"]] == ["checkpoint", "tandem-pod-info", "tandem-supervisor", "data",
                                                    "hf-cache", "dshm"]
    assert spec["volumes"][-1] == {"name": "dshm", "emptyDir": {"medium": "Memory", "sizeLimit": "16Gi"}}
    assert trainer["volumeMounts"] == [{"name": "checkpoint", "mountPath": "/checkpoints"},
                                       {"name": "tandem-pod-info", "mountPath": "/etc/tandem/pod", "readOnly": True},
                                       {"name": "tandem-supervisor", "mountPath": "/var/run/tandem"},
                                       {"name": "data", "mountPath": "/data", "readOnly": True},
                                       {"name": "dshm", "mountPath": "/dev/shm"}]
    assert [c["name"] for c in spec["initContainers"]] == ["stage"]
    assert [c["name"] for c in spec["containers"]] == ["trainer", "metrics"]
    assert (spec["serviceAccountName"], spec["automountServiceAccountToken"], spec["schedulerName"],
            spec["priorityClassName"], spec["imagePullSecrets"]) == (
        "trainer", True, "volcano", "training-high", [{"name": "registry"}])
    # A root vendor image: the job's user, and runAsNonRoot follows it; seccomp stays the operator's.
    assert spec["securityContext"] == {"runAsNonRoot": False, "runAsUser": 0, "runAsGroup": 1000, "fsGroup": 0,
                                       "seccompProfile": {"type": "RuntimeDefault"}}
    assert trainer["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"add": ["IPC_LOCK"]}}
    assert spec["nodeSelector"] == {"topology.example.org/rack": "r1", "tandem.dev/pool": "ascend-910b"}
    assert spec["tolerations"][-1] == TEMPLATE["spec"]["tolerations"][0]
    assert (spec["restartPolicy"], spec["hostname"], spec["subdomain"]) == ("Never", "llama-a1-0", "llama")


def test_without_a_template_the_pod_is_restricted_and_mounts_no_token() -> None:
    spec = _valid(attempt_pod(make_job(), NPU, 1, 0))["spec"]
    assert spec["automountServiceAccountToken"] is False and "serviceAccountName" not in spec
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert [v["name"] for v in spec["volumes"]] == ["checkpoint", "tandem-pod-info", "tandem-supervisor"]


# (field, value, a piece of the error): what would break the pod contract is refused, naming the field.
REFUSED = [
    ("podTemplate", {"spec": {"volumes": [{"name": "checkpoint", "emptyDir": {}}]}}, "checkpoint, dshm"),
    ("podTemplate", {"spec": {"volumes": [{"name": "tandem-pod-info", "emptyDir": {}}]}}, "tandem-pod-info"),
    ("podTemplate", {"spec": {"volumes": [{"emptyDir": {}}]}}, "every volume needs a name"),
    ("podTemplate", {"spec": {"containers": [{"name": "trainer", "image": "x"}]}}, "trainer is the training"),
    ("podTemplate", {"spec": {"initContainers": [{"image": "x"}]}}, "every container needs a name"),
    ("podTemplate", {"spec": {"restartPolicy": "Always"}}, "restartPolicy"),
    ("podTemplate", {"spec": {"hostname": "x"}}, "hostname"),
    ("podTemplate", {"spec": {"subdomain": "x"}}, "subdomain"),
    ("container", {"volumeMounts": [{"name": "dshm", "mountPath": "/x"}]}, "mounted by the operator"),
    ("container", {"volumeMounts": [{"name": "data", "mountPath": "/dev/shm"}]}, "mounted by the operator"),
    ("container", {"volumeMounts": [{"name": "data", "mountPath": "/etc/tandem/pod"}]}, "mounted by the operator"),
    ("container", {"volumeMounts": [{"name": "nowhere", "mountPath": "/x"}]}, "must each name a volume"),
    ("container", {"resources": {"limits": {"nvidia.com/gpu": 8}}}, "accelerator request is the pool's"),
    ("container", {"byAccelerator": {"npu": {"resources": {"requests": {"huawei.com/Ascend910": 8}}}}},
     "accelerator request is the pool's"),
    ("container", {"byAccelerator": {"gpu": {"env": [{"name": "WORLD_SIZE", "value": "1"}]}}},
     "env WORLD_SIZE is a pod-contract variable"),
    ("container", {"env": [{"name": "PET_NNODES", "value": "1"}]}, "env PET_NNODES is a pod-contract variable"),
    ("container", {"byAccelerator": {"tpu": {"image": "x"}}}, "tpu"),
    ("container", {"name": "mine"}, "name"),
]


@pytest.mark.parametrize(("field", "value", "names"), REFUSED, ids=[f"{f}-{n}" for f, _, n in REFUSED])
def test_fields_that_would_break_the_contract_are_refused(field: str, value: Any, names: str) -> None:
    spec = {field: value}
    if field == "container" and "volumeMounts" in value:
        spec["podTemplate"] = {"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}}
    with pytest.raises(pydantic.ValidationError) as error:
        make_job(**spec)
    assert names in str(error.value)


EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
POOLS = {p["metadata"]["name"]: AcceleratorPool.model_validate(p)
         for p in (yaml.safe_load((EXAMPLES / f).read_text()) for f in ("pool-ascend-910b.yaml",
                                                                         "pool-nvidia-h20.yaml"))}


@pytest.mark.parametrize("path", sorted((EXAMPLES / "byo").glob("*.yaml")), ids=lambda p: p.name)
def test_the_byo_examples_make_valid_pods_on_both_vendors(path: Path) -> None:
    body = yaml.safe_load(path.read_text())
    body["metadata"].update(namespace="ml", uid="uid-example")
    job = TrainingJob.model_validate(body)
    images = {}
    for pool in job.spec.pools:
        pod = _valid(attempt_pod(job, POOLS[pool], attempt=1, rank=job.spec.nodes - 1))
        images[POOLS[pool].spec.accelerator.value] = _trainer(pod)["image"]
        assert _env(pod)["PET_NPROC_PER_NODE"] == str(POOLS[pool].spec.devices_per_node)
    npu, gpu = job.spec.container.by_accelerator.npu, job.spec.container.by_accelerator.gpu
    assert images == {"npu": npu.image, "gpu": gpu.image} and npu.image != gpu.image


def test_the_readme_job_is_a_valid_job_that_switches_images_on_failover() -> None:
    readme = (EXAMPLES.parent / "README.md").read_text()
    section = readme.split("## Bring your own training code", 1)[1]
    body = yaml.safe_load(section.split("```yaml\n", 1)[1].split("```", 1)[0])
    body["metadata"].update(namespace="ml", uid="uid-readme")
    job = TrainingJob.model_validate(body)
    npu, gpu = (_trainer(_valid(attempt_pod(job, POOLS[pool], 2, 1))) for pool in job.spec.pools)
    assert (npu["image"], gpu["image"]) == ("registry.example.org/llm/mindspeed:cann8",
                                            "registry.example.org/llm/megatron:cuda")
    assert npu["command"] == gpu["command"] == ["bash", "-c"]
