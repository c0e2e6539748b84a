"""Fault classification of real, publicly posted error texts; the injected errors look the same."""

from __future__ import annotations

import signal

import pytest
import torch

from tandem.runtime.faults import (
    Fault,
    FaultError,
    classify_exception,
    classify_exit,
    classify_text,
    exit_code,
    root_cause,
    termination_message,
)
from tandem.runtime.inject import Injector, InjectSpec, parse_inject

# (source, excerpt of the real error text, expected class, expected reason)
REAL_TEXTS = [
    (
        "https://github.com/vllm-project/vllm-ascend/issues/486",
        "RuntimeError: InnerRunOpApi:torch_npu/csrc/framework/OpParamMaker.cpp:281 OPS function error: "
        "HcclAllreduce, error code is 6\n[ERROR] 2025-04-08-18:07:20 (PID:1292363, Device:1, RankID:1) ERR01100 "
        "OPS call acl api failed.\nEI0006: [PID: 1292363] 2025-04-08-18:07:20.444.436 Getting socket times out. "
        "Reason: Remote Rank did not send the data in time. Please check the reason for the rank being stuck",
        "interconnect",
        "HcclSocketTimeout",
    ),
    (
        "https://github.com/vllm-project/vllm-ascend/issues/3413",
        "[ERROR] 2025-10-11-15:09:34 (PID:2969, Device:0, RankID:101) ERR00100 PTA call acl api failed.\n"
        "EI0002: [PID: 2969] 2025-10-11-15:09:34.713.335 The wait execution of the Notify register times out. "
        "Reason: The Notify register has not received the Notify record from remote rank: [24]. ... "
        "(default 1800s, You can set the interval by using HCCL_EXEC_TIMEOUT.)",
        "interconnect",
        "HcclExecTimeout",
    ),
    (
        # An HCCL call's bare failure, without the EI code or link line that says why: no link is proven.
        "https://github.com/hiyouga/LlamaFactory/issues/3839",
        "RuntimeError: [ERROR] HCCL error in: torch_npu/csrc/distributed/ProcessGroupHCCL.cpp:64\n[ERROR] "
        "2024-05-21-11:57:54 (PID:927000, Device:3, RankID:3) ERR02200 DIST call hccl api failed.",
        "unknown",
        "HcclCallFailed"  # torch_npu's ERR02200 (tandem/faults/codes.yaml),
    ),
    (
        "https://github.com/hiyouga/LlamaFactory/issues/7396",
        "[rank0]:[E321 02:07:08.408271257 ProcessGroupNCCL.cpp:607] [Rank 0] Watchdog caught collective "
        "operation timeout: WorkNCCL(SeqNum=1580, OpType=ALLREDUCE, NumelIn=466119168, NumelOut=466119168, "
        "Timeout(ms)=600000) ran for 600060 milliseconds before timing out.",
        "interconnect",
        "CollectiveTimeout",
    ),
    (
        "https://github.com/pytorch/pytorch/issues/149984",
        "Collective WorkNCCL(SeqNum=2, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=1000000) raised the "
        "following async exception: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details), "
        "NCCL version 2.25.1\nncclSystemError: System call (e.g. socket, malloc) or external library call "
        "failed or device error.",
        "interconnect",
        "NcclSystemError",
    ),
    (
        "https://github.com/NVIDIA/nccl/issues/2076",
        "torch.distributed.DistBackendError: NCCL error in: /pytorch/torch/csrc/distributed/c10d/NCCLUtils.hpp"
        ":268, remote process exited or there was a network error, NCCL version 2.21.5\nncclRemoteError: A call "
        "failed possibly due to a network error or a remote process exiting prematurely.",
        "interconnect",
        "NcclRemoteError",
    ),
    (
        "https://github.com/sgl-project/sglang/issues/15453",
        "RuntimeError: NPU out of memory. Tried to allocate 226.00 MiB (NPU 2; 60.96 GiB total capacity; 58.13 "
        "GiB already allocated; 58.13 GiB current active; 97.16 MiB free; 58.42 GiB reserved in total by PyTorch)",
        "oom",
        "DeviceOOM",
    ),
    (
        "https://github.com/murong-xu/CADS/issues/4",
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 22.78 GiB. GPU 0 has a total capacity of "
        "31.47 GiB of which 12.73 GiB is free.",
        "oom",
        "DeviceOOM",
    ),
    (
        "https://github.com/mxfold/mxfold2/issues/20",
        "RuntimeError: [enforce fail at alloc_cpu.cpp:75] err == 0. DefaultCPUAllocator: can't allocate memory: "
        "you tried to allocate 132426121216 bytes. Error code 12 (Cannot allocate memory)",
        "oom",
        "HostOOM",
    ),
    (
        "https://github.com/vllm-project/vllm/issues/5222",
        "RuntimeError: CUDA error: uncorrectable ECC error encountered",
        "device",
        "EccError",
    ),
    (
        "https://github.com/vllm-project/vllm-ascend/issues/1443",
        "RuntimeError: npuSynchronizeDevice:build/CMakeFiles/torch_npu.dir/compiler_depend.ts:479 NPU function "
        "error: AclrtSynchronizeDeviceWithTimeout, error code is 507048",
        # ACL 507048 is a task that timed out (the HCCL line, EI0002, is what named the link): no class.
        "unknown",
        "TaskTimeout",
    ),
]


