"""The pods and Service an attempt is made of: the pod contract of docs/design.md#pod-contract."""

from __future__ import annotations

import json
from typing import Any

import kubernetes_validate
import pytest
from builders import make_job, make_pool

from tandem.operator.podspec import attempt_pod, headless_service

CONTRACT = {"TANDEM_JOB", "TANDEM_NAMESPACE", "TANDEM_ATTEMPT", "TANDEM_POOL", "TANDEM_ACCELERATOR", "TANDEM_BACKEND",
            "TANDEM_NODES", "TANDEM_NODE_RANK", "TANDEM_DEVICES_PER_NODE", "MASTER_ADDR", "MASTER_PORT",
            "TANDEM_CHECKPOINT_DIR", "TANDEM_CHECKPOINT_INTERVAL_STEPS", "TANDEM_CHECKPOINT_KEEP",
            "TANDEM_TRAINING_CONFIG", "TANDEM_JOB_UID", "TANDEM_ATTEMPT_TOKEN", "TANDEM_PROGRESS_TIMEOUT_SECONDS",
            "TANDEM_STARTUP_TIMEOUT_SECONDS", "TANDEM_CHIP_GENERATION", "TANDEM_POD_LABELS", "TANDEM_READY_FILE",
            "TANDEM_IN_PLACE_WAIT_SECONDS",
            "PET_NNODES", "PET_NODE_RANK", "PET_NPROC_PER_NODE", "PET_MASTER_ADDR", "PET_MASTER_PORT",
            "NNODES", "NODE_RANK", "NPROC_PER_NODE", "WORLD_SIZE"}


def test_the_api_refuses_exactly_the_variables_the_pods_get() -> None:
    from tandem.operator.api import CONTRACT_ENV

    assert set(CONTRACT_ENV) == CONTRACT


def _env(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}


def test_pod_carries_names_labels_owner_and_the_contract() -> None:
    job = make_job(training={"model": "test", "steps": 10})
    pod = attempt_pod(job, make_pool(env=[{"name": "HCCL_CONNECT_TIMEOUT", "value": "600"}]), attempt=3, rank=1)
    meta = pod["metadata"]
    assert meta["name"] == "llama-a3-1"
    assert meta["labels"] == {"tandem.dev/job": "llama", "tandem.dev/job-uid": "uid-job", "tandem.dev/attempt": "3",
                              "tandem.dev/rank": "1", "tandem.dev/pool": "ascend-910b"}
    assert meta["ownerReferences"][0]["uid"] == "uid-job" and meta["ownerReferences"][0]["controller"] is True
    env = _env(pod)
    assert set(env) >= CONTRACT - {"TANDEM_CHIP_GENERATION"}  # a pool that names no chip generation
    assert "TANDEM_CHIP_GENERATION" not in env
    pool_env = [{"name": "HCCL_CONNECT_TIMEOUT", "value": "600"}]
    named = _env(attempt_pod(job, make_pool(env=pool_env, chipGeneration="ascend910b"), attempt=3, rank=1))
    assert named == {**env, "TANDEM_CHIP_GENERATION": "ascend910b"}
    assert env["MASTER_ADDR"] == "llama-a3-0.llama.ml.svc" and env["MASTER_PORT"] == "29500"
    assert (env["TANDEM_ACCELERATOR"], env["TANDEM_BACKEND"], env["TANDEM_DEVICES_PER_NODE"]) == ("npu", "hccl", "8")
    assert (env["TANDEM_NODES"], env["TANDEM_NODE_RANK"], env["TANDEM_ATTEMPT"]) == ("2", "1", "3")
    assert env["TANDEM_JOB_UID"] == "uid-job"
    # One token per attempt, the same from any operator replica, another for the next attempt.
    assert env["TANDEM_ATTEMPT_TOKEN"] == _env(attempt_pod(job, make_pool(), attempt=3, rank=0))["TANDEM_ATTEMPT_TOKEN"]
    assert env["TANDEM_ATTEMPT_TOKEN"] != _env(attempt_pod(job, make_pool(), attempt=4, rank=1))["TANDEM_ATTEMPT_TOKEN"]
    assert env["TANDEM_CHECKPOINT_DIR"] == "/checkpoints" and env["TANDEM_CHECKPOINT_INTERVAL_STEPS"] == "50"
    assert json.loads(env["TANDEM_TRAINING_CONFIG"]) == {"model": "test", "steps": 10}
    assert env["HCCL_CONNECT_TIMEOUT"] == "600"
    spec = pod["spec"]
    assert (spec["hostname"], spec["subdomain"]) == ("llama-a3-1", "llama")
    assert spec["restartPolicy"] == "Never"
    assert spec["containers"][0]["terminationMessagePolicy"] == "FallbackToLogsOnError"


