"""The runtime's one configuration object: the pod contract (environment) plus the training config.

Nothing here imports torch: the launcher validates everything before it spawns a single worker, so a
bad config fails in milliseconds with a `user` fault instead of after N processes have imported torch.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from tandem.backends import DEFAULT_BACKEND as SHARED_DEFAULT_BACKEND
from tandem.runtime import ckpt_layout
from tandem.runtime.faults import FaultError
from tandem.runtime.plan import MAX_GLOBAL_BATCH  # sequences per optimizer step

Accelerator = Literal["npu", "gpu", "cpu"]
Backend = Literal["hccl", "nccl", "gloo"]
DEFAULT_BACKEND: dict[str, Backend] = cast(dict[str, Backend], SHARED_DEFAULT_BACKEND)  # the operator's too

# Upper bounds (docs/design.md#training-config): far beyond any real job, low enough that no value can hang or
# exhaust the launcher (it plans the batch and tokenizes the corpus in memory before any worker starts).
MAX_STEPS = ckpt_layout.MAX_STEP  # every step can name its checkpoint folder
MAX_SEQ_LEN = 1 << 20  # tokens per sequence
MAX_DATA_BYTES = 1 << 32  # the corpus is tokenized in memory (2 bytes per byte)
MAX_WATCHDOG_SECONDS = 86_400.0  # a day; the vendors' own timeouts stop at a few hours anyway
MAX_SEED = (1 << 63) - 1
MAX_DIM = 1 << 16
MAX_LAYERS = 1024
MAX_HEADS = 1024
MAX_FFN_DIM = 1 << 18
MAX_VOCAB = 1 << 20


class _Strict(BaseModel):
    # camelCase, like the rest of a Kubernetes spec; unknown fields are refused, never ignored.
    # No float may be infinite or NaN: `watchdogSeconds: Infinity` would overflow the process group's timeout.
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True, allow_inf_nan=False)


class ModelSize(_Strict):
    dim: Annotated[int, Field(gt=0, le=MAX_DIM)]
    layers: Annotated[int, Field(gt=0, le=MAX_LAYERS)]
    heads: Annotated[int, Field(gt=0, le=MAX_HEADS)]
    kv_heads: Annotated[int, Field(gt=0, le=MAX_HEADS, alias="kvHeads")]
    ffn_dim: Annotated[int, Field(gt=0, le=MAX_FFN_DIM, alias="ffnDim")]
    vocab: Annotated[int, Field(ge=258, le=MAX_VOCAB)] = 258
    norm_eps: Annotated[float, Field(gt=0, alias="normEps")] = 1e-5
    rope_theta: Annotated[float, Field(gt=0, alias="ropeTheta")] = 10000.0

    @model_validator(mode="after")
    def _shapes(self) -> ModelSize:
        if self.dim % self.heads:
            raise ValueError(f"dim {self.dim} is not divisible by heads {self.heads}")
        if self.heads % self.kv_heads:
            raise ValueError(f"heads {self.heads} is not divisible by kvHeads {self.kv_heads}")
        if (self.dim // self.heads) % 2:
            raise ValueError("dim / heads must be even (rotary embedding)")
        return self


PRESETS: dict[str, ModelSize] = {
    # ~0.12M parameters: trains on one CPU core in well under a second per step.
    "test": ModelSize(dim=64, layers=2, heads=4, kvHeads=2, ffnDim=176),
    # ~100M parameters.
    "100m": ModelSize(dim=768, layers=16, heads=12, kvHeads=4, ffnDim=2048),
    # ~1B parameters.
    "1b": ModelSize(dim=2048, layers=22, heads=16, kvHeads=8, ffnDim=5632),
}


class DataConfig(_Strict):
    # A file or folder of text; None builds the corpus from the Python standard library's source.
    path: str | None = None
    max_bytes: Annotated[int, Field(gt=0, le=MAX_DATA_BYTES, alias="maxBytes")] = 4_000_000
    shuffle: bool = True


class MetricsConfig(_Strict):
    log_every_steps: Annotated[int, Field(ge=1, le=MAX_STEPS, alias="logEverySteps")] = 10
    # Prometheus text on this port (local rank 0 of each pod); 0 turns the endpoint off.
    port: Annotated[int, Field(ge=0, le=65535)] = 9400
    # Peak dense bf16 FLOP/s of one device for the MFU estimate; None uses the device layer's table.
    peak_tflops: Annotated[float | None, Field(gt=0, alias="peakTflops")] = None


OnUnreadable = Literal["fail", "scratch"]


class CheckpointConfig(_Strict):
    # When checkpoints were committed but none is left intact (all quarantined): `fail` ends the attempt with
    # storage/CheckpointUnreadable; `scratch` trains from step 0 (recovery.choose).
    on_unreadable: OnUnreadable = Field(default="fail", alias="onUnreadable")


class TrainingConfig(_Strict):
    model: str | ModelSize = "test"
    steps: Annotated[int, Field(ge=1, le=MAX_STEPS)] = 40
    global_batch: Annotated[int, Field(ge=1, le=MAX_GLOBAL_BATCH, alias="globalBatch")] = 8
    # Sequences per rank per forward pass; None takes as many as the global batch allows.
    micro_batch: Annotated[int | None, Field(ge=1, le=MAX_GLOBAL_BATCH, alias="microBatch")] = None
    seq_len: Annotated[int, Field(ge=2, le=MAX_SEQ_LEN, alias="seqLen")] = 64
    lr: Annotated[float, Field(gt=0)] = 3e-3
    min_lr_ratio: Annotated[float, Field(ge=0, le=1, alias="minLrRatio")] = 0.1
    warmup_steps: Annotated[int, Field(ge=0, le=MAX_STEPS, alias="warmupSteps")] = 2
    weight_decay: Annotated[float, Field(ge=0, alias="weightDecay")] = 0.1
    grad_clip: Annotated[float, Field(gt=0, alias="gradClip")] = 1.0
    seed: Annotated[int, Field(ge=0, le=MAX_SEED)] = 1234
    parallel: Literal["fsdp", "ddp"] = "fsdp"
    # bf16 autocast on accelerators; the CPU trains in fp32 unless this is forced to True.
    mixed_precision: bool | None = Field(default=None, alias="mixedPrecision")
    watchdog_seconds: Annotated[float, Field(gt=0, le=MAX_WATCHDOG_SECONDS, alias="watchdogSeconds")] = 300.0
    data: DataConfig = DataConfig()
    metrics: MetricsConfig = MetricsConfig()
    # What to do when no checkpoint loads; a policy, not part of the training config's fingerprint
    # (ckpt_layout.config_fingerprint), so setting it keeps the job's checkpoints its own.
    checkpoint: CheckpointConfig = CheckpointConfig()

    @model_validator(mode="after")
    def _known_model(self) -> TrainingConfig:
        if isinstance(self.model, str) and self.model not in PRESETS:
            raise ValueError(f"unknown model preset {self.model!r}; presets: {', '.join(PRESETS)}")
        return self

    @property
    def model_size(self) -> ModelSize:
        return PRESETS[self.model] if isinstance(self.model, str) else self.model


def parse_training_config(text: str | None) -> TrainingConfig:
    """`TANDEM_TRAINING_CONFIG` -> TrainingConfig; anything wrong is a `user` fault naming the field."""
    try:
        raw = json.loads(text) if text and text.strip() else {}
    except (ValueError, RecursionError) as exc:  # JSONDecodeError, an integer of over 4300 digits, deep nesting
        raise FaultError("user", "InvalidConfig", f"TANDEM_TRAINING_CONFIG is not JSON: {_brief(exc)}") from exc
    if not isinstance(raw, dict):
        raise FaultError("user", "InvalidConfig", "TANDEM_TRAINING_CONFIG must be a JSON object")
    try:
        return TrainingConfig.model_validate(raw)
    except ValidationError as exc:
        raise FaultError("user", "InvalidConfig", describe_validation_error(exc)) from exc


def _brief(exc: BaseException) -> str:
    return str(exc)[:200] or type(exc).__name__


# Names pydantic gives the branches of a union (`model: str | ModelSize`): not fields, so not part of a path.
_BRANCH_TAGS = frozenset({"str", "int", "float", "bool", "dict", "list", "none"})


def _is_branch(part: object) -> bool:
    return isinstance(part, str) and (part in _BRANCH_TAGS or "[" in part)


def describe_validation_error(exc: ValidationError) -> str:
    errors = exc.errors()
    parts = []
    for err in errors:
        loc = err["loc"]
        # A union's failed `str` branch is noise when its other branch says what is wrong inside the object.
        if (
            loc
            and _is_branch(loc[-1])
            and any(o is not err and o["loc"][: len(loc) - 1] == loc[:-1] and len(o["loc"]) > len(loc) for o in errors)
        ):
            continue
        where = ".".join(str(p) for p in loc if not _is_branch(p)) or "<root>"
        if err["type"] == "extra_forbidden":
            parts.append(f"unknown field {where!r}")
        elif err["type"] == "int_parsing_size":  # pydantic's words for 1e30 are about parsing a string
            parts.append(f"{where}: the number is too large")
        else:
            parts.append(f"{where}: {err['msg']}")
    return "invalid training config: " + "; ".join(parts)


@dataclass(frozen=True)
class Contract:
    """The pod contract (docs/design.md#pod-contract): what the operator hands every pod, read once, passed
    explicitly."""

    job: str
    namespace: str
    attempt: int
    job_uid: str
    pool: str
    accelerator: Accelerator
    backend: Backend
    nodes: int
    node_rank: int
    devices_per_node: int
    master_addr: str
    master_port: int
    checkpoint_dir: str
    checkpoint_interval: int
    checkpoint_keep: int
    training: TrainingConfig
    fault_inject: str
    termination_log: str

    @property
    def world_size(self) -> int:
        return self.nodes * self.devices_per_node

    def provenance(self) -> dict[str, str]:
        """What each checkpoint records of the job and the training config that wrote it."""
        return ckpt_layout.provenance(f"{self.namespace}/{self.job}", self.job_uid, self.config_fingerprints()[0])

    def config_fingerprints(self) -> tuple[str, ...]:
        """The fingerprints of the training config that its checkpoints may carry (ckpt_layout)."""
        return ckpt_layout.config_fingerprints(self.training.model_dump(mode="json", by_alias=True))


def _int(env: Mapping[str, str], name: str, default: int, minimum: int) -> int:
    raw = env.get(name, "")
    try:
        value = int(raw) if raw.strip() else default
    except ValueError as exc:
        raise FaultError("user", "InvalidEnvironment", f"{name}={raw!r} is not an integer") from exc
    if value < minimum:
        raise FaultError("user", "InvalidEnvironment", f"{name}={value} must be >= {minimum}")
    return value


def contract_from_env(env: Mapping[str, str]) -> Contract:
    accelerator = env.get("TANDEM_ACCELERATOR", "cpu") or "cpu"
    if accelerator not in DEFAULT_BACKEND:
        raise FaultError("user", "InvalidEnvironment", f"TANDEM_ACCELERATOR={accelerator!r}: npu | gpu | cpu")
    backend = env.get("TANDEM_BACKEND") or DEFAULT_BACKEND[accelerator]
    if backend not in ("hccl", "nccl", "gloo"):
        raise FaultError("user", "InvalidEnvironment", f"TANDEM_BACKEND={backend!r}: hccl | nccl | gloo")
    nodes = _int(env, "TANDEM_NODES", 1, 1)
    node_rank = _int(env, "TANDEM_NODE_RANK", 0, 0)
    if node_rank >= nodes:
        raise FaultError("user", "InvalidEnvironment", f"TANDEM_NODE_RANK={node_rank} >= TANDEM_NODES={nodes}")
    return Contract(
        job=env.get("TANDEM_JOB", "local"),
        namespace=env.get("TANDEM_NAMESPACE", "default"),
        attempt=_int(env, "TANDEM_ATTEMPT", 1, 0),
        job_uid=env.get("TANDEM_JOB_UID", ""),
        pool=env.get("TANDEM_POOL", "local"),
        accelerator=accelerator,  # type: ignore[arg-type]
        backend=backend,  # type: ignore[arg-type]
        nodes=nodes,
        node_rank=node_rank,
        devices_per_node=_int(env, "TANDEM_DEVICES_PER_NODE", 1, 1),
        master_addr=env.get("MASTER_ADDR", "127.0.0.1") or "127.0.0.1",
        master_port=_int(env, "MASTER_PORT", 29500, 1),
        checkpoint_dir=env.get("TANDEM_CHECKPOINT_DIR", "./checkpoints") or "./checkpoints",
        checkpoint_interval=_int(env, "TANDEM_CHECKPOINT_INTERVAL_STEPS", 200, 1),
        checkpoint_keep=_int(env, "TANDEM_CHECKPOINT_KEEP", 3, 1),
        training=parse_training_config(env.get("TANDEM_TRAINING_CONFIG")),
        fault_inject=env.get("TANDEM_FAULT_INJECT", ""),
        termination_log=env.get("TANDEM_TERMINATION_LOG", "/dev/termination-log") or "/dev/termination-log",
    )
