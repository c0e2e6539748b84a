"""The Tandem API (group `tandem.dev`, version `v1alpha1`) as pydantic models.

These models are the single source of truth: `tandem.operator.crdgen` turns them into the
CustomResourceDefinitions in `crds/`, and the operator parses every object it reads with them.
Python attributes are snake_case, the wire (Kubernetes) names are camelCase aliases; both are
accepted on input. Every cross-field rule exists twice from one `CelRule`: as an
`x-kubernetes-validations` entry that the API server evaluates, and as a pydantic validator
raising the same message, so a manifest is refused in the same way on both sides.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

GROUP = "tandem.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MAX_FAULTS = 20
"""`status.faults` keeps the newest this many; the operator drops the oldest first."""
MAX_POOLS = 16
"""Bounds `spec.pools` so the API server can cost the uniqueness rule (quadratic in the list)."""


class Accelerator(StrEnum):
    """The kind of accelerator in a pool: npu (Huawei Ascend), gpu (NVIDIA) or cpu (no accelerator)."""

    NPU = "npu"
    GPU = "gpu"
    CPU = "cpu"


class Backend(StrEnum):
    """The torch.distributed backend: hccl (Ascend), nccl (NVIDIA) or gloo (CPU, anywhere)."""

    HCCL = "hccl"
    NCCL = "nccl"
    GLOO = "gloo"


DEFAULT_BACKEND: dict[Accelerator, Backend] = {
    Accelerator.NPU: Backend.HCCL,
    Accelerator.GPU: Backend.NCCL,
    Accelerator.CPU: Backend.GLOO,
}


def default_backend(accelerator: Accelerator) -> Backend:
    """The backend a pool uses when its spec names none."""
    return DEFAULT_BACKEND[Accelerator(accelerator)]


class JobPhase(StrEnum):
    """Where a TrainingJob is in its life: Pending, Starting, Running, Restarting, Succeeded or Failed."""

    PENDING = "Pending"
    STARTING = "Starting"
    RUNNING = "Running"
    RESTARTING = "Restarting"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"


class FaultClass(StrEnum):
    """What broke: interconnect, device, node, oom, user or unknown (DESIGN.md section 3)."""

    INTERCONNECT = "interconnect"
    DEVICE = "device"
    NODE = "node"
    OOM = "oom"
    USER = "user"
    UNKNOWN = "unknown"


class ConditionStatus(StrEnum):
    """The status of a condition: True, False or Unknown."""

    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class TolerationOperator(StrEnum):
    """How a toleration matches a taint's value: Equal (the default) or Exists (any value)."""

    EQUAL = "Equal"
    EXISTS = "Exists"


class TaintEffect(StrEnum):
    """The taint effect a toleration matches: NoSchedule, PreferNoSchedule or NoExecute."""

    NO_SCHEDULE = "NoSchedule"
    PREFER_NO_SCHEDULE = "PreferNoSchedule"
    NO_EXECUTE = "NoExecute"


class HostPathType(StrEnum):
    """The hostPath types that make sense for a checkpoint directory."""

    DIRECTORY_OR_CREATE = "DirectoryOrCreate"
    DIRECTORY = "Directory"


class StorageMedium(StrEnum):
    """The medium backing an emptyDir: Memory (tmpfs); absent means the node's disk."""

    MEMORY = "Memory"


