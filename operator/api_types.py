"""Building blocks of the Tandem API shared by AcceleratorPool and TrainingJob: the API's
constants and enums, the cross-field rules (`CelRule`), the wire base models, and the small
Kubernetes sub-objects (EnvVar, Toleration, Condition). See `tandem.operator.api`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    field_validator,
)
from pydantic.alias_generators import to_camel

from tandem.backends import DEFAULT_BACKEND as SHARED_DEFAULT_BACKEND

# The one definition of the classes, shared with the runtime; re-exported as part of the API.
from tandem.faults.taxonomy import FaultClass as FaultClass

GROUP = "tandem.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"

MAX_FAULTS = 20
"""`status.faults` keeps the newest this many; the operator drops the oldest first."""
MAX_POOLS = 16
"""Bounds `spec.pools` so the API server can cost the uniqueness rule (quadratic in the list)."""
MAX_NODES = 4096
"""Pods per attempt; ranks stay within four digits of a pod name."""
MAX_ATTEMPT = 9999
"""Attempts per job (restarts and failovers are bounded far below); four digits of a pod name."""
POD_NAME_SUFFIX = len(f"-a{MAX_ATTEMPT}-{MAX_NODES - 1}")
MAX_JOB_NAME = 63 - POD_NAME_SUFFIX
"""A pod's hostname `<job>-a<attempt>-<rank>` is a DNS-1123 label (at most 63 characters)."""
DAY_SECONDS = 86_400
WEEK_SECONDS = 7 * DAY_SECONDS

CONTRACT_ENV = (
    "TANDEM_JOB", "TANDEM_NAMESPACE", "TANDEM_ATTEMPT", "TANDEM_POOL", "TANDEM_ACCELERATOR", "TANDEM_BACKEND",
    "TANDEM_NODES", "TANDEM_NODE_RANK", "TANDEM_DEVICES_PER_NODE", "MASTER_ADDR", "MASTER_PORT",
    "TANDEM_CHECKPOINT_DIR", "TANDEM_CHECKPOINT_INTERVAL_STEPS", "TANDEM_CHECKPOINT_KEEP", "TANDEM_TRAINING_CONFIG",
    "TANDEM_JOB_UID", "TANDEM_ATTEMPT_TOKEN", "TANDEM_PROGRESS_TIMEOUT_SECONDS", "TANDEM_STARTUP_TIMEOUT_SECONDS",
    "TANDEM_CHIP_GENERATION", "TANDEM_POD_LABELS", "TANDEM_READY_FILE", "TANDEM_IN_PLACE_WAIT_SECONDS",
    # What people's launchers read (torchrun's PET_*, Megatron/MindSpeed shell launchers): the attempt's pool.
    "PET_NNODES", "PET_NODE_RANK", "PET_NPROC_PER_NODE", "PET_MASTER_ADDR", "PET_MASTER_PORT",
    "NNODES", "NODE_RANK", "NPROC_PER_NODE", "WORLD_SIZE",
)
"""The pod contract's environment, set by the operator for every rank; a job's env cannot override it
(a pool's env, written by the cluster admin, can: the local demo points the runtime at its CPU path)."""


class Accelerator(StrEnum):
    """The kind of accelerator in a pool: npu (Huawei Ascend), gpu (NVIDIA) or cpu (no accelerator)."""

    NPU = "npu"
    GPU = "gpu"
    CPU = "cpu"


class ChipGeneration(StrEnum):
    """The Ascend chip generation of an npu pool's nodes: HCCL's timeout ranges and torch_npu's fused ops differ
    by generation (runtime/README.md#timeouts, kernels/README.md)."""

    ASCEND910 = "ascend910"  # Atlas training series (910A, 910 Pro, 910 Premium)
    ASCEND910B = "ascend910b"  # Atlas A2
    ASCEND910C = "ascend910c"  # Atlas A3


class Backend(StrEnum):
    """The torch.distributed backend: hccl (Ascend), nccl (NVIDIA) or gloo (CPU, anywhere)."""

    HCCL = "hccl"
    NCCL = "nccl"
    GLOO = "gloo"


