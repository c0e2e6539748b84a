"""Classification of failed pods: every source docs/design.md#fault-classes lists, the precedence between them,
the runtime's exit codes, and input that is not what it should be. Log tails: test_logtail.py; containers that
cannot start: test_container_start.py."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import make_node, make_pod

from tandem.operator.api_types import FaultClass
from tandem.operator.classify import (
    Classification,
    classify_log,
    classify_node,
    classify_pod,
)
from tandem.operator.device_reports import DeviceFault

DATA = Path(__file__).parents[2] / "data" / "faults"
LOG_TAILS = yaml.safe_load((DATA / "log_tails.yaml").read_text())
NCCL_TIMEOUT = next(e["text"] for e in LOG_TAILS if e["id"] == "nccl-watchdog-allreduce")
CUDA_OOM = next(e["text"] for e in LOG_TAILS if e["id"] == "cuda-oom-expandable-segments")
KEY_ERROR = next(e["text"] for e in LOG_TAILS if e["id"] == "user-keyerror-collator")


def report(cls: str, reason: str = "R", message: str = "m", **extra: Any) -> str:
    return json.dumps({"class": cls, "reason": reason, "message": message, "rank": 0, **extra})


def failed(exit_code: int | None = 1, reason: str | None = None, message: str = "", node: str | None = "n1",
           status: dict[str, Any] | None = None, command: list[str] | None = None) -> dict[str, Any]:
    """A failed pod as the operator creates it (its container runs `command`, Tandem's launcher unless said);
    `reason` and `message` are its container's, `status` goes into the pod's status."""
    pod = make_pod("llama", 1, 0, phase="Failed", node=node, exit_code=exit_code, reason=reason, message=message)
    pod["spec"]["containers"] = [{"name": "trainer", "image": "example.org/tandem-runtime:npu",
                                  "command": command or ["tandem-train"]}]
    pod["status"].update(status or {})
    return pod


def condition(kind: str, status: str = "True", reason: str = "", message: str = "") -> dict[str, str]:
    return {"type": kind, "status": status, "reason": reason, "message": message}


def node(name: str = "n1", ready: str = "True", taints: list[str] | None = None) -> dict[str, Any]:
    body = make_node(name, "ascend-910b")
    why = "KubeletReady" if ready == "True" else "NodeStatusUnknown"
    says = "Kubelet stopped posting node status." if ready == "Unknown" else ""
    body["status"]["conditions"] = [condition("Ready", ready, why, says)]
    body["spec"] = {"taints": [{"key": t, "effect": "NoExecute"} for t in taints or []]}
    return body


CHIP = DeviceFault("n1", FaultClass.DEVICE, "NpuChipFault", "Ascend910-4: CardUnhealthy SeparateNPU",
                   "ascend-device-plugin")
LINK = DeviceFault("n1", FaultClass.INTERCONNECT, "NpuLinkFault", "Ascend910-0: link down 81078603",
                   "ascend-device-plugin")


def got(c: Classification) -> tuple[str, str, str]:
    return c.fault_class.value, c.reason, c.source


# --- (a) the runtime's termination message ------------------------------------------------------------------------

def test_report_gives_class_reason_and_steps() -> None:
    message = report("interconnect", "HcclTimeout", "EI0006 ...", step=1234, checkpointStep=1200, resumedFrom=800)
    found = classify_pod(failed(3, "Error", message), node(), [])
    assert got(found) == ("interconnect", "HcclTimeout", "termination-message")
    assert (found.step, found.checkpoint_step, found.resumed_from, found.node) == (1234, 1200, 800, "n1")
    assert found.message == "EI0006 ..."


@pytest.mark.parametrize("cls", ["interconnect", "device", "node", "oom", "storage", "user"])
def test_report_decides_every_class(cls: str) -> None:
    assert classify_pod(failed(3, "Error", report(cls)), node(), []).fault_class == cls


def test_report_beats_the_log_tail_of_another_container_and_oomkilled() -> None:
    pod = failed(4, "Error", report("device", "NpuError", step=10))
    pod["status"]["containerStatuses"].append(
        {"name": "sidecar", "state": {"terminated": {"exitCode": 137, "reason": "OOMKilled", "message": CUDA_OOM}}})
    assert got(classify_pod(pod, node(), [])) == ("device", "NpuError", "termination-message")


def test_report_class_none_on_a_failed_pod_decides_nothing_but_keeps_the_steps() -> None:
    message = report("none", "Completed", step=50, checkpointStep=50, resumedFrom=None)
    found = classify_pod(failed(137, "OOMKilled", message), node(), [])
    assert got(found) == ("oom", "OOMKilled", "container-state")
    assert (found.step, found.checkpoint_step, found.resumed_from) == (50, 50, None)


def test_report_unknown_yields_to_a_later_source_and_stays_the_fallback() -> None:
    message = report("unknown", "Incomplete", "the workers exited before the last step")
    assert got(classify_pod(failed(1, "Error", message), node(ready="False"), [])) == ("node", "NodeNotReady", "node")
    assert got(classify_pod(failed(1, "Error", message), node(), [])) == ("unknown", "Incomplete",
                                                                          "termination-message")


@pytest.mark.parametrize("message", ['{"class": "banana"}', '{"class": null}', '{"class": "device", "step": "ten"}'])
def test_odd_reports(message: str) -> None:
    found = classify_pod(failed(1, "Error", message), node(), [])
    assert got(found) == (("device", "Reported", "termination-message") if "device" in message
                          else ("unknown", "ExitCode", "container-state")) and found.step is None


def test_a_json_log_line_is_a_log_tail_not_a_report() -> None:
    line = json.dumps({"event": "worker failed", "error": "RuntimeError: NPU out of memory. Tried to allocate 2 GiB"})
    assert got(classify_pod(failed(1, "Error", line), node(), [])) == ("oom", "DeviceOOM", "log-tail")


def test_truncated_report_is_read_as_a_log_tail() -> None:
    found = classify_pod(failed(1, "Error", report("interconnect")[:25]), node(), [])
    assert found.fault_class == FaultClass.UNKNOWN


# --- (b) the container state ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("exit_code", "reason", "expected"),
    [
        (137, "OOMKilled", ("oom", "OOMKilled", "container-state")),
        (2, "Error", ("user", "ExitCode", "container-state")),
        (3, "Error", ("interconnect", "ExitCode", "container-state")),
        (4, "Error", ("device", "ExitCode", "container-state")),
        (5, "Error", ("oom", "ExitCode", "container-state")),
        (6, "Error", ("node", "ExitCode", "container-state")),
        (137, "ContainerStatusUnknown", ("node", "ContainerStatusUnknown", "container-state")),
        # Weak: nothing later decides, so they stand.
        (137, "Error", ("unknown", "Killed", "container-state")),
        (134, "Error", ("unknown", "Aborted", "container-state")),
        (143, "Error", ("node", "Terminated", "container-state")),
        (139, "Error", ("unknown", "Crashed", "container-state")),
        (1, "Error", ("unknown", "ExitCode", "container-state")),
        (255, "Error", ("unknown", "Crashed", "container-state")),
    ],
)
def test_container_state(exit_code: int, reason: str, expected: tuple[str, str, str]) -> None:
    assert got(classify_pod(failed(exit_code, reason), node(), [])) == expected


CUSTOM = ["torchrun", "--nproc-per-node=8", "train.py"]


def runtime_code(code: int, cls: str) -> Classification:
    return Classification(FaultClass(cls), "ExitCode", f"container trainer exited with code {code}, the runtime's "
                          f"code for {cls}, and left no termination message", "container-state", node="n1")


def foreign_code(code: int) -> Classification:
    return Classification(FaultClass.UNKNOWN, "ExitCode", f"container trainer exited with code {code}; its command "
                          "is not Tandem's launcher and left no report, so the code names no class", "container-state",
                          node="n1")


RUNTIME_CODES = [(3, "interconnect"), (4, "device"), (5, "oom"), (6, "node"), (7, "storage")]


@pytest.mark.parametrize(("code", "cls"), RUNTIME_CODES)
@pytest.mark.parametrize("command", [["tandem-train"], ["/usr/local/bin/tandem-train", "--config", "/etc/t.yaml"],
                                     ["tandem-run", "--", "torchrun", "train.py"]])
def test_the_runtime_exit_codes_name_a_class_when_tandems_launcher_ran(code: int, cls: str, command: list[str]) -> None:
    assert classify_pod(failed(code, "Error", command=command), node(), []) == runtime_code(code, cls)


@pytest.mark.parametrize(("code", "cls"), RUNTIME_CODES)
def test_a_custom_commands_exit_code_3_to_6_names_no_class(code: int, cls: str) -> None:
    """torchrun, a shell script or the user's own program may exit 3-6 for any reason of theirs."""
    assert classify_pod(failed(code, "Error", command=CUSTOM), node(), []) == foreign_code(code)
    unknown_command = failed(code, "Error")
    del unknown_command["spec"]["containers"]
    assert classify_pod(unknown_command, node(), []) == foreign_code(code)
    assert classify_pod(unknown_command, node(), [], launcher=True) == runtime_code(code, cls)
    assert classify_pod(failed(code, "Error"), node(), [], launcher=False) == foreign_code(code)


def test_a_runtime_report_makes_a_custom_commands_exit_code_the_runtimes() -> None:
    """`bash -c "tandem-train ..."`: the report shows the runtime ran; its exit code is the runtime's."""
    message = report("unknown", "Incomplete", "the workers exited before the last step", step=40)
    found = classify_pod(failed(3, "Error", message, command=["bash", "-c", "tandem-train"]), node(), [])
    assert found == replace(runtime_code(3, "interconnect"), step=40)


def test_oomkilled_beats_an_exit_code_in_another_container() -> None:
    pod = failed(3, "Error")
    pod["status"]["containerStatuses"].append({"name": "b", "state": {"terminated": {"exitCode": 137,
                                                                                     "reason": "OOMKilled"}}})
    assert got(classify_pod(pod, node(), [])) == ("oom", "OOMKilled", "container-state")


def test_sigabrt_with_a_watchdog_log_tail_is_interconnect() -> None:
    assert got(classify_pod(failed(134, "Error", NCCL_TIMEOUT), node(), [])) == ("interconnect", "CollectiveTimeout",
                                                                                 "log-tail")


def test_sigkill_without_oomkilled_yields_to_a_preemption() -> None:
    pod = failed(137, "Error", status={"conditions": [condition("DisruptionTarget", reason="PreemptionByScheduler",
                                                                message="Kubernetes default scheduler: preempting")]})
    assert got(classify_pod(pod, node(), [])) == ("node", "PreemptionByScheduler", "pod-condition")


def test_signal_without_exit_code() -> None:
    pod = failed(None)
    pod["status"]["containerStatuses"] = [{"name": "trainer", "state": {"terminated": {"signal": 9}}}]
    assert got(classify_pod(pod, node(), [])) == ("unknown", "Killed", "container-state")


def test_exit_code_1_with_a_user_traceback_is_user() -> None:
    assert got(classify_pod(failed(1, "Error", KEY_ERROR), node(), [])) == ("user", "PythonException", "log-tail")


# --- (c) pod conditions and status ----------------------------------------------------------------------------------

EVICTED_DISK = ("The node was low on resource: ephemeral-storage. Threshold quantity: 10Gi, available: 3Gi. Container "
                "trainer was using 8Gi, request is 0, has larger consumption of ephemeral-storage. ")
EVICTED_MEMORY = ("The node was low on resource: memory. Threshold quantity: 100Mi, available: 80Mi. Container "
                  "trainer was using 60Gi, request is 32Gi, has larger consumption of memory. ")


@pytest.mark.parametrize(
    ("status", "reason", "text"),
    [
        ({"reason": "Evicted", "message": EVICTED_DISK}, "Evicted", "ephemeral-storage"),
        ({"reason": "Evicted", "message": EVICTED_MEMORY}, "Evicted", "memory"),
        ({"reason": "NodeLost", "message": "Node n1 which was running pod llama-a1-0 is unresponsive"}, "NodeLost",
         "unresponsive"),
        ({"reason": "UnexpectedAdmissionError", "message": "Allocate failed due to no healthy devices present"},
         "UnexpectedAdmissionError", "healthy devices"),
        ({"reason": "Terminated", "message": "Pod was terminated in response to imminent node shutdown."},
         "NodeShutdown", "node shutdown"),
        ({"reason": "OutOfhuawei.com/Ascend910", "message": "Node didn't have enough resource"},
         "OutOfhuawei.com/Ascend910", "enough resource"),
    ],
)
def test_pod_status_reasons(status: dict[str, str], reason: str, text: str) -> None:
    found = classify_pod(failed(137, "Error", status=status), node(), [])
    assert got(found) == ("node", reason, "pod-condition") and text in found.message


@pytest.mark.parametrize("reason", ["PreemptionByScheduler", "DeletionByTaintManager", "EvictionByEvictionAPI",
                                    "TerminationByKubelet", "DeletionByPodGC"])
def test_disruption_target(reason: str) -> None:
    pod = failed(143, "Error", status={"conditions": [condition("Ready", "False"),
                                                      condition("DisruptionTarget", reason=reason)]})
    assert got(classify_pod(pod, node(), [])) == ("node", reason, "pod-condition")


def test_disruption_target_false_is_ignored() -> None:
    pod = failed(1, "Error", status={"conditions": [condition("DisruptionTarget", "False", "PreemptionByScheduler")]})
    assert classify_pod(pod, node(), []).reason == "ExitCode"


# --- (d) the node and (e) its fault reports ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("the_node", "reason"),
    [
        (node(ready="False"), "NodeNotReady"),
        (node(ready="Unknown"), "NodeUnreachable"),
        (node(taints=["node.kubernetes.io/unreachable"]), "NodeUnreachable"),
        (node(taints=["node.kubernetes.io/not-ready"]), "NodeNotReady"),
        (node(taints=["node.kubernetes.io/out-of-service"]), "NodeOutOfService"),
    ],
)
def test_running_pod_on_a_dead_node(the_node: dict[str, Any], reason: str) -> None:
    pod = make_pod("llama", 1, 0, phase="Running", node="n1")
    assert got(classify_pod(pod, the_node, [])) == ("node", reason, "node")


