"""The operator and the runtime give the same class for the same evidence (issue 15): every public text of the
corpus and of the log-tail tests through both paths, and real exceptions raised in real frames (the job's own and a
library's) through the runtime's classify_exception and, as their traceback reads in a pod's log, through the
operator's classify_log."""

from __future__ import annotations

import errno
import linecache
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

from tandem.operator.classify import classify_log, classify_node, classify_pod
from tandem.operator.container_start import start_failure
from tandem.runtime.faults import classify_exception, classify_text

DATA = Path(__file__).resolve().parents[2] / "data" / "faults"
TEXTS = [(e["id"], e["text"]) for path in sorted((DATA / "corpus").glob("*.yaml"))
         for e in yaml.safe_load(path.read_text())]
TEXTS += [(e["id"], e["text"]) for e in yaml.safe_load((DATA / "log_tails.yaml").read_text())]
NCCL_REMOTE = ("NCCL error in: /pytorch/torch/csrc/distributed/c10d/NCCLUtils.hpp:268, remote process exited or "
               "there was a network error, NCCL version 2.21.5\nncclRemoteError: A call failed possibly due to a "
               "network error or a remote process exiting prematurely.")
HCCL_SOCKET = ("InnerRunOpApi:torch_npu/csrc/framework/OpParamMaker.cpp:281 OPS function error: HcclAllreduce, error "
               "code is 6\nEI0006: [PID: 1292363] 2025-04-08-18:07:20.444.436 Getting socket times out. Reason: Remote "
               "Rank did not send the data in time.")


@pytest.mark.parametrize("text", [t for _, t in TEXTS], ids=[i for i, _ in TEXTS])
def test_the_same_text_gets_the_same_class_on_both_sides(text: str) -> None:
    operator = classify_log(text)
    runtime = classify_text(text) or ("unknown", "Unrecognized" if text.strip() else "NoLog")
    assert (operator.fault_class.value, operator.reason) == runtime


def _raised_in(path: str, source: str, scope: dict[str, Any]) -> BaseException:
    """Run `source` as if it were the file at `path` (the job's own script, or a library under site-packages), and
    return what it raised, with its real traceback."""
    linecache.cache[path] = (len(source), None, source.splitlines(keepends=True), path)  # the traceback shows it
    try:
        exec(compile(source, path, "exec"), scope)
    except BaseException as exc:  # the point: whatever it raised
        return exc
    raise AssertionError("the source raised nothing")


def _eio_in(library: str, function: str, argument: str, with_path: bool) -> BaseException:
    """EIO raised by `function(argument)` of a library under site-packages, with the file's path (`with_path`, as
    an open() or a stat gives it) or bare (as an open file's read or close gives it)."""
    path = ", file" if with_path else ""
    source = (f"import errno\ndef {function}(file):\n    raise OSError(errno.EIO, 'Input/output error'{path})\n"
              f"{function}({argument})")
    return _raised_in(f"/usr/local/lib/python3.11/site-packages/{library}", source, {})