DEFAULT_BACKEND: dict[Accelerator, Backend] = {Accelerator(a): Backend(b) for a, b in SHARED_DEFAULT_BACKEND.items()}


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
    message_expression: str | None = None

    def to_schema(self) -> dict[str, str]:
        entry = {"rule": self.rule, "message": self.message}
        if self.message_expression:
            entry["messageExpression"] = self.message_expression
        if self.field_path:
            entry["fieldPath"] = self.field_path
        return entry


def immutable(field: str) -> CelRule:
    """A transition rule: the API server refuses an update that changes the field (`self == oldSelf`)."""
    return CelRule(rule="self == oldSelf",
                   message=f"{field} is immutable: it shapes every attempt; delete the job and create it again")


POOL_DEVICE_RESOURCE_RULE = CelRule(
    rule="self.accelerator == 'cpu' || has(self.deviceResource)",
    message="deviceResource is required unless accelerator is cpu",
    field_path=".deviceResource",
)
POOL_CHIP_GENERATION_RULE = CelRule(
    rule="!has(self.chipGeneration) || self.accelerator == 'npu'",
    message="chipGeneration names an Ascend chip generation: only an npu pool has one",
    field_path=".chipGeneration",
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


JOB_NAME_RULE = CelRule(
    rule=f"self.metadata.name.size() <= {MAX_JOB_NAME} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')",
    message=f"metadata.name must be a DNS-1035 label of at most {MAX_JOB_NAME} characters (lower-case letters,"
    " digits and '-', starting with a letter): it names the job's Service and, with -a<attempt>-<rank>,"
    " its pods' hostnames",
)
JOB_NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
CONTRACT_ENV_RULE = CelRule(
    rule="!(self.name in " + "[" + ", ".join(f"'{name}'" for name in CONTRACT_ENV) + "])",
    message="is a pod-contract variable that the operator sets; a job cannot override it",
    message_expression="'env ' + self.name + ' is a pod-contract variable that the operator sets;"
    " a job cannot override it'",
    field_path=".name",
)


def _validations(*rules: CelRule) -> dict[str, Any]:
    return {"x-kubernetes-validations": [rule.to_schema() for rule in rules]}


# A null on a field that a CEL rule tests with has(), or on an enum, would reach the rule as a
# present null (or fail the enum). Left non-nullable in the CRD, the API server prunes the null
# instead, which is what pydantic's None means: absent.
_NOT_NULL: dict[str, Any] = {"nullable": False}
# Nested objects default to {} so that the API server fills in their own defaults.
_EMPTY_OBJECT_DEFAULT: dict[str, Any] = {"default": {}}

# A pool's name is a DNS subdomain, as every cluster-scoped object's, and the value of its pods' tandem.dev/pool
# label, which Kubernetes caps at 63 characters: a longer name would make every pod create on it fail.
MAX_POOL_NAME = 63
POOL_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
PoolName = Annotated[str, StringConstraints(min_length=1, max_length=MAX_POOL_NAME, pattern=POOL_NAME_PATTERN)]
POOL_NAME_RULE = CelRule(
    rule=f"self.metadata.name.size() <= {MAX_POOL_NAME}",
    message=f"metadata.name must be at most {MAX_POOL_NAME} characters: it is the value of the tandem.dev/pool label"
    " on the pool's pods",
)
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


class JobEnvVar(EnvVar):
    """An environment variable a job sets: anything but the pod contract's own variables."""

    model_config = ConfigDict(json_schema_extra=_validations(CONTRACT_ENV_RULE))

    @field_validator("name")
    @classmethod
    def _not_contract(cls, name: str) -> str:
        if name in CONTRACT_ENV:
            raise ValueError(f"env {name} is a pod-contract variable that the operator sets; a job cannot override it")
        return name


class CheckpointVolumeType(StrEnum):
    """The volume sources a checkpoint may live on."""

    PERSISTENT_VOLUME_CLAIM = "persistentVolumeClaim"
    EMPTY_DIR = "emptyDir"
    HOST_PATH = "hostPath"
    NFS = "nfs"


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