@dataclass(frozen=True)
class CelRule:
    """One cross-field rule: emitted as `x-kubernetes-validations`, enforced again in Python."""

    rule: str
    message: str
    field_path: str | None = None

    def to_schema(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry


POOL_DEVICE_RESOURCE_RULE = CelRule(
    rule="self.accelerator == 'cpu' || has(self.deviceResource)",
    message="deviceResource is required unless accelerator is cpu",
    field_path=".deviceResource",
)
POOL_BACKEND_RULE = CelRule(
    rule=(
        "!has(self.backend) || self.backend == 'gloo'"
        " || (self.backend == 'hccl' && self.accelerator == 'npu')"
        " || (self.backend == 'nccl' && self.accelerator == 'gpu')"
    ),
    message="backend does not suit the accelerator: hccl needs npu, nccl needs gpu, gloo runs anywhere",
    field_path=".backend",
)
POOLS_UNIQUE_RULE = CelRule(
    rule="self.all(p, self.exists_one(q, q == p))",
    message="pools must not name the same AcceleratorPool twice",
)
VOLUME_ONE_SOURCE_RULE = CelRule(
    rule=(
        "[has(self.persistentVolumeClaim), has(self.hostPath), has(self.emptyDir), has(self.nfs)]"
        ".filter(s, s).size() == 1"
    ),
    message="exactly one of persistentVolumeClaim, hostPath, emptyDir, nfs must be set",
)
BACKOFF_RULE = CelRule(
    rule="self.maxBackoffSeconds >= self.backoffSeconds",
    message="maxBackoffSeconds must be greater than or equal to backoffSeconds",
    field_path=".maxBackoffSeconds",
)


def _validations(*rules: CelRule) -> dict[str, Any]:
    return {"x-kubernetes-validations": [rule.to_schema() for rule in rules]}


# A null on a field that a CEL rule tests with has(), or on an enum, would reach the rule as a
# present null (or fail the enum). Left non-nullable in the CRD, the API server prunes the null
# instead, which is what pydantic's None means: absent.
_NOT_NULL: dict[str, Any] = {"nullable": False}
# Nested objects default to {} so that the API server fills in their own defaults.
_EMPTY_OBJECT_DEFAULT: dict[str, Any] = {"default": {}}

DnsSubdomain = Annotated[
    str,
    StringConstraints(
        min_length=1, max_length=253, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
    ),
]
Quantity = StrictInt | str
"""A Kubernetes resource quantity: an integer or a string such as `500m` or `16Gi`."""


class _Wire(BaseModel):
    """camelCase on the wire, snake_case in Python.

    Numbers and booleans are StrictInt / StrictBool fields: the API server refuses "2" for an
    integer, so pydantic must not quietly accept it either.
    """

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    def to_dict(self) -> dict[str, Any]:
        """The object as Kubernetes JSON: camelCase keys, absent (not null) optional fields."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class _Lenient(_Wire):
    # Status and whole objects are read back from what the operator (or a newer version of it) wrote,
    # so unknown fields are ignored there; only specs, written by users, refuse them.
    model_config = ConfigDict(extra="ignore")


class EnvVar(_Wire):
    """An environment variable for the training containers (the core/v1 EnvVar shape)."""

    name: str = Field(min_length=1, description="Name of the variable.")
    value: str | None = Field(None, description="Value of the variable; absent means empty.")
    value_from: dict[str, Any] | None = Field(
        None,
        description="A core/v1 EnvVarSource (secretKeyRef, configMapKeyRef, fieldRef, resourceFieldRef),"
        " passed to the pod unchanged.",
    )


class Toleration(_Wire):
    """A core/v1 Toleration added to the pods that run on the pool."""

    key: str | None = Field(None, description="Taint key to match; absent with operator Exists matches all.")
    operator: TolerationOperator | None = Field(
        None, description="Equal (default) or Exists.", json_schema_extra=_NOT_NULL
    )
    value: str | None = Field(None, description="Taint value to match with operator Equal.")
    effect: TaintEffect | None = Field(
        None, description="Taint effect to match; absent matches all effects.", json_schema_extra=_NOT_NULL
    )
    toleration_seconds: StrictInt | None = Field(
        None, description="For NoExecute: how long the pod stays bound after the taint appears."
    )


class Condition(_Lenient):
    """A condition in the metav1.Condition shape."""

    type: str = Field(
        max_length=316,
        pattern=r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
        r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$",
        description="Type of condition in CamelCase, e.g. Ready, Progressing, Failed.",
    )
    status: ConditionStatus = Field(description="True, False or Unknown.")
    reason: str = Field(
        min_length=1,
        max_length=1024,
        pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$",
        description="Programmatic identifier of the reason for the last transition, in CamelCase.",
    )
    message: str = Field("", max_length=32768, description="Human-readable details of the last transition.")
    last_transition_time: datetime = Field(description="When the status last changed.")
    observed_generation: StrictInt | None = Field(
        None, ge=0, description="metadata.generation the condition was set from."
    )


def _unique_condition_types(conditions: list[Condition]) -> list[Condition]:
    types = [condition.type for condition in conditions]
    if len(types) != len(set(types)):
        raise ValueError("conditions must not repeat a type")
    return conditions


# Keyed by type, as metav1 conditions are everywhere in Kubernetes: one entry per type.
Conditions = Annotated[list[Condition], AfterValidator(_unique_condition_types)]
_CONDITIONS_LIST_MAP: dict[str, Any] = {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]}


class AcceleratorPoolSpec(_Wire):
    """A set of nodes with one kind of accelerator, and how training pods run on them."""

    model_config = ConfigDict(json_schema_extra=_validations(POOL_DEVICE_RESOURCE_RULE, POOL_BACKEND_RULE))

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
        1, ge=1, description="Accelerators each pod uses (and requests), one pod per node; worker processes per pod."
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
    env: list[EnvVar] = Field(
        default=[], description="Extra environment for the pool's pods, e.g. HCCL_CONNECT_TIMEOUT."
    )
    host_network: StrictBool = Field(
        False, description="Run the pool's pods in the host network namespace (RoCE / InfiniBand setups)."
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

    def effective_backend(self) -> Backend:
        """The backend the pool's pods use: the spec's, else the accelerator's default."""
        return self.backend or default_backend(self.accelerator)


class AcceleratorPoolStatus(_Lenient):
    """What the operator observes about the pool's nodes."""

    nodes: StrictInt = Field(0, ge=0, description="Nodes that match the pool's nodeSelector.")
    ready_nodes: StrictInt = Field(0, ge=0, description="Matching nodes that are Ready.")
    faulty_nodes: list[str] = Field(default=[], description="Nodes with an open accelerator or interconnect fault.")
    conditions: Conditions = Field(
        default=[], description="Observations of the pool's state.", json_schema_extra=_CONDITIONS_LIST_MAP
    )


class AcceleratorPool(_Lenient):
    """AcceleratorPool is a cluster-scoped set of nodes with one kind of accelerator that TrainingJobs run on."""

    KIND: ClassVar[str] = "AcceleratorPool"
    PLURAL: ClassVar[str] = "acceleratorpools"
    SINGULAR: ClassVar[str] = "acceleratorpool"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("ap",)
    CATEGORIES: ClassVar[tuple[str, ...]] = ("tandem",)
    SCOPE: ClassVar[str] = "Cluster"

    api_version: Literal["tandem.dev/v1alpha1"] = API_VERSION
    kind: Literal["AcceleratorPool"] = "AcceleratorPool"
    metadata: dict[str, Any] = {}
    spec: AcceleratorPoolSpec
    status: AcceleratorPoolStatus = Field(default_factory=AcceleratorPoolStatus)


class ResourceRequirements(_Wire):
    """CPU and memory for each training container; the accelerator request is added per pool."""

    requests: dict[str, Quantity] = Field(default={}, description="Minimum resources, e.g. cpu: 8, memory: 64Gi.")
    limits: dict[str, Quantity] = Field(default={}, description="Maximum resources, e.g. memory: 128Gi.")


class Container(_Wire):
    """The training container, shared by every pool the job may run on."""

    image: str | None = Field(None, min_length=1, description="Container image; absent: the pool's image.")
    command: list[str] | None = Field(None, description="Entrypoint; absent: the runtime launcher `tandem-train`.")
    args: list[str] = Field(default=[], description="Arguments to the entrypoint.")
    env: list[EnvVar] = Field(default=[], description="Extra environment, after the pool's and Tandem's own.")
    resources: ResourceRequirements = Field(
        default_factory=ResourceRequirements,
        description="CPU and memory requests and limits; the accelerator request is added per pool.",
        json_schema_extra=_EMPTY_OBJECT_DEFAULT,
    )


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

    volume: CheckpointVolume = Field(description="The checkpoint volume; it must be reachable from every pool.")
    path: str = Field(
        "/checkpoints", pattern=r"^/", description="Absolute mount path of the volume in the training container."
    )
    interval_steps: StrictInt = Field(200, ge=1, description="Save after every this many optimizer steps.")
    keep: StrictInt = Field(3, ge=1, description="Newest complete checkpoints to keep.")


class FaultPolicy(_Wire):
    """How the operator reacts to faults: restarts from the checkpoint, backoff, failover to the next pool."""

    model_config = ConfigDict(json_schema_extra=_validations(BACKOFF_RULE))

    max_restarts: StrictInt = Field(
        10, ge=0, description="Restarts of the whole job, all pools together, before it fails."
    )
    backoff_seconds: StrictInt = Field(
        10, ge=0, description="Wait before a restart; doubles per consecutive restart, up to maxBackoffSeconds."
    )
    max_backoff_seconds: StrictInt = Field(
        300, ge=0, validate_default=True, description="Cap on the restart backoff; at least backoffSeconds."
    )
    failover_after_faults: StrictInt = Field(
        2, ge=1, description="Interconnect or device faults on one pool before the job moves to the next pool."
    )
    pending_timeout_seconds: StrictInt = Field(
        600, ge=1, description="Pods unschedulable this long on a pool move the job to the next pool."
    )
    exclude_faulty_nodes: StrictBool = Field(
        True, description="New pods avoid nodes that faulted (node anti-affinity on status.excludedNodes)."
    )
    fail_back: StrictBool = Field(False, description="Return to a more preferred pool when it is healthy again.")

    @field_validator("max_backoff_seconds")
    @classmethod
    def _cap_not_below_backoff(cls, value: int, info: ValidationInfo) -> int:
        backoff = info.data.get("backoff_seconds")
        if backoff is not None and value < backoff:
            raise ValueError(BACKOFF_RULE.message)
        return value


class TrainingJobSpec(_Wire):
    """A PyTorch training job that restarts from its checkpoint on faults and fails over between pools."""

    nodes: StrictInt = Field(1, ge=1, description="Pods in every attempt, one per node of the pool.")
    pools: list[DnsSubdomain] = Field(
        min_length=1,
        max_length=MAX_POOLS,
        description="AcceleratorPool names in order of preference; a failover moves to the next one.",
        json_schema_extra=_validations(POOLS_UNIQUE_RULE),
    )
    container: Container = Field(
        default_factory=Container,
        description="The training container, shared by every pool.",
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

    @field_validator("pools")
    @classmethod
    def _pools_unique(cls, pools: list[str]) -> list[str]:
        if len(pools) != len(set(pools)):
            raise ValueError(POOLS_UNIQUE_RULE.message)
        return pools


class Fault(_Lenient):
    """One fault the operator saw, newest last."""

    time: datetime = Field(description="When the fault was seen.")
    attempt: StrictInt = Field(ge=1, description="The attempt the fault ended.")
    pool: str = Field(description="The pool the attempt ran on.")
    node: str | None = Field(None, description="The node the fault was seen on, when known.")
    pod: str | None = Field(None, description="The pod the fault was seen in, when known.")
    fault_class: FaultClass = Field(alias="class", description="interconnect, device, node, oom, user or unknown.")
    reason: str = Field(description="Short CamelCase reason, e.g. HcclTimeout, OOMKilled, NodeNotReady.")
    message: str = Field("", description="Human-readable details.")


class LastCheckpoint(_Lenient):
    """The newest complete checkpoint the runtime reported."""

    step: StrictInt = Field(0, ge=0, description="Optimizer steps the checkpoint holds; 0: none yet.")
    time: datetime | None = Field(None, description="When the checkpoint was reported.")


class TrainingJobStatus(_Lenient):
    """What the operator observed and decided; everything it needs to continue lives here."""

    observed_generation: StrictInt = Field(0, ge=0, description="metadata.generation this status reflects.")
    phase: JobPhase = Field(
        JobPhase.PENDING, description="Pending, Starting, Running, Restarting, Succeeded or Failed."
    )
    message: str = Field("", description="Why the job is in its phase, for a human.")
    pool: str | None = Field(None, description="The pool of the current attempt.")
    attempt: StrictInt = Field(
        0, ge=0, description="Increments on every restart or failover; 1 is the first attempt, 0: none yet."
    )
    restarts: StrictInt = Field(0, ge=0, description="Restarts so far, all pools together.")
    failovers: StrictInt = Field(0, ge=0, description="Moves to another pool so far.")
    last_checkpoint: LastCheckpoint = Field(
        default_factory=LastCheckpoint,
        description="The newest complete checkpoint.",
        json_schema_extra=_EMPTY_OBJECT_DEFAULT,
    )
    faults: list[Fault] = Field(
        default=[], max_length=MAX_FAULTS, description=f"Faults seen, newest last, at most {MAX_FAULTS}."
    )
    excluded_nodes: list[str] = Field(default=[], description="Nodes new pods avoid because they faulted.")
    conditions: Conditions = Field(
        default=[],
        description="Observations of the job's state: Ready, Progressing, Failed ...",
        json_schema_extra=_CONDITIONS_LIST_MAP,
    )
    start_time: datetime | None = Field(None, description="When the first attempt started.")
    completion_time: datetime | None = Field(None, description="When the job Succeeded or Failed.")


class TrainingJob(_Lenient):
    """TrainingJob runs PyTorch training on AcceleratorPools, restarting from its checkpoint on faults and
    failing over to the next pool when one keeps faulting or has no capacity."""

    KIND: ClassVar[str] = "TrainingJob"
    PLURAL: ClassVar[str] = "trainingjobs"
    SINGULAR: ClassVar[str] = "trainingjob"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("tj", "tjob")
    CATEGORIES: ClassVar[tuple[str, ...]] = ("tandem", "all")
    SCOPE: ClassVar[str] = "Namespaced"

    api_version: Literal["tandem.dev/v1alpha1"] = API_VERSION
    kind: Literal["TrainingJob"] = "TrainingJob"
    metadata: dict[str, Any] = {}
    spec: TrainingJobSpec
    status: TrainingJobStatus = Field(default_factory=TrainingJobStatus)