def test_an_evicted_pod_on_a_not_ready_node_is_evicted() -> None:
    pod = failed(137, "Error", status={"reason": "Evicted", "message": EVICTED_MEMORY})
    assert got(classify_pod(pod, node(ready="False"), [CHIP])) == ("node", "Evicted", "pod-condition")


def test_a_not_ready_node_beats_its_device_reports() -> None:
    assert got(classify_pod(failed(1), node(ready="False"), [CHIP])) == ("node", "NodeNotReady", "node")


def test_device_report_beats_the_collective_timeout_it_caused() -> None:
    found = classify_pod(failed(1, "Error", NCCL_TIMEOUT), node(), [LINK, CHIP])
    assert got(found) == ("device", "NpuChipFault", "device-report")
    assert "Ascend910-4" in found.message and "1 more" in found.message


def test_device_reports_of_other_nodes_do_not_count() -> None:
    other = DeviceFault("n2", FaultClass.DEVICE, "NpuChipFault", "x", "ascend-device-plugin")
    assert got(classify_pod(failed(1, "Error", NCCL_TIMEOUT), node(), [other]))[2] == "log-tail"


def test_gpu_xid_condition_on_the_node() -> None:
    gpu = node()
    gpu["status"]["conditions"].append(condition("SysLogsXIDError", message="ErrorCode:74 NVLink fatal error"))
    assert got(classify_pod(failed(1, "Error", NCCL_TIMEOUT), gpu, [])) == ("interconnect", "NvlinkError",
                                                                            "device-report")


