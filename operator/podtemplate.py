"""A job's own settings merged into its pods (docs/design.md#bring-your-own-training-code). Pure functions.

The training container, from the bottom up: the pool's image and env; `spec.container`; then
`spec.container.byAccelerator.<the pool's accelerator>`, whose image, command, args and workingDir replace, whose env
merges by name and whose resources merge by key. The contract's environment is always the operator's. Everything
else comes from `spec.podTemplate`, added to what the pod contract sets and never replacing it: labels and
annotations (the contract's labels win), volumes, init containers, sidecars, service account, image pull secrets,
scheduler, priority class, security context (merged by key over the restricted default), nodeSelector (the
pool's keys win) and tolerations (after the pool's)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from tandem.operator.api import (
    CONTRACT_ENV,
    AcceleratorPool,
    ContainerSettings,
    ResourceRequirements,
    TrainingJob,
)
from tandem.operator.api_podtemplate import CONTAINER, SHM_PATH, SHM_VOLUME

RUNTIME_COMMAND = ["tandem-train"]
# Tandem's launchers: their exit codes 3-7 name a fault class (tandem.faults.taxonomy.EXIT_CODES).
LAUNCHERS = ("tandem-train", "tandem-run")


@dataclass(frozen=True)
class TrainingContainer:
    """What the training container runs on one pool."""

    image: str | None
    command: list[str]
    args: list[str]
    env: list[dict[str, Any]]  # the job's layers only (shared, then byAccelerator), merged; no contract names
    resources: dict[str, dict[str, str]]  # requests and limits, without the accelerator
    working_dir: str | None


def merged_env(*layers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Later layers win by name; the order of first appearance is kept (readable `kubectl describe`)."""
    merged: dict[str, dict[str, Any]] = {}
    for layer in layers:
        for var in layer:
            merged[var["name"]] = var
    return list(merged.values())


def _resources(*layers: ResourceRequirements | None) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {"requests": {}, "limits": {}}
    for layer in layers:
        if layer is not None:
            out["requests"].update({k: str(v) for k, v in layer.requests.items()})
            out["limits"].update({k: str(v) for k, v in layer.limits.items()})
    return out


def _override(job: TrainingJob, pool: AcceleratorPool) -> ContainerSettings:
    return getattr(job.spec.container.by_accelerator, pool.spec.accelerator.value) or ContainerSettings()


def training_container(job: TrainingJob, pool: AcceleratorPool) -> TrainingContainer:
    shared, over = job.spec.container, _override(job, pool)
    env = [v.to_dict() for v in [*shared.env, *over.env] if v.name not in CONTRACT_ENV]
    return TrainingContainer(
        image=over.image or shared.image or pool.spec.image,
        command=list(over.command or shared.command or RUNTIME_COMMAND),
        args=list(over.args if over.args is not None else shared.args),
        env=merged_env(env),
        resources=_resources(shared.resources, over.resources),
        working_dir=over.working_dir or shared.working_dir,
    )


def is_launcher(command: Sequence[str]) -> bool:
    """Does `command` start one of Tandem's launchers (by its program's name, wherever it is installed)?"""
    return bool(command) and PurePosixPath(command[0]).name in LAUNCHERS


def custom_command(job: TrainingJob) -> bool:
    """Does the job run a command of its own, not one of Tandem's launchers, on any pool (so its exit codes are not
    the launcher's)?"""
    by = job.spec.container.by_accelerator
    commands = [job.spec.container.command, *(o.command for o in (by.npu, by.gpu, by.cpu) if o is not None)]
    return any(c and not is_launcher(c) for c in commands)


def _merged(defaults: dict[str, Any], asked: dict[str, Any]) -> dict[str, Any]:
    """A security context: the job's keys over the operator's defaults (one level: capabilities replace)."""
    return {**defaults, **asked}


def _pod_security(defaults: dict[str, Any], asked: dict[str, Any]) -> dict[str, Any]:
    """The pod's security context: the job's keys over the restricted default. A job that names a user and not
    runAsNonRoot gets runAsNonRoot only for a non-root user (a vendor image that must run as root asks for 0)."""
    merged = _merged(defaults, asked)
    if "runAsUser" in asked and "runAsNonRoot" not in asked:
        merged["runAsNonRoot"] = asked["runAsUser"] != 0
    return merged


def apply_template(pod: dict[str, Any], job: TrainingJob) -> dict[str, Any]:
    """The attempt's pod with the job's template merged in (the pod is the contract's: see podspec)."""
    template, container_spec = job.spec.pod_template, job.spec.container
    meta, spec = pod["metadata"], pod["spec"]
    meta["labels"] = {**template.metadata.labels, **meta["labels"]}
    if template.metadata.annotations:
        meta["annotations"] = {**template.metadata.annotations, **meta.get("annotations", {})}
    trainer = next(c for c in spec["containers"] if c["name"] == CONTAINER)
    trainer["volumeMounts"] += [m.to_dict() for m in container_spec.volume_mounts]
    trainer["securityContext"] = _merged(trainer["securityContext"], container_spec.security_context)
    spec["volumes"] += list(template.spec.volumes)
    if container_spec.shm_size is not None:
        spec["volumes"].append({"name": SHM_VOLUME, "emptyDir": {"medium": "Memory",
                                                                "sizeLimit": str(container_spec.shm_size)}})
        trainer["volumeMounts"].append({"name": SHM_VOLUME, "mountPath": SHM_PATH})
    if template.spec.init_containers:
        spec["initContainers"] = list(template.spec.init_containers)
    spec["containers"] += list(template.spec.containers)
    # No API token in a training pod unless the job names the service account it needs.
    spec["automountServiceAccountToken"] = template.spec.service_account_name is not None
    for key, value in (("serviceAccountName", template.spec.service_account_name),
                       ("schedulerName", template.spec.scheduler_name),
                       ("priorityClassName", template.spec.priority_class_name)):
        if value is not None:
            spec[key] = value
    if template.spec.image_pull_secrets:
        spec["imagePullSecrets"] = [s.to_dict() for s in template.spec.image_pull_secrets]
    spec["securityContext"] = _pod_security(spec["securityContext"], template.spec.security_context)
    spec["nodeSelector"] = {**template.spec.node_selector, **spec["nodeSelector"]}
    spec["tolerations"] = spec["tolerations"] + [t.to_dict() for t in template.spec.tolerations]
    return pod