@pytest.mark.parametrize(("source", "text", "cls", "reason"), REAL_TEXTS, ids=[r[3] + "@" + r[0] for r in REAL_TEXTS])
def test_real_error_texts_are_classified(source: str, text: str, cls: str, reason: str) -> None:
    assert classify_text(text) == (cls, reason), source


def test_exception_types_and_user_errors() -> None:
    assert classify_exception(FaultError("user", "InvalidConfig", "x"))[:2] == ("user", "InvalidConfig")
    assert classify_exception(torch.OutOfMemoryError("weird text"))[:2] == ("oom", "DeviceOOM")
    # A backend error says nothing of a link unless the library's text in it does (the table decides).
    assert classify_exception(torch.distributed.DistBackendError("boom"))[:2] == ("unknown", "DistBackendError")
    assert classify_exception(ModuleNotFoundError("No module named 'mylib'"))[:2] == ("user", "ImportError")
    assert classify_exception(ModuleNotFoundError("No module named 'torch_npu'"))[:2] == ("user", "TorchNpuMissing")
    assert classify_exception(KeyError("input_ids"))[:2] == ("user", "PythonException")
    assert classify_exception(OSError(5, "Input/output error"))[:2] == ("unknown", "OSError")
    assert classify_exception(RuntimeError("CUDA error: out of memory"))[:2] == ("oom", "DeviceOOM")
    assert classify_exception(RuntimeError("something new"))[:2] == ("unknown", "RuntimeError")


def test_exit_statuses_without_a_report() -> None:
    # SIGKILL proves an OOM only when the pod's memory cgroup counted an OOM kill (the launcher reads it).
    assert classify_exit(-signal.SIGKILL)[:2] == ("unknown", "Killed")
    assert classify_exit(-signal.SIGKILL, oom_killed=True)[:2] == ("oom", "OOMKilled")
    assert classify_exit(-signal.SIGTERM)[:2] == ("node", "Terminated")
    assert classify_exit(-signal.SIGSEGV)[:2] == ("unknown", "Crashed")
    assert classify_exit(3)[0] == "interconnect"
    assert classify_exit(77)[0] == "unknown"


