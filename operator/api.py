"""The Tandem API (group `tandem.dev`, version `v1alpha1`) as pydantic models.

These models are the single source of truth: `tandem.operator.crdgen` turns them into the
CustomResourceDefinitions in `crds/`, and the operator parses every object it reads with them.
Python attributes are snake_case, the wire (Kubernetes) names are camelCase aliases; both are
accepted on input. Every cross-field rule exists twice from one `CelRule`: as an
`x-kubernetes-validations` entry that the API server evaluates, and as a pydantic validator
raising the same message, so a manifest is refused in the same way on both sides.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationInfo,
    field_validator,
    model_validator,
)

from tandem.operator.api_podtemplate import (  # noqa: F401  (re-exported: the API in one import)
    ByAccelerator,
    Container,
    ContainerSettings,
    PodTemplate,
    PodTemplateSpec,
    ResourceRequirements,
    VolumeMount,
)
from tandem.operator.api_status import (  # noqa: F401  (re-exported: the API in one import)
    AcceleratorPoolStatus,
    Exclusion,
    Fault,
    InPlaceRestart,
    LastCheckpoint,
    PendingEvent,
    TrainingJobStatus,
)
from tandem.operator.api_types import (  # noqa: F401  (re-exported: the API in one import)
    _CONDITIONS_LIST_MAP,
    _EMPTY_OBJECT_DEFAULT,
    _NOT_NULL,
    API_VERSION,
    BACKOFF_RULE,
    CONTRACT_ENV,
    CONTRACT_ENV_RULE,
    DAY_SECONDS,
    DEFAULT_BACKEND,
    GROUP,
    JOB_NAME_PATTERN,
    JOB_NAME_RULE,
    MAX_ATTEMPT,
    MAX_FAULTS,
    MAX_JOB_NAME,
    MAX_NODES,
    MAX_POOL_NAME,
    MAX_POOLS,
    POOL_BACKEND_RULE,
    POOL_CHIP_GENERATION_RULE,
    POOL_DEVICE_RESOURCE_RULE,
    POOL_NAME_PATTERN,
    POOL_NAME_RULE,
    POOLS_UNIQUE_RULE,
    VERSION,
    VOLUME_ONE_SOURCE_RULE,
    WEEK_SECONDS,
    Accelerator,
    Backend,
    CelRule,
    CheckpointVolumeType,
    ChipGeneration,
    Condition,
    Conditions,
    ConditionStatus,
    EnvVar,
    FaultClass,
    HostPathType,
    JobEnvVar,
    JobPhase,
    PoolName,
    Quantity,
    StorageMedium,
    TaintEffect,
    Toleration,
    TolerationOperator,
    _Lenient,
    _unique_condition_types,
    _validations,
    _Wire,
    default_backend,
    immutable,
)


class AcceleratorPoolSpec(_Wire):
    """A set of nodes with one kind of accelerator, and how training pods run on them."""

    model_config = ConfigDict(json_schema_extra=_validations(POOL_DEVICE_RESOURCE_RULE, POOL_BACKEND_RULE,
                                                             POOL_CHIP_GENERATION_RULE))

    accelerator: Accelerator = Field(description="The accelerator on every node of the pool: npu, gpu or cpu.")
    device_resource: str | None = Field(
        None,
        min_length=1,
        validate_default=True,
        description="The extended resource a pod requests per device, e.g. huawei.com/Ascend910 or"
        " nvidia.com/gpu. Required unless accelerator is cpu.",
        json_schema_extra=_NOT_NULL,
    )
    devices_per_node: StrictInt = Field(
        1, ge=1, le=256,
        description="Accelerators each pod uses (and requests), one pod per node; worker processes per pod."
    )
    node_selector: dict[str, str] = Field(
        default={}, description="Node labels that select the pool's nodes, e.g. tandem.dev/pool: ascend-910b."
    )
    tolerations: list[Toleration] = Field(default=[], description="Tolerations added to the pool's pods.")
    image: str | None = Field(
        None, min_length=1, description="Default runtime image for the pool; a job's container.image overrides it."
    )
    backend: Backend | None = Field(
        None,
        description="torch.distributed backend: hccl, nccl or gloo. Absent: hccl for npu, nccl for gpu, gloo for cpu.",
        json_schema_extra=_NOT_NULL,
    )
    chip_generation: ChipGeneration | None = Field(
        None,
        description="npu pools: the Ascend chip generation of the nodes (ascend910: Atlas training series, 910A;"
        " ascend910b: Atlas A2; ascend910c: Atlas A3), as the Ascend device plugin's node label"
        " node.kubernetes.io/npu.chip.name shows it (910ProB, 910B3, ...). It decides HCCL's timeout ranges and the"
        " fused ops the runtime uses. Absent: the runtime reads it from torch_npu's device name, and until then"
        " uses the strictest timeouts.",
        json_schema_extra=_NOT_NULL,
    )
    env: list[EnvVar] = Field(
        default=[], description="Extra environment for the pool's pods, e.g. HCCL_CONNECT_TIMEOUT."
    )
    host_network: StrictBool = Field(
        False, description="Run the pool's pods in the host network namespace (RoCE / InfiniBand setups)."
    )
    checkpoint_volume_types: list[CheckpointVolumeType] = Field(
        default=[CheckpointVolumeType.PERSISTENT_VOLUME_CLAIM, CheckpointVolumeType.EMPTY_DIR],
        max_length=4,
        description="Checkpoint volume sources that jobs may use on this pool. hostPath and nfs let a job's pods"
        " mount any directory of the node or any NFS server, so only a cluster admin adds them, deliberately.",
    )

    @field_validator("device_resource")
    @classmethod
    def _device_resource_unless_cpu(cls, value: str | None, info: ValidationInfo) -> str | None:
        accelerator = info.data.get("accelerator")
        if value is None and accelerator is not None and accelerator != Accelerator.CPU:
            raise ValueError(POOL_DEVICE_RESOURCE_RULE.message)
        return value

    @field_validator("backend")
    @classmethod
    def _backend_suits_accelerator(cls, value: Backend | None, info: ValidationInfo) -> Backend | None:
        accelerator = info.data.get("accelerator")
        if value in (None, Backend.GLOO) or accelerator is None:
            return value
        if DEFAULT_BACKEND[accelerator] != value:
            raise ValueError(POOL_BACKEND_RULE.message)
        return value

    @field_validator("chip_generation")
    @classmethod
    def _chip_generation_on_npu(cls, value: ChipGeneration | None, info: ValidationInfo) -> ChipGeneration | None:
        if value is not None and info.data.get("accelerator") not in (None, Accelerator.NPU):
            raise ValueError(POOL_CHIP_GENERATION_RULE.message)
        return value

    def effective_backend(self) -> Backend:
        """The backend the pool's pods use: the spec's, else the accelerator's default."""
        return self.backend or default_backend(self.accelerator)


