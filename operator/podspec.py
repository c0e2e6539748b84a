"""What an attempt's objects look like: the headless Service and one pod per rank, carrying the
pod contract of docs/design.md#pod-contract (labels, environment, volume, security). Pure functions."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from tandem.in_place import ATTEMPT_LABEL as IN_PLACE_ATTEMPT_LABEL
from tandem.in_place import (
    IN_PLACE_ANNOTATION,
    POD_INFO_DIR,
    POD_LABELS_ENV,
    READY_FILE_ENV,
    SUPERVISOR_DIR,
    WAIT_ENV,
    attempt_token,
)
from tandem.operator.api import AcceleratorPool, EnvVar, Toleration, TrainingJob
from tandem.operator.api_podtemplate import CHECKPOINT_VOLUME, CONTAINER, POD_INFO_VOLUME, SUPERVISOR_VOLUME
from tandem.operator.podtemplate import (
    RUNTIME_COMMAND,
    TrainingContainer,
    apply_template,
    is_launcher,
    merged_env,
    training_container,
)

JOB_LABEL = "tandem.dev/job"
ATTEMPT_LABEL = IN_PLACE_ATTEMPT_LABEL  # the supervisor reads it too (tandem.in_place)
RANK_LABEL = "tandem.dev/rank"
POOL_LABEL = "tandem.dev/pool"
# The job's uid: a job deleted and created again under the same name never adopts the old one's pods.
JOB_UID_LABEL = "tandem.dev/job-uid"
MASTER_PORT = 29500
__all__ = ["CHECKPOINT_VOLUME", "CONTAINER", "RUNTIME_COMMAND"]  # the contract's names, as before
RUNTIME_UID = 1000  # the runtime images' non-root user
HOSTNAME_TOPOLOGY = "kubernetes.io/hostname"


def pod_name(job: str, attempt: int, rank: int) -> str:
    return f"{job}-a{attempt}-{rank}"


def master_addr(job: TrainingJob, attempt: int) -> str:
    """Rank 0's stable DNS name: its hostname under the job's headless Service. `attempt` is the one rank 0's
    pod was created for (after an in-place restart, the pods that stayed keep their names)."""
    return f"{pod_name(_name(job), attempt, 0)}.{_name(job)}.{_namespace(job)}.svc"


def _name(job: TrainingJob) -> str:
    return str(job.metadata["name"])


def _namespace(job: TrainingJob) -> str:
    return str(job.metadata.get("namespace", "default"))


def owner_reference(job: TrainingJob) -> dict[str, Any]:
    return {"apiVersion": job.api_version, "kind": job.kind, "name": _name(job), "uid": job.metadata["uid"],
            "controller": True, "blockOwnerDeletion": True}


def owned_by(obj: dict[str, Any], uid: str) -> bool:
    """Whether `obj` belongs to the job with this uid (its controller ownerReference says so)."""
    refs = obj.get("metadata", {}).get("ownerReferences") or []
    return any(ref.get("uid") == uid and ref.get("controller") for ref in refs)


def headless_service(job: TrainingJob) -> dict[str, Any]:
    """Gives every pod `<pod>.<job>.<namespace>.svc`, so MASTER_ADDR resolves before rank 0 is Ready."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": _name(job), "namespace": _namespace(job),
                     "labels": {JOB_LABEL: _name(job), JOB_UID_LABEL: str(job.metadata["uid"])},
                     "ownerReferences": [owner_reference(job)]},
        "spec": {"clusterIP": "None", "selector": {JOB_UID_LABEL: str(job.metadata["uid"])},
                 "publishNotReadyAddresses": True,
                 "ports": [{"name": "rendezvous", "port": MASTER_PORT, "targetPort": MASTER_PORT}]},
    }