def test_pod_lands_on_the_pool_with_its_accelerators() -> None:
    pool = make_pool(tolerations=[{"key": "huawei.com/Ascend910", "operator": "Exists", "effect": "NoSchedule"}])
    pod = attempt_pod(make_job(container={"resources": {"requests": {"cpu": 16, "memory": "128Gi"}}}), pool, 1, 0)
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    assert spec["nodeSelector"] == {"tandem.dev/pool": "ascend-910b"}
    assert spec["tolerations"] == [{"key": "huawei.com/Ascend910", "operator": "Exists", "effect": "NoSchedule"}]
    assert container["image"] == "example.org/tandem-runtime:npu"
    assert container["command"] == ["tandem-train"]
    assert container["resources"] == {"requests": {"cpu": "16", "memory": "128Gi", "huawei.com/Ascend910": "8"},
                                      "limits": {"huawei.com/Ascend910": "8"}}
    claim = {"claimName": "ckpt", "readOnly": False}
    assert spec["volumes"] == [{"name": "checkpoint", "persistentVolumeClaim": claim}, *IN_PLACE_VOLUMES]
    assert container["volumeMounts"] == [{"name": "checkpoint", "mountPath": "/checkpoints"}, *IN_PLACE_MOUNTS]


# A Tandem launcher with faultPolicy.inPlaceRestart (the default): the supervisor's two channels (tandem.in_place).
IN_PLACE_VOLUMES = [
    {"name": "tandem-pod-info", "downwardAPI": {"items": [{"path": "labels",
                                                           "fieldRef": {"fieldPath": "metadata.labels"}}]}},
    {"name": "tandem-supervisor", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
]
IN_PLACE_MOUNTS = [{"name": "tandem-pod-info", "mountPath": "/etc/tandem/pod", "readOnly": True},
                   {"name": "tandem-supervisor", "mountPath": "/var/run/tandem"}]
IN_PLACE_PROBE = {"exec": {"command": ["cat", "/var/run/tandem/ready"]}, "periodSeconds": 1, "timeoutSeconds": 1,
                  "successThreshold": 1, "failureThreshold": 1}


@pytest.mark.parametrize(("container", "policy", "takes_part"), [
    ({}, {}, True),  # tandem-train
    ({"command": ["/usr/local/bin/tandem-run", "--", "torchrun", "train.py"]}, {}, True),
    ({"command": ["torchrun", "train.py"]}, {}, False),  # nobody in the pod to ask
    ({}, {"inPlaceRestart": False}, False),
])
def test_pods_of_a_launcher_take_part_in_in_place_restarts(container: dict[str, Any], policy: dict[str, Any],
                                                           takes_part: bool) -> None:
    job = make_job(container=container, faultPolicy=policy)
    pod = attempt_pod(job, make_pool(), 2, 1)
    trainer, env = pod["spec"]["containers"][0], _env(pod)
    parts = (pod["metadata"].get("annotations"), pod["spec"]["volumes"][1:], trainer["volumeMounts"][1:],
             trainer.get("readinessProbe"), {k: env.get(k) for k in ("TANDEM_POD_LABELS", "TANDEM_READY_FILE",
                                                                     "TANDEM_IN_PLACE_WAIT_SECONDS")})
    assert parts == ((({"tandem.dev/in-place-restart": "true"}, IN_PLACE_VOLUMES, IN_PLACE_MOUNTS, IN_PLACE_PROBE,
                       {"TANDEM_POD_LABELS": "/etc/tandem/pod/labels", "TANDEM_READY_FILE": "/var/run/tandem/ready",
                        "TANDEM_IN_PLACE_WAIT_SECONDS": "330"}))
                     if takes_part else (None, [], [], None, dict.fromkeys(("TANDEM_POD_LABELS", "TANDEM_READY_FILE",
                                                                            "TANDEM_IN_PLACE_WAIT_SECONDS"))))


def test_a_replaced_rank_names_the_rank_zero_that_stayed() -> None:
    """After an in-place restart that replaced rank 1, rank 0 still runs in its attempt-2 pod: MASTER_ADDR."""
    env = _env(attempt_pod(make_job(), make_pool(), 3, 1, master_attempt=2))
    assert (env["TANDEM_ATTEMPT"], env["MASTER_ADDR"], env["PET_MASTER_ADDR"]) == (
        "3", "llama-a2-0.llama.ml.svc", "llama-a2-0.llama.ml.svc")


def test_the_job_container_overrides_the_pool() -> None:
    job = make_job(container={"image": "mine:1", "command": ["python", "train.py"], "args": ["--x"],
                              "env": [{"name": "HCCL_BUFFSIZE", "value": "400"}, {"name": "EXTRA", "value": "1"}]})
    pool = make_pool("h20", "gpu", devices=4, env=[{"name": "HCCL_BUFFSIZE", "value": "200"},
                                                    {"name": "TANDEM_ACCELERATOR", "value": "cpu"}])
    pod = attempt_pod(job, pool, 1, 0)
    container = pod["spec"]["containers"][0]
    assert (container["image"], container["command"], container["args"]) == ("mine:1", ["python", "train.py"], ["--x"])
    assert _env(pod)["HCCL_BUFFSIZE"] == "400" and _env(pod)["EXTRA"] == "1"
    # The pool's env is the cluster admin's: it may point the runtime elsewhere (the local demo does).
    assert _env(pod)["TANDEM_ACCELERATOR"] == "cpu"
    assert _env(pod)["TANDEM_BACKEND"] == "nccl" and container["resources"]["limits"] == {"nvidia.com/gpu": "4"}


@pytest.mark.parametrize("variable", sorted(CONTRACT))
def test_a_job_cannot_override_the_pod_contract(variable: str) -> None:
    with pytest.raises(ValueError, match=f"env {variable} is a pod-contract variable"):
        make_job(container={"env": [{"name": variable, "value": "other-job-a1-0.other.ml.svc"}]})


def test_pods_run_as_non_root_without_privileges() -> None:
    pod = attempt_pod(make_job(), make_pool(), 1, 0)
    assert pod["spec"]["securityContext"]["runAsNonRoot"] is True
    context = pod["spec"]["containers"][0]["securityContext"]
    assert context["allowPrivilegeEscalation"] is False and context["capabilities"] == {"drop": ["ALL"]}


def test_excluded_nodes_become_node_anti_affinity() -> None:
    pod = attempt_pod(make_job(), make_pool(), 2, 0, excluded_nodes=["node-b", "node-a"])
    terms = pod["spec"]["affinity"]["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
    assert terms["nodeSelectorTerms"] == [{"matchFields": [
        {"key": "metadata.name", "operator": "NotIn", "values": ["node-a", "node-b"]}]}]


def test_host_network_pools_keep_cluster_dns() -> None:
    pod = attempt_pod(make_job(), make_pool(hostNetwork=True), 1, 0)
    assert pod["spec"]["hostNetwork"] is True and pod["spec"]["dnsPolicy"] == "ClusterFirstWithHostNet"


def test_cpu_pool_requests_no_device() -> None:
    pod = attempt_pod(make_job(), make_pool("cpu", "cpu", devices=2), 1, 0)
    assert "resources" not in pod["spec"]["containers"][0] or not pod["spec"]["containers"][0]["resources"]
    assert _env(pod)["TANDEM_BACKEND"] == "gloo"


def test_headless_service_names_rank_zero() -> None:
    service = headless_service(make_job())
    assert service["spec"]["clusterIP"] == "None" and service["spec"]["publishNotReadyAddresses"] is True
    # By uid: a job re-created under the same name never routes to the old job's pods.
    assert service["spec"]["selector"] == {"tandem.dev/job-uid": "uid-job"}
    assert service["metadata"]["labels"] == {"tandem.dev/job": "llama", "tandem.dev/job-uid": "uid-job"}


def test_one_pod_of_an_attempt_per_node() -> None:
    """Ranks never pack onto one node: excluding a node must move a rank, not all of them."""
    pod = attempt_pod(make_job(), make_pool(), attempt=2, rank=0)
    assert pod["spec"]["affinity"] == {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
        "labelSelector": {"matchLabels": {"tandem.dev/job-uid": "uid-job", "tandem.dev/attempt": "2"}},
        "topologyKey": "kubernetes.io/hostname"}]}}


