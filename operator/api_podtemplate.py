"""What a TrainingJob says about its pods beyond the pod contract (docs/design.md#bring-your-own-training-code):
the training container's settings per accelerator (`spec.container.byAccelerator`), its extra mounts, security
context and /dev/shm, and a pod template for everything else (`spec.podTemplate`). Fields that would break the
contract (the training container's name, the contract's environment, the checkpoint volume, restartPolicy,
hostname/subdomain, the accelerator request) are refused by the schema or by a CEL rule that names the field;
each rule exists twice from one CelRule, as in tandem.operator.api."""

from __future__ import annotations

from typing import Any

from pydantic import Field, StrictBool, field_validator, model_validator

from tandem.in_place import POD_INFO_DIR, SUPERVISOR_DIR
from tandem.operator.api_types import (
    _NOT_NULL,
    CelRule,
    JobEnvVar,
    Quantity,
    Toleration,
    _validations,
    _Wire,
)

CONTAINER = "trainer"
CHECKPOINT_VOLUME = "checkpoint"
SHM_VOLUME = "dshm"
SHM_PATH = "/dev/shm"
# In-place restart (tandem.in_place): the pod's labels as files, and the supervisor's ready file.
POD_INFO_VOLUME, SUPERVISOR_VOLUME = "tandem-pod-info", "tandem-supervisor"
RESERVED_VOLUMES = (CHECKPOINT_VOLUME, SHM_VOLUME, POD_INFO_VOLUME, SUPERVISOR_VOLUME)
RESERVED_PATHS = (SHM_PATH, POD_INFO_DIR, SUPERVISOR_DIR)
# Bounds that let the API server cost the CEL rules over these lists (an unbounded list makes a rule too costly).
MAX_VOLUMES = 64
MAX_SIDECARS = 16
MAX_RESOURCES = 32  # resource names in requests or limits
# The accelerator request is the pool's (devicesPerNode of its deviceResource): a job naming one would fight it.
ACCELERATOR_RESOURCE_PREFIXES = ("nvidia.com/", "huawei.com/", "amd.com/")

_RESERVED = "[" + ", ".join(f"'{name}'" for name in RESERVED_VOLUMES) + "]"
_RESERVED_PATHS = "[" + ", ".join(f"'{path}'" for path in RESERVED_PATHS) + "]"
RESOURCES_NO_ACCELERATOR_RULE = CelRule(
    rule="self.all(k, " + " && ".join(f"!k.startsWith('{p}')" for p in ACCELERATOR_RESOURCE_PREFIXES) + ")",
    message="the accelerator request is the pool's (its deviceResource x devicesPerNode); a job cannot set it",
)
VOLUMES_RULE = CelRule(
    rule=f"self.all(v, has(v.name) && !(v.name in {_RESERVED}))",
    message="every volume needs a name, and checkpoint, dshm, tandem-pod-info and tandem-supervisor are the"
    " operator's (the checkpoint volume, /dev/shm, and in-place restart's)",
)
SIDECARS_RULE = CelRule(
    rule=f"self.all(c, has(c.name) && c.name != '{CONTAINER}')",
    message=f"every container needs a name, and {CONTAINER} is the training container's (spec.container)",
)
MOUNTS_RULE = CelRule(
    rule=f"self.all(m, !(m.name in {_RESERVED}) && !(m.mountPath in {_RESERVED_PATHS}))",
    message=f"checkpoint, dshm, tandem-pod-info and tandem-supervisor are mounted by the operator (at"
    f" checkpoint.path, {', '.join(RESERVED_PATHS)})",
)


class ResourceRequirements(_Wire):
    """CPU and memory for each training container; the accelerator request is added per pool."""

    requests: dict[str, Quantity] = Field(
        default={}, max_length=MAX_RESOURCES, description="Minimum resources, e.g. cpu: 8, memory: 64Gi.",
        json_schema_extra=_validations(RESOURCES_NO_ACCELERATOR_RULE),
    )
    limits: dict[str, Quantity] = Field(
        default={}, max_length=MAX_RESOURCES, description="Maximum resources, e.g. memory: 128Gi.",
        json_schema_extra=_validations(RESOURCES_NO_ACCELERATOR_RULE),
    )

    @field_validator("requests", "limits")
    @classmethod
    def _no_accelerator(cls, value: dict[str, Quantity]) -> dict[str, Quantity]:
        if any(key.startswith(ACCELERATOR_RESOURCE_PREFIXES) for key in value):
            raise ValueError(RESOURCES_NO_ACCELERATOR_RULE.message)
        return value


