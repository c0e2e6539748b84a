"""`tandem.sdk.init()`: the device and the process group of this attempt, for a script started by torchrun (or
any launcher that sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT) under tandem-run
(docs/design.md#the-sdk). Imports torch; the vendor plugin (torch_npu) only on an NPU pool, through the runtime's
device seam (tandem.runtime.device)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from tandem.backends import effective_backend
from tandem.runtime.device import DeviceLayer, load_device_layer
from tandem.runtime.faults import FaultError
from tandem.runtime.timeouts import for_environment
from tandem.sdk import ResumePoint, resume_point

# Before tandem-run's own deadline: a collective that waits longer ends in the library's error, not a silent hang.
DEFAULT_PROGRESS_TIMEOUT = 600.0
# Pods of one job start minutes apart (image pulls, scheduling): the rendezvous waits longer than a step.
RENDEZVOUS_TIMEOUT = timedelta(minutes=15)


@dataclass(frozen=True)
class Context:
    """Who this process is in the attempt, and where it resumes from."""

    rank: int
    world_size: int
    local_rank: int
    local_world_size: int
    backend: str
    device: torch.device
    layer: DeviceLayer  # the device seam: autocast, seeding, RNG state, memory statistics
    resume: ResumePoint | None


def _int(env: Mapping[str, str], name: str, default: int | None = None) -> int:
    value = env.get(name)
    if value is None and default is not None:
        return default
    try:
        return int(str(value))
    except ValueError:
        raise FaultError("user", "InvalidEnvironment", f"{name}={value!r}: tandem.sdk.init() needs an integer "
                         "(start the script with torchrun, which sets it)") from None


def _join(backend: str, rank: int, world: int, env: Mapping[str, str], timeout: timedelta) -> None:
    """Join the process group. Under torchrun its agent's store is the rendezvous (env://); started by another
    launcher (tandem-train's), rank 0 hosts the store at MASTER_ADDR:MASTER_PORT and waits RENDEZVOUS_TIMEOUT."""
    if env.get("TORCHELASTIC_RUN_ID") is not None:
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout)
        return
    store = dist.TCPStore(env.get("MASTER_ADDR") or "127.0.0.1", _int(env, "MASTER_PORT", 29500), world,
                          is_master=rank == 0, timeout=RENDEZVOUS_TIMEOUT)
    dist.init_process_group(backend, store=store, rank=rank, world_size=world, timeout=timeout)


def init(env: Mapping[str, str] | None = None, *, mixed_precision: bool | None = None,
         timeout_seconds: float | None = None) -> Context:
    """Bind this process to its device and join the attempt's process group with the pool's backend (gloo on a
    CPU; a process started without a launcher, with no WORLD_SIZE, trains alone without one) and a timeout just
    beyond `timeout_seconds` (default: tandem-run's progress deadline); idempotent within a process.
    `mixed_precision` forces bf16 autocast on (True) or off (False); None: on for an accelerator."""
    env = os.environ if env is None else env
    accelerator = env.get("TANDEM_ACCELERATOR", "cpu")
    backend = effective_backend(accelerator, env.get("TANDEM_BACKEND"))
    rank, world = _int(env, "RANK", 0), _int(env, "WORLD_SIZE", 1)
    local_rank, local_world = _int(env, "LOCAL_RANK", 0), _int(env, "LOCAL_WORLD_SIZE", world)
    layer = load_device_layer(accelerator, backend, local_rank, local_world, mixed_precision=mixed_precision)
    layer.setup()
    launched = "WORLD_SIZE" in env  # by torchrun or another launcher: a process group even for a world of 1
    if (world > 1 or launched) and not dist.is_initialized():
        seconds = timeout_seconds or float(env.get("TANDEM_PROGRESS_TIMEOUT_SECONDS") or DEFAULT_PROGRESS_TIMEOUT)
        _join(backend, rank, world, env, for_environment(accelerator, seconds, env).process_group)
    return Context(rank, world, local_rank, local_world, backend, layer.device, layer, resume_point())