JOB = "/workspace/train.py"
# A data loader of the job's own, on asyncio: the member of the TaskGroup's ExceptionGroup is the job's error.
ASYNC_LOADER = """import asyncio
async def load(shard):
    raise ValueError(f"shard {shard} has no index")
async def main():
    async with asyncio.TaskGroup() as group:
        group.create_task(load(3))
asyncio.run(main())
"""
LIBRARY = "/usr/local/lib/python3.11/site-packages/torch_npu/distributed/fake_collective.py"
CASES: list[tuple[str, Callable[[], BaseException], tuple[str, str]]] = [
    ("value-error-in-the-job", lambda: _raised_in(JOB, "raise ValueError('lr must be positive')", {}),
     ("user", "PythonException")),
    ("runtime-error-in-the-jobs-own-words", lambda: _raised_in(JOB, "raise RuntimeError('bad batch')", {}),
     ("user", "PythonException")),
    ("missing-data-file", lambda: _raised_in(JOB, "open('/data/missing.jsonl')", {}), ("user", "PythonException")),
    ("a-bare-exception-in-the-jobs-own-words", lambda: _raised_in(JOB, "raise Exception('vocab does not match')", {}),
     ("user", "PythonException")),
    ("the-jobs-error-in-an-asyncio-task-group", lambda: _raised_in(JOB, ASYNC_LOADER, {}), ("user", "PythonException")),
    ("key-error-in-a-library", lambda: _raised_in(LIBRARY, "{}['input_ids']", {}), ("user", "PythonException")),
    ("library-runtime-error", lambda: _raised_in(LIBRARY, "raise RuntimeError('something new')", {}),
     ("unknown", "RuntimeError")),
    ("device-oom", lambda: _raised_in(LIBRARY, "raise torch.OutOfMemoryError('NPU out of memory. Tried to allocate "
                                               "2.00 GiB')", {"torch": torch}), ("oom", "DeviceOOM")),
    ("nccl-remote-error", lambda: _raised_in(LIBRARY, "raise torch.distributed.DistBackendError(m)",
                                             {"torch": torch, "m": NCCL_REMOTE}), ("interconnect", "NcclRemoteError")),
    ("hccl-socket-timeout", lambda: _raised_in(LIBRARY, "raise RuntimeError(m)", {"m": HCCL_SOCKET}),
     ("interconnect", "HcclSocketTimeout")),
    ("the-job-re-raised-the-librarys-text", lambda: _raised_in(JOB, "raise RuntimeError(m)", {"m": HCCL_SOCKET}),
     ("interconnect", "HcclSocketTimeout")),
    ("the-jobs-wrapper-around-a-library-error", lambda: _raised_in(
        JOB, "try:\n    raise torch.distributed.DistBackendError(m)\nexcept Exception as e:\n"
             "    raise ValueError('step failed') from e", {"torch": torch, "m": NCCL_REMOTE}),
     ("interconnect", "NcclRemoteError")),  # judged by the error it wraps
    ("enospc-off-the-checkpoint-volume", lambda: OSError(errno.ENOSPC, "No space left on device", "/tmp/x"),
     ("storage", "DiskFull")),
    ("a-bare-backend-error", lambda: torch.distributed.DistBackendError("boom"), ("unknown", "DistBackendError")),
    # EIO on a named file is the filesystem under it failing, wherever the job read or wrote it; a bare EIO (no
    # path: an open file's read, a terminal) is the volume's only inside a save.
    ("eio-while-torch-saves", lambda: _eio_in("torch/serialization.py", "save", "'/ckpt/step-10/model.pt'", False),
     ("storage", "VolumeIOError")),
    ("eio-while-numpy-reads-a-sample", lambda: _eio_in("numpy/lib/npyio.py", "load", "'/data/train/0001.npy'", False),
     ("unknown", "OSError")),
    ("eio-on-a-named-dataset-file", lambda: _eio_in("numpy/lib/npyio.py", "load", "'/data/train/0001.npy'", True),
     ("storage", "VolumeIOError")),
    ("eio-on-a-device-file-is-no-volume", lambda: _eio_in("serial/serialposix.py", "open_port", "'/dev/ttyS11'", True),
     ("unknown", "OSError")),
]