def contract_env(job: TrainingJob, pool: AcceleratorPool, attempt: int, rank: int,
                 master_attempt: int | None = None) -> list[dict[str, str]]:
    """The environment the runtime reads, and nothing else (docs/design.md#pod-contract). `master_attempt`: the
    attempt rank 0's pod was created for, when rank 0 stayed through an in-place restart."""
    spec, checkpoint = job.spec, job.spec.checkpoint
    master = master_addr(job, master_attempt or attempt)
    values = {
        "TANDEM_JOB": _name(job),
        "TANDEM_NAMESPACE": _namespace(job),
        "TANDEM_ATTEMPT": str(attempt),
        "TANDEM_POOL": str(pool.metadata["name"]),
        "TANDEM_ACCELERATOR": pool.spec.accelerator.value,
        "TANDEM_BACKEND": pool.spec.effective_backend().value,
        "TANDEM_NODES": str(spec.nodes),
        "TANDEM_NODE_RANK": str(rank),
        "TANDEM_DEVICES_PER_NODE": str(pool.spec.devices_per_node),
        "MASTER_ADDR": master,
        "MASTER_PORT": str(MASTER_PORT),
        "TANDEM_CHECKPOINT_DIR": checkpoint.path,
        "TANDEM_CHECKPOINT_INTERVAL_STEPS": str(checkpoint.interval_steps),
        "TANDEM_CHECKPOINT_KEEP": str(checkpoint.keep),
        "TANDEM_TRAINING_CONFIG": json.dumps(spec.training, sort_keys=True, separators=(",", ":")),
        # Recorded in every checkpoint: a job applied again under the same name is told it resumes another's.
        "TANDEM_JOB_UID": str(job.metadata["uid"]),
        # Fences the checkpoint volume: an older attempt's ranks can neither commit nor delete once a newer
        # attempt started. Derived, so a restarted operator gives the same attempt the same token.
        "TANDEM_ATTEMPT_TOKEN": attempt_token(str(job.metadata["uid"]), attempt),
        # tandem-run's deadlines (the built-in trainer has its own watchdog, training.watchdogSeconds).
        "TANDEM_PROGRESS_TIMEOUT_SECONDS": str(spec.fault_policy.progress_timeout_seconds),
        "TANDEM_STARTUP_TIMEOUT_SECONDS": str(spec.fault_policy.startup_timeout_seconds),
        **launch_env(spec.nodes, rank, pool.spec.devices_per_node, master),
    }
    if pool.spec.chip_generation is not None:  # HCCL's timeout ranges and torch_npu's fused ops depend on it
        values["TANDEM_CHIP_GENERATION"] = pool.spec.chip_generation.value
    if restarts_in_place(job, pool):
        values |= {POD_LABELS_ENV: f"{POD_INFO_DIR}/labels", READY_FILE_ENV: f"{SUPERVISOR_DIR}/ready",
                   WAIT_ENV: str(spec.fault_policy.in_place_restart_deadline_seconds + IN_PLACE_WAIT_MARGIN_SECONDS)}
    return [{"name": key, "value": value} for key, value in values.items()]


def launch_env(nodes: int, node_rank: int, devices: int, addr: str) -> dict[str, str]:
    """What people's launchers read, describing the attempt's pool: torchrun's PET_* (a bare `torchrun train.py`
    joins the right gang) and the NNODES/NODE_RANK/... of Megatron- and MindSpeed-style shell launchers."""
    gang = {"NNODES": str(nodes), "NODE_RANK": str(node_rank), "NPROC_PER_NODE": str(devices),
            "MASTER_ADDR": addr, "MASTER_PORT": str(MASTER_PORT)}
    return {**{f"PET_{key}": value for key, value in gang.items()}, **gang, "WORLD_SIZE": str(nodes * devices)}


# A supervisor whose workers faulted waits this much longer than the operator's deadline: normally the operator
# decides (in place, or a full restart that deletes the pod); the supervisor's own exit covers an absent operator.
IN_PLACE_WAIT_MARGIN_SECONDS = 30


def restarts_in_place(job: TrainingJob, pool: AcceleratorPool) -> bool:
    """Whether the job's pods on `pool` take part in in-place restarts: the policy allows it and the command is
    a Tandem launcher, the supervisor that can restart its workers (a bare command has nobody to ask)."""
    command = training_container(job, pool).command
    return job.spec.fault_policy.in_place_restart and is_launcher(command)