def test_unscheduled_pod_ignores_node_and_reports() -> None:
    pod = failed(1, "Error", node=None)
    assert got(classify_pod(pod, node(ready="False"), [CHIP]))[:2] == ("unknown", "ExitCode")


# --- nothing decides -------------------------------------------------------------------------------------------------

def test_no_evidence_is_unknown_with_the_best_message() -> None:
    pod = make_pod("llama", 1, 0, phase="Failed", node="n1")
    pod["status"]["message"] = "Pod was active on the node longer than the specified deadline"
    found = classify_pod(pod, node(), [])
    assert got(found) == ("unknown", "Unknown", "none") and "deadline" in found.message


# --- malformed input -------------------------------------------------------------------------------------------------

GARBAGE: list[Any] = [
    None, {}, [], "pod", 7, {"status": None}, {"status": "Failed"}, {"spec": None, "status": {"phase": "Failed"}},
    {"status": {"containerStatuses": None}}, {"status": {"containerStatuses": [None, 1, "x", {"state": None}]}},
    {"status": {"containerStatuses": [{"state": {"terminated": None}}]}},
    {"status": {"containerStatuses": [{"state": {"terminated": {"exitCode": "137", "reason": 5, "message": 12}}}]}},
    {"status": {"containerStatuses": [{"state": {"terminated": {"exitCode": True, "signal": "KILL"}}}]}},
    {"status": {"containerStatuses": [{"state": {"terminated": {"exitCode": -1}}}]}},
    {"status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 3, "message": "{{{"}}}]}},
    {"status": {"containerStatuses": [{"state": {"terminated": {"exitCode": 1, "message": "[1, 2]"}}}]}},
    {"status": {"containerStatuses": [{"state": {"waiting": {"reason": None}}}]}},
    {"status": {"conditions": [None, {"type": "DisruptionTarget", "status": "True", "reason": None}]}},
    {"spec": {"nodeName": "n1"}, "status": {"reason": None, "message": None}},
]


@pytest.mark.parametrize("pod", GARBAGE)
@pytest.mark.parametrize("the_node", [None, {}, node(), {"status": {"conditions": [None, {"type": "Ready"}]}},
                                      {"spec": {"taints": [None, {"key": None}]}}])
def test_garbage_never_raises(pod: Any, the_node: Any) -> None:
    found = classify_pod(pod, the_node, [CHIP, "not a fault"])  # type: ignore[list-item]
    assert isinstance(found, Classification) and isinstance(found.fault_class, FaultClass)
    assert isinstance(classify_node(the_node, [None]), Classification | None)  # type: ignore[list-item]


def _random_value(rng: random.Random, depth: int = 0) -> Any:
    keys = ["status", "containerStatuses", "state", "terminated", "waiting", "exitCode", "reason", "message",
            "signal", "conditions", "type", "spec", "nodeName", "metadata", "name", "class", "step"]
    choice = rng.randrange(8 if depth < 4 else 5)
    if choice == 0:
        return None
    if choice == 1:
        return rng.choice([0, 1, 2, 3, 137, 134, -9, 10**12, True])
    if choice == 2:
        return rng.choice(["", "OOMKilled", "Evicted", "True", "Ready", "DisruptionTarget", "{", '{"class": "oom"}',
                           "Traceback (most recent call last)", "KeyError: 'x'", "\x00\xff", "Xid 79"])
    if choice in (3, 4):
        return rng.random()
    if choice in (5, 6):
        return {rng.choice(keys): _random_value(rng, depth + 1) for _ in range(rng.randrange(4))}
    return [_random_value(rng, depth + 1) for _ in range(rng.randrange(3))]


def test_fuzz() -> None:
    rng = random.Random(20261123)
    for _ in range(2000):
        pod, the_node = _random_value(rng), _random_value(rng)
        assert isinstance(classify_pod(pod, the_node, []), Classification)
        assert isinstance(classify_node(the_node if isinstance(the_node, dict) else None, []), Classification | None)
        text = "".join(rng.choice(["\n", " ", "Error: x", "KeyError", "[rank0]: ", "│", "Xid 74", "NCCL", "a"])
                       for _ in range(rng.randrange(30)))
        assert isinstance(classify_log(text), Classification)


# --- tandem classify ---------------------------------------------------------------------------------------

def test_cli_classifies_a_log_file_and_a_pod(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tandem.cli import main

    log = tmp_path / "tail.log"
    log.write_text(NCCL_TIMEOUT)
    assert main(["classify", "--log", str(log)]) == 0
    assert json.loads(capsys.readouterr().out)["class"] == "interconnect"

    pod = tmp_path / "pod.json"
    pod.write_text(json.dumps({"apiVersion": "v1", "kind": "Pod", **failed(137, "OOMKilled")}))
    assert main(["classify", "--pod", str(pod)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"class", "reason", "message"} and (out["class"], out["reason"]) == ("oom", "OOMKilled")

    pod.write_text(yaml.safe_dump(failed(1, "Error", KEY_ERROR)))
    assert main(["classify", "--pod", str(pod)]) == 0
    assert json.loads(capsys.readouterr().out)["class"] == "user"


def test_cli_reads_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    from tandem.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(CUDA_OOM))
    assert main(["classify"]) == 0
    assert json.loads(capsys.readouterr().out)["reason"] == "DeviceOOM"
    monkeypatch.setattr("sys.stdin", io.StringIO("not a pod"))
    assert main(["classify", "--pod"]) == 2
