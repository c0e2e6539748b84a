"""Fault injection (`TANDEM_FAULT_INJECT`) for the demo and the tests.

Grammar: specs separated by `;`, each `KIND@step=N[,rank=R][,attempt=A][,flavor=F]`, for example
`interconnect@step=30,rank=1`, `hang@step=30`, `oom@step=5;device@step=9,rank=2,attempt=2`.
KIND: interconnect | hang | oom | device | user | kill. Without `rank` every rank faults; without
`attempt` every attempt does (a resumed attempt replays the step, so demos pin `attempt=1`).
FLAVOR picks whose error text is raised: hccl | nccl | gloo for interconnect, npu | cuda | cpu for
oom and device; the default follows the pool's backend / accelerator.

The raised errors have the types and texts that the real faults raise (sources cited beside each),
so the classifier, the termination message and the operator see exactly what production shows.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from tandem.runtime.faults import FaultError

KINDS = ("interconnect", "hang", "oom", "device", "user", "kill")
FLAVORS = ("hccl", "nccl", "gloo", "npu", "cuda", "cpu")
COLLECTIVE_KINDS = frozenset({"interconnect", "hang"})


@dataclass(frozen=True)
class InjectSpec:
    kind: str
    step: int
    rank: int | None = None
    attempt: int | None = None
    flavor: str | None = None

    def applies(self, step: int, rank: int, attempt: int) -> bool:
        return (
            step == self.step
            and (self.rank is None or self.rank == rank)
            and (self.attempt is None or self.attempt == attempt)
        )


def parse_inject(text: str) -> tuple[InjectSpec, ...]:
    specs = []
    for raw in text.replace("\n", ";").split(";"):
        raw = raw.strip()
        if not raw:
            continue
        kind, _, params = raw.partition("@")
        kind = kind.strip()
        if kind not in KINDS:
            raise FaultError("user", "InvalidFaultInject", f"TANDEM_FAULT_INJECT: unknown kind {kind!r} in {raw!r}")
        values: dict[str, str] = {}
        for item in params.split(","):
            key, sep, value = item.partition("=")
            if not sep:
                raise FaultError("user", "InvalidFaultInject", f"TANDEM_FAULT_INJECT: expected key=value in {raw!r}")
            values[key.strip()] = value.strip()
        unknown = set(values) - {"step", "rank", "attempt", "flavor"}
        if unknown or "step" not in values:
            raise FaultError(
                "user",
                "InvalidFaultInject",
                f"TANDEM_FAULT_INJECT: {raw!r} needs step= and knows rank, attempt, flavor",
            )
        if values.get("flavor") not in (None, *FLAVORS):
            raise FaultError("user", "InvalidFaultInject", f"TANDEM_FAULT_INJECT: unknown flavor in {raw!r}")
        try:
            specs.append(
                InjectSpec(
                    kind=kind,
                    step=int(values["step"]),
                    rank=int(values["rank"]) if "rank" in values else None,
                    attempt=int(values["attempt"]) if "attempt" in values else None,
                    flavor=values.get("flavor"),
                )
            )
        except ValueError as exc:
            raise FaultError("user", "InvalidFaultInject", f"TANDEM_FAULT_INJECT: {raw!r}: {exc}") from exc
    return tuple(specs)


def _stamp() -> str:
    now = time.time()
    return time.strftime("%Y-%m-%d-%H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"


def interconnect_error(flavor: str, rank: int, local_rank: int) -> BaseException:
    text = interconnect_text(flavor, rank, local_rank)
    if flavor == "nccl":
        import torch.distributed as dist

        return dist.DistBackendError(text)
    return RuntimeError(text)


def interconnect_text(flavor: str, rank: int, local_rank: int) -> str:
    """What the library of `flavor` says when a link breaks under a collective (no torch import)."""
    pid = os.getpid()
    if flavor == "nccl":
        # Shape of https://github.com/NVIDIA/nccl/issues/2076 (torch.distributed.DistBackendError).
        return (
            "NCCL error in: /pytorch/torch/csrc/distributed/c10d/NCCLUtils.hpp:268, remote process exited or "
            "there was a network error, NCCL version 2.21.5\n"
            "ncclRemoteError: A call failed possibly due to a network error or a remote process exiting "
            "prematurely.\nLast error:\n"
            f"socketProgressOpt: Call to recv from 10.0.0.{rank + 2}<33759> failed : Connection reset by peer"
        )
    if flavor == "gloo":
        # Gloo's receive timeout (gloo/transport/tcp/unbound_buffer.cc, visible in
        # https://github.com/pytorch/gloo/pull/228), as ProcessGroupGloo raises it.
        return (
            "[../third_party/gloo/gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 1800000ms for "
            "recv operation to complete"
        )
    # Shape of https://github.com/vllm-project/vllm-ascend/issues/486 (torch_npu, HcclAllreduce).
    return (
        "InnerRunOpApi:torch_npu/csrc/framework/OpParamMaker.cpp:281 OPS function error: HcclAllreduce, "
        "error code is 6\n"
        f"[ERROR] {_stamp()} (PID:{pid}, Device:{local_rank}, RankID:{rank}) ERR01100 OPS call acl api failed.\n"
        f"EI0006: [PID: {pid}] {_stamp()} Getting socket times out. Reason: Remote Rank did not send the data "
        "in time. Please check the reason for the rank being stuck\n"
        "        Solution: 1. Check the rank service processes with other errors or no errors in the cluster."
        "2. If this error is reported for all NPUs, check whether the time difference between the earliest "
        "and latest errors is greater than the connect timeout interval (HCCL_CONNECT_TIMEOUT)."
    )


def oom_error(flavor: str, local_rank: int) -> BaseException:
    import torch

    if flavor == "npu":
        # Shape of https://github.com/sgl-project/sglang/issues/15453 (torch_npu caching allocator).
        return torch.OutOfMemoryError(
            f"NPU out of memory. Tried to allocate 226.00 MiB (NPU {local_rank}; 60.96 GiB total capacity; "
            "58.13 GiB already allocated; 58.13 GiB current active; 97.16 MiB free; 58.42 GiB reserved in "
            "total by PyTorch) If reserved memory is >> allocated memory try setting max_split_size_mb to "
            "avoid fragmentation."
        )
    if flavor == "cuda":
        # Shape of the 2024 comment on https://github.com/pytorch/pytorch/issues/16417 (torch >= 2.1 wording).
        return torch.OutOfMemoryError(
            f"CUDA out of memory. Tried to allocate 22.00 MiB. GPU {local_rank} has a total capacity of "
            "23.65 GiB of which 11.06 MiB is free. Including non-PyTorch memory, this process has 23.60 GiB "
            "memory in use. Of the allocated memory 22.90 GiB is allocated by PyTorch, and 194.87 MiB is "
            "reserved by PyTorch but unallocated."
        )
    # Shape of https://github.com/mxfold/mxfold2/issues/20 (c10 DefaultCPUAllocator).
    return RuntimeError(
        "[enforce fail at alloc_cpu.cpp:75] err == 0. DefaultCPUAllocator: can't allocate memory: you tried "
        "to allocate 132426121216 bytes. Error code 12 (Cannot allocate memory)"
    )


def device_error(flavor: str, rank: int, local_rank: int) -> BaseException:
    if flavor == "npu":
        # Shape of https://github.com/vllm-project/vllm-ascend/issues/8186 (the NPU lost its heartbeat mid-run).
        return RuntimeError(
            "npuSynchronizeDevice:build/CMakeFiles/torch_npu.dir/compiler_depend.ts:479 NPU function error: "
            "AclrtSynchronizeDeviceWithTimeout, error code is 507010\n"
            f"[ERROR] {_stamp()} (PID:{os.getpid()}, Device:{local_rank}, RankID:{rank}) ERR00100 PTA call "
            "acl api failed\n"
            "[Error]: The task scheduler loses the heartbeat.\n"
            f"Device[{local_rank}] lost heartbeat.[FUNC:SyncTask][FILE:direct_hwts_engine.cc][LINE:407]"
        )
    # Shape of https://github.com/vllm-project/vllm/issues/5222 and huggingface/accelerate#1192.
    return RuntimeError(
        "CUDA error: uncorrectable ECC error encountered\nCUDA kernel errors might be asynchronously reported "
        "at some other API call, so the stacktrace below might be incorrect.\nFor debugging consider passing "
        "CUDA_LAUNCH_BLOCKING=1."
    )


@dataclass
class Injector:
    """Fires the specs that match this rank and attempt; `hold` blocks a hung rank (tests pass an Event)."""

    specs: tuple[InjectSpec, ...]
    rank: int
    local_rank: int
    attempt: int
    backend: str
    accelerator: str
    hold: Callable[[], None] = lambda: threading.Event().wait()

    def _flavor(self, spec: InjectSpec, default: str) -> str:
        return spec.flavor or default

    def _matching(self, step: int, collective: bool) -> list[InjectSpec]:
        return [
            s
            for s in self.specs
            if s.applies(step, self.rank, self.attempt) and (s.kind in COLLECTIVE_KINDS) == collective
        ]

    def due(self, step: int) -> bool:
        """Whether a fault of this rank and attempt fires at `step`."""
        return any(s.applies(step, self.rank, self.attempt) for s in self.specs)

    def compute(self, step: int) -> None:
        """Faults of the compute phase: device memory, device hardware, user code, a killed process."""
        device_flavor = {"npu": "npu", "gpu": "cuda"}.get(self.accelerator, "cpu")
        for spec in self._matching(step, collective=False):
            if spec.kind == "oom":
                raise oom_error(self._flavor(spec, device_flavor), self.local_rank)
            if spec.kind == "device":
                flavor = self._flavor(spec, "npu" if device_flavor == "npu" else "cuda")
                raise device_error(flavor, self.rank, self.local_rank)
            if spec.kind == "user":
                raise ValueError(f"injected user fault: bad training data at step {step}")
            if spec.kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)

    def collective(self, step: int) -> None:
        """Faults of the gradient collective: a broken link or a collective that never completes."""
        for spec in self._matching(step, collective=True):
            if spec.kind == "interconnect":
                raise interconnect_error(self._flavor(spec, self.backend), self.rank, self.local_rank)
            if spec.kind == "hang":
                self.hold()