def _in_place_parts(pod: dict[str, Any], container: dict[str, Any]) -> None:
    """The supervisor's two channels (tandem.in_place): the pod's labels as a file it polls, and the ready file an
    exec probe reads, so that its faults and first steps update the pod and wake the operator."""
    pod["metadata"]["annotations"] = {IN_PLACE_ANNOTATION: "true"}
    pod["spec"]["volumes"] += [
        {"name": POD_INFO_VOLUME, "downwardAPI": {"items": [{"path": "labels",
                                                            "fieldRef": {"fieldPath": "metadata.labels"}}]}},
        {"name": SUPERVISOR_VOLUME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}},
    ]
    container["volumeMounts"] += [{"name": POD_INFO_VOLUME, "mountPath": POD_INFO_DIR, "readOnly": True},
                                  {"name": SUPERVISOR_VOLUME, "mountPath": SUPERVISOR_DIR}]
    container["readinessProbe"] = {"exec": {"command": ["cat", f"{SUPERVISOR_DIR}/ready"]}, "periodSeconds": 1,
                                   "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 1}


def _as_dicts(items: Sequence[EnvVar | Toleration]) -> list[dict[str, Any]]:
    return [item.to_dict() for item in items]


def _resources(trainer: TrainingContainer, pool: AcceleratorPool) -> dict[str, Any]:
    requests, limits = dict(trainer.resources["requests"]), dict(trainer.resources["limits"])
    device = pool.spec.device_resource
    if device and pool.spec.accelerator.value != "cpu":
        # Extended resources cannot be overcommitted: request and limit must be equal.
        requests[device] = limits[device] = str(pool.spec.devices_per_node)
    return {key: value for key, value in (("requests", requests), ("limits", limits)) if value}


def _affinity(job: TrainingJob, attempt: int, excluded_nodes: list[str]) -> dict[str, Any]:
    """One pod of an attempt per node (so excluding a node moves a rank), and none on excluded nodes."""
    gang = {"matchLabels": {JOB_UID_LABEL: str(job.metadata["uid"]), ATTEMPT_LABEL: str(attempt)}}
    affinity: dict[str, Any] = {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [
        {"labelSelector": gang, "topologyKey": HOSTNAME_TOPOLOGY}]}}
    if excluded_nodes:
        term = {"matchFields": [{"key": "metadata.name", "operator": "NotIn", "values": sorted(excluded_nodes)}]}
        affinity["nodeAffinity"] = {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [term]}}
    return affinity


def image_for(job: TrainingJob, pool: AcceleratorPool) -> str | None:
    return training_container(job, pool).image


def attempt_pod(job: TrainingJob, pool: AcceleratorPool, attempt: int, rank: int,
                excluded_nodes: list[str] | None = None, master_attempt: int | None = None) -> dict[str, Any]:
    name, pool_name = pod_name(_name(job), attempt, rank), str(pool.metadata["name"])
    trainer = training_container(job, pool)
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": trainer.image,
        "command": trainer.command,
        "args": trainer.args,
        # The pool's env is the cluster admin's and may adjust the contract (the local demo's CPU path); the
        # job's may not (the API refuses contract names there, and training_container drops them all the same).
        "env": merged_env(contract_env(job, pool, attempt, rank, master_attempt), _as_dicts(pool.spec.env),
                          trainer.env),
        "resources": _resources(trainer, pool),
        "volumeMounts": [{"name": CHECKPOINT_VOLUME, "mountPath": job.spec.checkpoint.path}],
        "ports": [{"name": "rendezvous", "containerPort": MASTER_PORT}],
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}},
    }
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "hostname": name,
        "subdomain": _name(job),
        "nodeSelector": dict(pool.spec.node_selector),
        "tolerations": _as_dicts(pool.spec.tolerations),
        "containers": [container],
        "volumes": [{"name": CHECKPOINT_VOLUME, **job.spec.checkpoint.volume.to_dict()}],
        "securityContext": {"runAsNonRoot": True, "runAsUser": RUNTIME_UID, "runAsGroup": RUNTIME_UID,
                            "fsGroup": RUNTIME_UID, "seccompProfile": {"type": "RuntimeDefault"}},
        "enableServiceLinks": False,
    }
    if trainer.working_dir:
        container["workingDir"] = trainer.working_dir
    if pool.spec.host_network:
        spec["hostNetwork"] = True
        spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    spec["affinity"] = _affinity(job, attempt, excluded_nodes or [])
    pod: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": _namespace(job),
            "labels": {JOB_LABEL: _name(job), JOB_UID_LABEL: str(job.metadata["uid"]), ATTEMPT_LABEL: str(attempt),
                       RANK_LABEL: str(rank), POOL_LABEL: pool_name},
            "ownerReferences": [owner_reference(job)],
        },
        "spec": spec,
    }
    if restarts_in_place(job, pool):
        _in_place_parts(pod, container)
    return apply_template(pod, job)