class VolumeMount(_Wire):
    """A core/v1 VolumeMount of the training container: one of podTemplate.spec.volumes."""

    name: str = Field(min_length=1, description="The volume's name in podTemplate.spec.volumes.")
    mount_path: str = Field(min_length=1, pattern=r"^/", description="Absolute path in the container.")
    sub_path: str | None = Field(None, description="A path inside the volume to mount instead of its root.")
    read_only: StrictBool = Field(False, description="Mount read-only.")


class ContainerSettings(_Wire):
    """The training container's settings that may differ between accelerators (spec.container.byAccelerator)."""

    image: str | None = Field(None, min_length=1, description="Container image; absent: the shared one, else the"
                              " pool's image.")
    command: list[str] | None = Field(None, description="Entrypoint; absent: the shared one, else the runtime"
                                      " launcher `tandem-train`.")
    args: list[str] | None = Field(None, description="Arguments to the entrypoint; absent: the shared ones.")
    env: list[JobEnvVar] = Field(
        default=[], description="Extra environment, merged by name over the shared env (which is merged over the"
        " pool's); the pod contract's own variables are refused.",
    )
    resources: ResourceRequirements | None = Field(
        None, description="CPU and memory, merged by key over the shared ones; the accelerator request is the"
        " pool's.",
    )
    working_dir: str | None = Field(None, min_length=1, description="Working directory; absent: the shared one,"
                                    " else the image's.")


class ByAccelerator(_Wire):
    """Container settings per accelerator kind, merged over spec.container for pods on pools of that kind."""

    npu: ContainerSettings | None = Field(None, description="For pools with accelerator npu (Ascend).",
                                          json_schema_extra=_NOT_NULL)
    gpu: ContainerSettings | None = Field(None, description="For pools with accelerator gpu (NVIDIA).",
                                          json_schema_extra=_NOT_NULL)
    cpu: ContainerSettings | None = Field(None, description="For pools with accelerator cpu.",
                                          json_schema_extra=_NOT_NULL)


class PodTemplateMetadata(_Wire):
    """Labels and annotations added to every pod (cost, monitoring); the contract's own labels win."""

    labels: dict[str, str] = Field(default={}, description="Labels added to every pod.")
    annotations: dict[str, str] = Field(default={}, description="Annotations added to every pod.")


class LocalObjectReference(_Wire):
    """A reference to an object in the job's namespace (an image pull Secret)."""

    name: str = Field(min_length=1, description="The object's name.")


def _named(items: list[dict[str, Any]], rule: CelRule, reserved: tuple[str, ...]) -> list[dict[str, Any]]:
    for item in items:
        name = item.get("name") if isinstance(item, dict) else None
        if not isinstance(name, str) or not name or name in reserved:
            raise ValueError(rule.message)
    return items