def _name_checked(metadata: dict[str, Any], longest: int, pattern: str, rule: CelRule) -> dict[str, Any]:
    """The object's metadata, if its name (when it has one) is at most `longest` and matches `pattern`; else the
    CEL rule's own message, so the operator refuses it in the API server's words."""
    name = metadata.get("name")
    if name is not None and (len(str(name)) > longest or not re.match(pattern, str(name))):
        raise ValueError(rule.message)
    return metadata


class AcceleratorPool(_Lenient):
    """AcceleratorPool is a cluster-scoped set of nodes with one kind of accelerator that TrainingJobs run on."""

    KIND: ClassVar[str] = "AcceleratorPool"
    PLURAL: ClassVar[str] = "acceleratorpools"
    SINGULAR: ClassVar[str] = "acceleratorpool"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ap",)
    CATEGORIES: ClassVar[tuple[str, ...]] = ("tandem",)
    SCOPE: ClassVar[str] = "Cluster"

    ROOT_RULES: ClassVar[tuple[CelRule, ...]] = (POOL_NAME_RULE,)

    api_version: Literal["tandem.dev/v1alpha1"] = API_VERSION
    kind: Literal["AcceleratorPool"] = "AcceleratorPool"
    metadata: dict[str, Any] = {}
    spec: AcceleratorPoolSpec
    status: AcceleratorPoolStatus = Field(default_factory=AcceleratorPoolStatus)

    @field_validator("metadata")
    @classmethod
    def _name_fits_a_label(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return _name_checked(metadata, MAX_POOL_NAME, POOL_NAME_PATTERN, POOL_NAME_RULE)


class PersistentVolumeClaimSource(_Wire):
    """A PersistentVolumeClaim in the job's namespace (ReadWriteMany, so every pod and pool reaches it)."""

    claim_name: str = Field(min_length=1, description="Name of the PersistentVolumeClaim.")
    read_only: StrictBool = Field(False, description="Mount read-only (resume only, never save).")


class HostPathSource(_Wire):
    """A directory on the node: only for single-node clusters or a shared filesystem mounted on every node."""

    path: str = Field(min_length=1, description="Directory on the node.")
    type: HostPathType | None = Field(
        None, description="DirectoryOrCreate or Directory; absent: no check.", json_schema_extra=_NOT_NULL
    )


class EmptyDirSource(_Wire):
    """A per-pod scratch directory: checkpoints die with the pod, so a restart starts over. For tests."""

    medium: StorageMedium | None = Field(
        None, description="Memory for tmpfs; absent: the node's disk.", json_schema_extra=_NOT_NULL
    )
    size_limit: Quantity | None = Field(None, description="Size limit, e.g. 10Gi.")


class NFSSource(_Wire):
    """An NFS export, reachable from the nodes of every pool."""

    server: str = Field(min_length=1, description="Hostname or IP address of the NFS server.")
    path: str = Field(min_length=1, description="Path exported by the NFS server.")
    read_only: StrictBool = Field(False, description="Mount read-only (resume only, never save).")


class CheckpointVolume(_Wire):
    """Where checkpoints live: a core/v1 volume source without a name; exactly one source must be set."""

    model_config = ConfigDict(json_schema_extra=_validations(VOLUME_ONE_SOURCE_RULE))

    persistent_volume_claim: PersistentVolumeClaimSource | None = Field(
        None,
        description="persistentVolumeClaim {claimName, readOnly}: a claim in the job's namespace.",
        json_schema_extra=_NOT_NULL,
    )
    host_path: HostPathSource | None = Field(
        None, description="hostPath {path, type}: a directory on the node.", json_schema_extra=_NOT_NULL
    )
    empty_dir: EmptyDirSource | None = Field(
        None,
        description="emptyDir {medium, sizeLimit}: per-pod scratch space, lost on restart (tests only).",
        json_schema_extra=_NOT_NULL,
    )
    nfs: NFSSource | None = Field(
        None, description="nfs {server, path, readOnly}: an NFS export.", json_schema_extra=_NOT_NULL
    )

    @model_validator(mode="after")
    def _exactly_one_source(self) -> CheckpointVolume:
        sources = (self.persistent_volume_claim, self.host_path, self.empty_dir, self.nfs)
        if sum(source is not None for source in sources) != 1:
            raise ValueError(VOLUME_ONE_SOURCE_RULE.message)
        return self


class Checkpoint(_Wire):
    """Where and how often the runtime checkpoints; a restart or failover resumes from the newest one."""

    volume: CheckpointVolume = Field(
        description="The checkpoint volume; it must be reachable from every pool. Immutable.",
        json_schema_extra=_validations(immutable("checkpoint.volume")),
    )
    path: str = Field(
        "/checkpoints",
        pattern=r"^/",
        max_length=1024,
        description="Absolute mount path of the volume in the training container. Immutable.",
        json_schema_extra=_validations(immutable("checkpoint.path")),
    )
    interval_steps: StrictInt = Field(
        200, ge=1, le=1_000_000_000, description="Save after every this many optimizer steps."
    )
    keep: StrictInt = Field(3, ge=1, le=1000, description="Newest complete checkpoints to keep.")


class FaultPolicy(_Wire):
    """How the operator reacts to faults: restarts from the checkpoint, backoff, failover to the next pool."""

    model_config = ConfigDict(json_schema_extra=_validations(BACKOFF_RULE))

    max_restarts: StrictInt = Field(
        10, ge=0, le=1000, description="Restarts of the whole job, all pools together, before it fails."
    )
    backoff_seconds: StrictInt = Field(
        10, ge=0, le=DAY_SECONDS,
        description="Wait before a restart; doubles per consecutive restart, up to maxBackoffSeconds."
    )
    max_backoff_seconds: StrictInt = Field(
        300, ge=0, le=DAY_SECONDS, validate_default=True,
        description="Cap on the restart backoff; at least backoffSeconds."
    )
    failover_after_faults: StrictInt = Field(
        2, ge=1, le=1000, description="Interconnect or device faults on one pool before the job moves to the next pool."
    )
    pending_timeout_seconds: StrictInt = Field(
        600, ge=1, le=WEEK_SECONDS, description="Pods unschedulable this long on a pool move the job to the next pool."
    )
    max_failovers: StrictInt = Field(
        10, ge=0, le=1000,
        description="Moves to another pool, for faults or for pods that cannot be scheduled, before the job stays"
        " where it is: with failBack, two pools that each lack room never take turns for ever.",
    )
    node_exclusion_seconds: StrictInt = Field(
        1800, ge=0, le=WEEK_SECONDS,
        description="An excluded node is released once it has been Ready and free of reported faults this long.",
    )
    node_not_ready_grace_seconds: StrictInt = Field(
        60, ge=0, le=DAY_SECONDS,
        description="A node NotReady for less than this does not end the attempt while its ranks report no fault"
        " (a missed kubelet heartbeat is not a dead node).",
    )
    progress_timeout_seconds: StrictInt = Field(
        600, ge=1, le=WEEK_SECONDS,
        description="tandem-run ends a command that shows no progress this long after its first step and reports"
        " a hang (TANDEM_PROGRESS_TIMEOUT_SECONDS).",
    )
    startup_timeout_seconds: StrictInt = Field(
        1800, ge=1, le=WEEK_SECONDS,
        description="The same before the first step: set-up and checkpoint loading (TANDEM_STARTUP_TIMEOUT_SECONDS).",
    )
    exclude_faulty_nodes: StrictBool = Field(
        True, description="New pods avoid nodes that faulted (node anti-affinity on status.excludedNodes)."
    )
    fail_back: StrictBool = Field(False, description="Return to a more preferred pool when it is healthy again.")
    in_place_restart: StrictBool = Field(
        True, description="After a fault that leaves a node usable (an interconnect fault, a hang, an unknown crash),"
        " restart the workers inside the pods that may stay instead of recreating the gang; pods that must move"
        " are replaced. Needs a Tandem launcher (tandem-train or tandem-run) as the command."
    )
    in_place_restart_deadline_seconds: StrictInt = Field(
        300, ge=1, le=DAY_SECONDS,
        description="An in-place restart whose every rank has not reached its first step this long after the"
        " operator asked for it becomes a full restart.",
    )
    in_place_restart_window_seconds: StrictInt = Field(
        600, ge=0, le=WEEK_SECONDS,
        description="A fault this soon after an in-place restart began is answered with a full restart.",
    )

    @field_validator("max_backoff_seconds")
    @classmethod
    def _cap_not_below_backoff(cls, value: int, info: ValidationInfo) -> int:
        backoff = info.data.get("backoff_seconds")
        if backoff is not None and value < backoff:
            raise ValueError(BACKOFF_RULE.message)
        return value


MOUNTS_NAME_VOLUMES_RULE = CelRule(
    rule="self.container.volumeMounts.all(m, m.mountPath != self.checkpoint.path"
    " && self.podTemplate.spec.volumes.exists(v, v.name == m.name))",
    message="container.volumeMounts must each name a volume of podTemplate.spec.volumes, and not mount over"
    " checkpoint.path",
    field_path=".container.volumeMounts",
)


class TrainingJobSpec(_Wire):
    """A PyTorch training job that restarts from its checkpoint on faults and fails over between pools."""

    model_config = ConfigDict(json_schema_extra=_validations(MOUNTS_NAME_VOLUMES_RULE))

    nodes: StrictInt = Field(
        1, ge=1, le=MAX_NODES, description="Pods in every attempt, one per node of the pool. Immutable.",
        json_schema_extra=_validations(immutable("nodes")),
    )
    pools: list[PoolName] = Field(
        min_length=1,
        max_length=MAX_POOLS,
        description="AcceleratorPool names in order of preference; a failover moves to the next one. Immutable.",
        json_schema_extra=_validations(POOLS_UNIQUE_RULE, immutable("pools")),
    )
    container: Container = Field(
        default_factory=Container,
        description="The training container, shared by every pool.",
        json_schema_extra=_EMPTY_OBJECT_DEFAULT,
    )
    pod_template: PodTemplate = Field(
        default_factory=PodTemplate,
        description="What every pod needs beyond the pod contract: labels, annotations, volumes, init containers,"
        " sidecars, service account, image pull secrets, scheduler, priority class, security context, extra"
        " nodeSelector and tolerations.",
        json_schema_extra=_EMPTY_OBJECT_DEFAULT,
    )
    training: dict[str, Any] = Field(
        default={},
        description="Free-form configuration handed to the runtime as TANDEM_TRAINING_CONFIG (model, steps,"
        " globalBatch, seqLen, lr, data, ...); the runtime validates it.",
    )
    checkpoint: Checkpoint = Field(description="Where and how often to checkpoint.")
    fault_policy: FaultPolicy = Field(
        default_factory=FaultPolicy,
        description="Restart, backoff and failover settings.",
        json_schema_extra=_EMPTY_OBJECT_DEFAULT,
    )

    @model_validator(mode="after")
    def _mounts_name_template_volumes(self) -> TrainingJobSpec:
        names = {v.get("name") for v in self.pod_template.spec.volumes}
        for mount in self.container.volume_mounts:
            if mount.name not in names or mount.mount_path == self.checkpoint.path:
                raise ValueError(MOUNTS_NAME_VOLUMES_RULE.message)
        return self

    @field_validator("pools")
    @classmethod
    def _pools_unique(cls, pools: list[str]) -> list[str]:
        if len(pools) != len(set(pools)):
            raise ValueError(POOLS_UNIQUE_RULE.message)
        return pools


class TrainingJob(_Lenient):
    """TrainingJob runs PyTorch training on AcceleratorPools, restarting from its checkpoint on faults and
    failing over to the next pool when one keeps faulting or has no capacity."""

    KIND: ClassVar[str] = "TrainingJob"
    PLURAL: ClassVar[str] = "trainingjobs"
    SINGULAR: ClassVar[str] = "trainingjob"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("tj", "tjob")
    CATEGORIES: ClassVar[tuple[str, ...]] = ("tandem", "all")
    SCOPE: ClassVar[str] = "Namespaced"

    ROOT_RULES: ClassVar[tuple[CelRule, ...]] = (JOB_NAME_RULE,)

    api_version: Literal["tandem.dev/v1alpha1"] = API_VERSION
    kind: Literal["TrainingJob"] = "TrainingJob"
    metadata: dict[str, Any] = {}
    spec: TrainingJobSpec
    status: TrainingJobStatus = Field(default_factory=TrainingJobStatus)

    @field_validator("metadata")
    @classmethod
    def _name_leaves_room_for_pods(cls, metadata: dict[str, Any]) -> dict[str, Any]:
        return _name_checked(metadata, MAX_JOB_NAME, JOB_NAME_PATTERN, JOB_NAME_RULE)