@pytest.mark.parametrize(("make", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_raised_exception_gets_the_same_class_on_both_sides(make: Callable[[], BaseException],
                                                              expected: tuple[str, str]) -> None:
    exc = make()
    runtime = classify_exception(exc)[:2]
    pod_log = "".join(f"[rank1]: {line}\n" for line in "".join(traceback.format_exception(exc)).splitlines())
    operator = classify_log(pod_log)
    assert runtime == (operator.fault_class.value, operator.reason) == expected



def test_torchruns_summary_of_a_failed_worker_reads_as_the_workers_exception(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torch's own `@record` writes the worker's error file and its ChildFailedError quotes it in the summary that
    ends a torchrun log: the operator reads that summary as the runtime reads the exception."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError, ProcessFailure, record

    error_file = tmp_path / "error.json"
    monkeypatch.setenv("TORCHELASTIC_ERROR_FILE", str(error_file))
    raised = _raised_in(JOB, "def main():\n    raise ValueError('global batch 250 is not divisible by 8')\n"
                             "record(main)()\n", {"record": record})
    summary = ChildFailedError("train.py", {0: ProcessFailure(0, 4242, 1, str(error_file))}).format_msg()
    assert "  traceback : Traceback (most recent call last):" in summary
    operator = classify_log(f"torch.distributed.elastic.multiprocessing.errors.ChildFailedError: {summary}")
    assert classify_exception(raised)[:2] == (operator.fault_class.value, operator.reason) == ("user",
                                                                                               "PythonException")


# What Kubernetes writes into a pod's status, read by the operator from its fields, and the same words as
# `kubectl describe pod` shows them (a status line, an Event), which a person pastes into `tandem classify --log`:
# the kubelet's admission rejections (pkg/kubelet/lifecycle/predicate.go, pkg/kubelet/cm/devicemanager/manager.go;
# "Pod was rejected: " is the kubelet's prefix), a container the kubelet lost (pkg/kubelet/kubelet_pods.go), the
# scheduler's preemption and the taint manager's eviction (their Events; the pod's DisruptionTarget condition).
def _rejected(reason: str, message: str) -> dict[str, Any]:
    return {"phase": "Failed", "reason": reason, "message": f"Pod was rejected: {message}"}


def _disrupted(reason: str) -> dict[str, Any]:
    return {"phase": "Failed", "conditions": [{"type": "DisruptionTarget", "status": "True", "reason": reason}]}


LOST = "The container could not be located when the pod was terminated"
NO_HEALTHY = ("Allocate failed due to no healthy devices present; cannot allocate unhealthy devices "
              "huawei.com/Ascend910, which is unexpected")
NO_LONGER_HEALTHY = ("Allocate failed due to previously allocated devices are no longer healthy; cannot allocate "
                     "unhealthy devices nvidia.com/gpu, which is unexpected")
NO_ROOM = "Node didn't have enough resource: huawei.com/Ascend910, requested: 8, used: 8, capacity: 8"
KUBERNETES_SAYS = [
    ("no-healthy-devices", _rejected("UnexpectedAdmissionError", NO_HEALTHY),
     f"  Warning  UnexpectedAdmissionError  12s  kubelet  {NO_HEALTHY}",
     ("node", "UnexpectedAdmissionError"), ("node", "UnexpectedAdmissionError")),
    ("devices-no-longer-healthy", _rejected("UnexpectedAdmissionError", NO_LONGER_HEALTHY),
     f"Message:  Pod was rejected: {NO_LONGER_HEALTHY}",
     ("node", "UnexpectedAdmissionError"), ("node", "UnexpectedAdmissionError")),
    ("node-affinity", _rejected("NodeAffinity", "Predicate NodeAffinity failed"),
     "  Warning  NodeAffinity  3s  kubelet  Predicate NodeAffinity failed",
     ("node", "NodeAffinity"), ("node", "NodeAffinity")),
    # The kubelet's reason names the resource (OutOf<name>); the table has one reason for every resource.
    ("out-of-devices", _rejected("OutOfhuawei.com/Ascend910", NO_ROOM),
     f"  Warning  OutOfhuawei.com/Ascend910  5s  kubelet  {NO_ROOM}",
     ("node", "OutOfhuawei.com/Ascend910"), ("node", "OutOfResource")),
    ("container-lost", {"phase": "Failed", "containerStatuses": [{"name": "trainer", "state": {"terminated": {
        "reason": "ContainerStatusUnknown", "message": LOST, "exitCode": 137}}}]},
     f"    State:          Terminated\n      Reason:       ContainerStatusUnknown\n      Message:      {LOST}\n"
     "      Exit Code:    137", ("node", "ContainerStatusUnknown"), ("node", "ContainerStatusUnknown")),
    # The condition's reason and the Event's words name the same disruption differently; the class is the same.
    ("preempted", _disrupted("PreemptionByScheduler"),
     "  Normal  Preempted  20s  default-scheduler  Preempted by pod 5b1c2d3e-aaaa-bbbb-cccc-0123456789ab on node n1",
     ("node", "PreemptionByScheduler"), ("node", "Preempted")),
    ("tainted-node", _disrupted("DeletionByTaintManager"),
     "  Normal  TaintManagerEviction  40s  taint-eviction-controller  Marking for deletion Pod default/llama-a1-0",
     ("node", "DeletionByTaintManager"), ("node", "DisruptionTarget")),
]


@pytest.mark.parametrize(("status", "words", "from_the_status", "from_the_words"), [c[1:] for c in KUBERNETES_SAYS],
                         ids=[c[0] for c in KUBERNETES_SAYS])
def test_what_kubernetes_wrote_reads_the_same_from_the_pod_and_from_its_words(
        status: dict[str, Any], words: str, from_the_status: tuple[str, str],
        from_the_words: tuple[str, str]) -> None:
    pod = {"metadata": {"name": "llama-a1-0"},
           "spec": {"nodeName": "n1", "containers": [{"name": "trainer", "command": ["python", "train.py"]}]},
           "status": status}
    read = classify_pod(pod, None, [])
    log = classify_log(words)
    assert ((read.fault_class.value, read.reason), (log.fault_class.value, log.reason)) == (
        from_the_status, from_the_words)


def test_a_node_the_control_plane_lost_reads_the_same_from_the_node_and_from_kubectl_describe() -> None:
    """The node lifecycle controller's Ready=Unknown condition (pkg/controller/nodelifecycle), read by the operator
    from the Node, and its row as `kubectl describe node` prints it, pasted into `tandem classify --log`."""
    said = "Kubelet stopped posting node status."
    node = {"metadata": {"name": "n1"}, "status": {"conditions": [
        {"type": "Ready", "status": "Unknown", "reason": "NodeStatusUnknown", "message": said}]}}
    described = (f"  Ready   Unknown   Mon, 17 Feb 2016 13:58:47 +0000   Mon, 17 Feb 2016 13:59:30 +0000   "
                 f"NodeStatusUnknown   {said}")
    read, log = classify_node(node, []), classify_log(described)
    assert (read.fault_class.value, read.reason) == (log.fault_class.value, log.reason) == ("node", "NodeUnreachable")


# A container that never ran its command (tests/data/faults/container_start.yaml: real texts, where the kubelet puts
# them). The operator reads the kubelet's reason and exit code around the message; the message itself, in a log or
# pasted, reads to the same class through the same table. Where the operator waits START_GRACE_SECONDS (a registry
# that is down, a runtime that is slow), a message alone cannot know how long it lasted: `unknown`, a restart.
START_FAILURES = yaml.safe_load((DATA / "container_start.yaml").read_text())
FROM_THE_MESSAGE = {
    "run-container-error-exec-not-found": ("user", "CommandNotFound"),
    "run-container-error-permission-denied": ("user", "CommandNotExecutable"),
    "containerd-start-error-exec-not-found": ("user", "CommandNotFound"),
    "containerd-start-error-no-such-file": ("user", "CommandNotFound"),
    "crio-create-container-error-not-in-path": ("user", "CommandNotFound"),
    "crio-create-container-error-mount": ("unknown", "Unrecognized"),
    "shell-command-not-found": ("user", "CommandNotFound"),
    "shell-permission-denied": ("user", "CommandNotExecutable"),
    "image-manifest-not-found": ("unknown", "Unrecognized"),
    "image-pull-back-off": ("unknown", "Unrecognized"),
    "invalid-image-name": ("user", "InvalidImageName"),
    "create-container-config-error-configmap": ("user", "CreateContainerConfigError"),
    "create-container-config-error-kubelet-not-synced": ("node", "KubeletNotSynced"),
    "create-container-config-error-secret-cache-not-synced": ("unknown", "KubeletCacheNotSynced"),
}


@pytest.mark.parametrize("entry", START_FAILURES, ids=[e["id"] for e in START_FAILURES])
def test_a_container_that_never_started_reads_the_same_from_its_state_and_its_message(entry: dict[str, Any]) -> None:
    state = {key: entry[key] for key in ("reason", "message", "exitCode") if key in entry}
    pod = {"metadata": {"name": "llama-a1-0"}, "spec": {"nodeName": "n1"},
           "status": {"containerStatuses": [{"name": "trainer", "state": {entry["state"]: state}}]}}
    found = start_failure(pod)
    said = classify_log(entry["message"])
    assert found is not None
    assert ((found.found.fault_class.value, found.found.reason, found.grace), (said.fault_class.value, said.reason)) \
        == ((entry["class"], entry["verdict"], entry["grace"]), FROM_THE_MESSAGE[entry["id"]])