class PodTemplateSpec(_Wire):
    """What every pod of the job gets beyond the contract: merged in by the operator, never replacing the
    contract (restartPolicy, hostname, subdomain, the training container and the checkpoint volume are the
    operator's and cannot be named here)."""

    volumes: list[dict[str, Any]] = Field(
        default=[], max_length=MAX_VOLUMES, description="core/v1 Volumes (datasets, caches, config): mount them with"
        " spec.container.volumeMounts. The names checkpoint and dshm are the operator's.",
        json_schema_extra={**_validations(VOLUMES_RULE), "items": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}},
    )
    init_containers: list[dict[str, Any]] = Field(
        default=[], max_length=MAX_SIDECARS,
        description="core/v1 Containers run before the training container (data staging).",
        json_schema_extra={**_validations(SIDECARS_RULE), "items": {"type": "object",
                                                                   "x-kubernetes-preserve-unknown-fields": True}},
    )
    containers: list[dict[str, Any]] = Field(
        default=[], max_length=MAX_SIDECARS,
        description="core/v1 Containers run beside the training container (sidecars); the name trainer is the"
        " training container's.",
        json_schema_extra={**_validations(SIDECARS_RULE), "items": {"type": "object",
                                                                   "x-kubernetes-preserve-unknown-fields": True}},
    )
    service_account_name: str | None = Field(
        None, min_length=1, description="ServiceAccount of the pods; set, its token is mounted (absent: none is)."
    )
    image_pull_secrets: list[LocalObjectReference] = Field(default=[], max_length=MAX_SIDECARS,
                                                           description="Secrets to pull the images.")
    scheduler_name: str | None = Field(None, min_length=1, description="Scheduler of the pods, e.g. volcano.")
    priority_class_name: str | None = Field(None, min_length=1, description="PriorityClass of the pods.")
    security_context: dict[str, Any] = Field(
        default={}, description="core/v1 PodSecurityContext, merged by key over the operator's restricted default"
        " (runAsNonRoot, runAsUser 1000, fsGroup 1000, seccomp RuntimeDefault); the namespace's Pod Security"
        " Admission decides what it may ask for.",
    )
    node_selector: dict[str, str] = Field(
        default={}, description="Node labels added to the pool's nodeSelector (the pool's win on the same key)."
    )
    tolerations: list[Toleration] = Field(default=[], max_length=MAX_VOLUMES,
                                          description="Tolerations added to the pool's.")

    @field_validator("volumes")
    @classmethod
    def _volume_names(cls, volumes: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _named(volumes, VOLUMES_RULE, RESERVED_VOLUMES)

    @field_validator("init_containers", "containers")
    @classmethod
    def _container_names(cls, containers: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return _named(containers, SIDECARS_RULE, (CONTAINER,))


class PodTemplate(_Wire):
    """Everything real training pods need beyond the pod contract, merged into every pod."""

    metadata: PodTemplateMetadata = Field(default_factory=PodTemplateMetadata,
                                          description="Labels and annotations for every pod.")
    spec: PodTemplateSpec = Field(default_factory=PodTemplateSpec, description="Pod settings for every pod.")


class Container(_Wire):
    """The training container: shared settings for every pool, and per accelerator in byAccelerator."""

    image: str | None = Field(None, min_length=1, description="Container image; absent: the pool's image.")
    command: list[str] | None = Field(None, description="Entrypoint; absent: the runtime launcher `tandem-train`.")
    args: list[str] = Field(default=[], description="Arguments to the entrypoint.")
    env: list[JobEnvVar] = Field(
        default=[], description="Extra environment, after the pool's; the pod contract's own variables are refused."
    )
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements,
        description="CPU and memory requests and limits; the accelerator request is added per pool.",
        json_schema_extra={"default": {}},
    )
    working_dir: str | None = Field(None, min_length=1, description="Working directory; absent: the image's.")
    volume_mounts: list[VolumeMount] = Field(
        default=[], max_length=MAX_VOLUMES,
        description="Mounts of podTemplate.spec.volumes into the training container.",
        json_schema_extra=_validations(MOUNTS_RULE),
    )
    security_context: dict[str, Any] = Field(
        default={}, description="core/v1 SecurityContext of the training container, merged by key over the"
        " operator's restricted default (no privilege escalation, all capabilities dropped); e.g."
        " capabilities.add [IPC_LOCK] for RDMA.",
    )
    shm_size: Quantity | None = Field(
        None, description="Size of a memory-backed /dev/shm (DataLoader workers and NCCL need more than the"
        " runtime's 64Mi), e.g. 16Gi.",
    )
    by_accelerator: ByAccelerator = Field(
        default_factory=ByAccelerator,
        description="Settings per accelerator kind (npu, gpu, cpu), merged over these for pods on pools of that"
        " kind: image, command, args, workingDir replace; env merges by name; resources merge by key.",
        json_schema_extra={"default": {}},
    )

    @field_validator("volume_mounts")
    @classmethod
    def _mounts(cls, mounts: list[VolumeMount]) -> list[VolumeMount]:
        if any(m.name in RESERVED_VOLUMES or m.mount_path in RESERVED_PATHS for m in mounts):
            raise ValueError(MOUNTS_RULE.message)
        return mounts

    @model_validator(mode="after")
    def _shm_is_a_quantity(self) -> Container:
        if isinstance(self.shm_size, str) and not self.shm_size.strip():
            raise ValueError("shmSize must be a quantity such as 16Gi")
        return self