def test_root_cause_is_the_first_fault_not_its_consequences() -> None:
    victim = Fault("interconnect", "PeerConnectionLost", "Connection closed by peer", rank=0, step=3, time=10.0)
    cause = Fault("oom", "DeviceOOM", "NPU out of memory", rank=3, step=3, time=10.5)
    later = Fault("interconnect", "CollectiveHang", "stuck", rank=1, step=3, time=11.0)
    done = Fault("none", "Completed", "ok", rank=2, step=3, time=1.0)
    # A lost peer connection is what a rank sees *because* another died: the OOM is the cause.
    assert root_cause([later, victim, cause, done]) == cause
    assert root_cause([later, victim]) == later
    assert root_cause([victim]) == victim
    # A rank that has waited in the collective since before the OOM was waiting for the OOMing rank.
    waiting = Fault("interconnect", "CollectiveHang", "stuck", rank=1, step=3, time=9.0)
    assert root_cause([waiting, cause]) == cause
    stuck_in_compute = Fault("interconnect", "CollectiveHang", "compute", rank=2, step=3, time=8.0)
    assert root_cause([waiting, stuck_in_compute]) == stuck_in_compute
    assert root_cause([done]) is None


def test_termination_message_shape() -> None:
    fault = Fault("interconnect", "HcclSocketTimeout", "EI0006 ...", rank=3, step=1234, time=1.0)
    msg = termination_message(fault, step=1234, checkpoint_step=1200, resumed_from=800, finished=False)
    assert msg == {
        "class": "interconnect", "reason": "HcclSocketTimeout", "message": "EI0006 ...", "rank": 3,
        "step": 1234, "checkpointStep": 1200, "resumedFrom": 800,
    }  # fmt: skip
    assert exit_code(msg) == 3
    ok = termination_message(None, step=40, checkpoint_step=40, resumed_from=None, finished=True)
    assert (ok["class"], exit_code(ok)) == ("none", 0)
    lost = termination_message(None, step=7, checkpoint_step=6, resumed_from=None, finished=False)
    assert lost["class"] == "unknown" and exit_code(lost) != 0


def test_inject_grammar() -> None:
    specs = parse_inject("interconnect@step=30,rank=1; hang@step=30;oom@step=5,attempt=1,flavor=cuda")
    assert specs == (
        InjectSpec("interconnect", 30, rank=1),
        InjectSpec("hang", 30),
        InjectSpec("oom", 5, attempt=1, flavor="cuda"),
    )
    assert specs[2].applies(5, rank=7, attempt=1) and not specs[2].applies(5, rank=7, attempt=2)
    for bad in ("explode@step=1", "oom@rank=1", "oom@step=x", "oom@step=1,color=red", "oom@step=1,flavor=tpu"):
        with pytest.raises(FaultError) as err:
            parse_inject(bad)
        assert err.value.cls == "user"


@pytest.mark.parametrize(
    ("spec", "backend", "accelerator", "cls", "reason"),
    [
        ("interconnect@step=1", "hccl", "npu", "interconnect", "HcclSocketTimeout"),
        ("interconnect@step=1", "nccl", "gpu", "interconnect", "NcclRemoteError"),
        ("interconnect@step=1", "gloo", "cpu", "interconnect", "CollectiveTimeout"),
        ("oom@step=1", "hccl", "npu", "oom", "DeviceOOM"),
        ("oom@step=1", "nccl", "gpu", "oom", "DeviceOOM"),
        ("oom@step=1", "gloo", "cpu", "oom", "HostOOM"),
        ("device@step=1", "hccl", "npu", "device", "DeviceLost"),
        ("device@step=1", "nccl", "gpu", "device", "EccError"),
        ("user@step=1", "gloo", "cpu", "user", "PythonException"),
    ],
)
def test_injected_errors_classify_like_the_real_ones(
    spec: str, backend: str, accelerator: str, cls: str, reason: str
) -> None:
    injector = Injector(parse_inject(spec), rank=1, local_rank=1, attempt=1, backend=backend, accelerator=accelerator)
    injector.compute(2)
    injector.collective(2)  # another step: nothing happens
    with pytest.raises(BaseException) as err:
        injector.compute(1)
        injector.collective(1)
    assert classify_exception(err.value)[:2] == (cls, reason)


def test_injected_hang_blocks_only_the_named_rank() -> None:
    held: list[int] = []
    specs = parse_inject("hang@step=4,rank=1")
    for rank in (0, 1):
        Injector(specs, rank, rank, 1, "gloo", "cpu", hold=lambda r=rank: held.append(r)).collective(4)
    assert held == [1]