@pytest.mark.parametrize("manifest", [
    attempt_pod(make_job(), make_pool(), 1, 0),
    attempt_pod(make_job(nodes=4), make_pool("h20", "gpu", hostNetwork=True), 7, 3, excluded_nodes=["n1"]),
    attempt_pod(make_job(container={"env": [{"name": "X", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}]}),
                make_pool("cpu", "cpu", devices=2), 1, 0),
    headless_service(make_job()),
], ids=["npu-pod", "gpu-pod", "cpu-pod", "service"])
def test_every_object_validates_against_the_kubernetes_schema(manifest: dict[str, Any]) -> None:
    kubernetes_validate.validate(manifest, "1.32", strict=True)


def test_the_longest_pool_name_the_api_takes_still_makes_valid_pod_labels() -> None:
    """A pool's name is the value of its pods' tandem.dev/pool label: the API takes names only as long as a label
    value may be (63 characters), so every label of every pod stays one Kubernetes accepts."""
    from tandem.localcluster.names import is_label_value
    from tandem.operator.api import MAX_POOL_NAME

    name = f"{'a' * 30}.{'b' * (MAX_POOL_NAME - 31)}"
    pod = attempt_pod(make_job(pools=[name]), make_pool(name), 1, 0)
    assert pod["metadata"]["labels"]["tandem.dev/pool"] == name
    assert {k: is_label_value(v) for k, v in pod["metadata"]["labels"].items()} == {
        k: [] for k in pod["metadata"]["labels"]}
    assert is_label_value(name + "c")  # one character more is refused: the API must not take that name
