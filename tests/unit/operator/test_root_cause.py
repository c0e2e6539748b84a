"""Which rank's failure ends the attempt, and whether it blames a node (operator/detect.py): evidence before
timestamps and ranks, symptoms below root causes, exit codes only from Tandem's own launcher, commands that
cannot start, and the grace a NotReady node gets."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import NOW, make_job, make_node, make_pod

from tandem.operator.api import Fault, FaultClass, TrainingJob
from tandem.operator.classify import Classification
from tandem.operator.detect import AttemptFault, attempt_fault, find_attempt_fault

LOG_TAILS = {e["id"]: e["text"] for e in yaml.safe_load(
    (Path(__file__).parents[2] / "data" / "faults" / "log_tails.yaml").read_text())}
KEY_ERROR = LOG_TAILS["user-keyerror-collator"]
KEY_ERROR_LINE = "KeyError: 'input_ids' (File \"/mnt/home//code/Antidote-main/train.py\", line 96, in __call__)"
NCCL_REMOTE = LOG_TAILS["nccl-remote-error-ib"]
NODES = {f"ascend-{i}": make_node(f"ascend-{i}", "ascend-910b") for i in range(3)}


def running(**spec: Any) -> TrainingJob:
    return make_job(status={"phase": "Running", "attempt": 1, "pool": "ascend-910b",
                            "startTime": "2026-11-23T11:00:00Z"}, **spec)


def report(cls: str, reason: str, message: str = "m", rank: int = 0) -> str:
    return json.dumps({"class": cls, "reason": reason, "message": message, "rank": rank, "step": 130,
                       "checkpointStep": 100, "resumedFrom": None})


def failed(rank: int, message: str = "", exit_code: int = 1, reason: str = "Error",
           at: str = "2026-11-23T12:00:00Z") -> dict[str, Any]:
    return make_pod("llama", 1, rank, "Failed", f"ascend-{rank}", exit_code=exit_code, reason=reason,
                    message=message, finished_at=at)


def fault(rank: int, cls: str, reason: str, message: str, step: int | None = None, checkpoint: int = 0,
          node: str | None = None, after: float = 0.0) -> Fault:
    """The Fault attempt_fault gives `after` seconds past NOW."""
    return Fault.model_validate({
        "time": NOW + timedelta(seconds=after), "attempt": 1, "pool": "ascend-910b", "node": node or f"ascend-{rank}",
        "pod": f"llama-a1-{rank}",
        "class": cls, "reason": reason, "message": message, "step": step, "checkpointStep": checkpoint})


def detect(pods: list[dict[str, Any]], job: TrainingJob | None = None, nodes: dict[str, Any] | None = None,
           device_faults: dict[str, Any] | None = None, after: float = 0.0) -> Fault | float | None:
    return attempt_fault(job or running(), pods, NODES if nodes is None else nodes, device_faults or {},
                         NOW + timedelta(seconds=after))


# --- A: evidence, not rank or timestamp ---------------------------------------------------------------------------

def test_a_user_bug_outranks_the_nccl_symptom_of_a_lower_rank_in_the_same_second() -> None:
    """Rank 1's KeyError killed it; rank 0 then saw its peer vanish. The job fails as the user's; no node is
    blamed."""
    pods = [failed(0, NCCL_REMOTE), failed(1, KEY_ERROR)]
    assert detect(pods) == fault(1, "user", "PythonException", KEY_ERROR_LINE)


def test_a_symptom_that_came_first_still_ranks_below_the_root_cause() -> None:
    """Rank 0's collective timed out a minute before rank 1's report reached the API: the timeout waited on
    rank 1's chip."""
    pods = [failed(0, report("interconnect", "CollectiveTimeout"), 3, at="2026-11-23T11:59:00Z"),
            failed(1, report("device", "NpuError", "aicore error", rank=1), 4)]
    assert detect(pods) == fault(1, "device", "NpuError", "aicore error", step=130, checkpoint=100)


def test_a_rank_that_lost_its_peer_ranks_below_a_rank_that_waited_on_one() -> None:
    """Both are symptoms; the connection rank 0 lost was probably to rank 1, whose collective timed out first."""
    pods = [failed(0, report("interconnect", "PeerConnectionLost", "Connection reset by peer"), 3),
            failed(1, report("interconnect", "HcclSocketTimeout", "EI0006", rank=1), 3),
            failed(2, report("unknown", "Incomplete", "the workers exited", rank=2), 1, at="2026-11-23T12:00:09Z")]
    assert detect(pods) == fault(2, "unknown", "Incomplete", "the workers exited", step=130, checkpoint=100)
    assert detect(pods[:2]) == fault(1, "interconnect", "HcclSocketTimeout", "EI0006", step=130, checkpoint=100)


@pytest.mark.parametrize(("message", "exit_code", "reason", "expected"), [
    (report("device", "NpuError", "aicore error", rank=1), 4, "Error",
     fault(1, "device", "NpuError", "aicore error", step=130, checkpoint=100)),
    ("", 137, "OOMKilled",
     fault(1, "oom", "OOMKilled", "container trainer was killed for exceeding its memory limit (OOMKilled, exit "
                                 "code 137)")),
])
def test_the_runtime_report_and_the_kubelet_outrank_a_log_tail_that_came_first(
        message: str, exit_code: int, reason: str, expected: Fault) -> None:
    pods = [failed(0, KEY_ERROR, at="2026-11-23T11:59:59Z"), failed(1, message, exit_code, reason)]
    assert detect(pods) == expected


@pytest.mark.parametrize(("rank0_at", "winner"), [("2026-11-23T12:00:01Z", 1), ("2026-11-23T12:00:00Z", 0)])
def test_equal_evidence_goes_to_the_earliest_then_to_the_lowest_rank(rank0_at: str, winner: int) -> None:
    pods = [failed(0, report("device", "NpuError", "r0"), 4, at=rank0_at),
            failed(1, report("device", "NpuError", "r1", rank=1), 4)]
    assert detect(pods) == fault(winner, "device", "NpuError", f"r{winner}", step=130, checkpoint=100)


def test_only_strong_evidence_against_a_node_excludes_it() -> None:
    chip = failed(1, report("device", "NpuError", "aicore error", rank=1), 4)
    assert find_attempt_fault(running(), [failed(0, KEY_ERROR), chip], NODES, {}, NOW) == AttemptFault(
        fault(1, "device", "NpuError", "aicore error", step=130, checkpoint=100),
        Classification(FaultClass.DEVICE, "NpuError", "aicore error", "termination-message", step=130,
                       checkpoint_step=100, node="ascend-1"))
    printed = "health: 2 CUDA error(s) seen, retrying the batch\nstopping at step 13"
    weak = find_attempt_fault(running(), [failed(0, printed), chip_free(1)], NODES, {}, NOW)
    assert weak == AttemptFault(fault(0, "unknown", "CudaError", printed),
                                Classification(FaultClass.UNKNOWN, "CudaError", printed, "log-tail", node="ascend-0"))
    assert not weak.excludes_node
    peer = report("interconnect", "PeerConnectionLost", "Connection reset by peer")
    symptom = find_attempt_fault(running(), [failed(0, peer, 3), chip_free(1)], NODES, {}, NOW)
    assert isinstance(symptom, AttemptFault) and symptom.fault == fault(
        0, "interconnect", "PeerConnectionLost", "Connection reset by peer", step=130, checkpoint=100)
    assert not symptom.excludes_node
    found = find_attempt_fault(running(), [failed(0, KEY_ERROR), chip], NODES, {}, NOW)
    assert isinstance(found, AttemptFault) and found.excludes_node


def chip_free(rank: int) -> dict[str, Any]:
    """A rank that finished its part and exited cleanly (nothing left to wait for)."""
    return make_pod("llama", 1, rank, "Succeeded", f"ascend-{rank}", exit_code=0)


# --- B: exit codes 3-6 are the runtime's only under Tandem's launcher ----------------------------------------------

def test_a_custom_commands_exit_code_names_no_class() -> None:
    """The pods carry no command here: the job's spec.container.command says what ran."""
    custom = running(container={"command": ["python", "train.py"]})
    assert detect([failed(1, "", 4)], job=custom) == fault(
        1, "unknown", "ExitCode", "container trainer exited with code 4; its command is not Tandem's launcher and "
                                  "left no report, so the code names no class")
    assert detect([failed(1, "", 4)]) == fault(
        1, "device", "ExitCode", "container trainer exited with code 4, the runtime's code for device, and left no "
                                 "termination message")


# --- C: a command that cannot start ends the job at once; an image pull gets a grace --------------------------------

STARTS = {e["id"]: e for e in yaml.safe_load(
    (Path(__file__).parents[2] / "data" / "faults" / "container_start.yaml").read_text())}


def waiting(rank: int, entry_id: str, started: float | None = -30.0, created: float | None = -40.0) -> dict[str, Any]:
    """A pod bound to its node whose container waits as the entry says; `started`/`created`: seconds from NOW."""
    entry = STARTS[entry_id]
    pod = make_pod("llama", 1, rank, "Pending", f"ascend-{rank}")
    pod["status"]["containerStatuses"] = [{"name": "trainer", "state": {"waiting": {
        "reason": entry["reason"], "message": entry["message"]}}}]
    if started is not None:
        pod["status"]["startTime"] = (NOW + timedelta(seconds=started)).isoformat()
    if created is not None:
        pod["metadata"]["creationTimestamp"] = (NOW + timedelta(seconds=created)).isoformat()
    return pod


def start_fault(rank: int, entry_id: str, cls: str = "user", after: float = 0.0) -> Fault:
    entry = STARTS[entry_id]
    return fault(rank, cls, entry["reason"], f"container trainer: {entry['reason']}: {entry['message']}", after=after)


@pytest.mark.parametrize("entry_id", ["run-container-error-exec-not-found", "crio-create-container-error-not-in-path",
                                      "invalid-image-name", "create-container-config-error-configmap"])
def test_a_command_or_image_that_cannot_start_fails_the_job_at_once(entry_id: str) -> None:
    pods = [make_pod("llama", 1, 0, "Running", "ascend-0"), waiting(1, entry_id)]
    assert detect(pods) == start_fault(1, entry_id)


def test_a_command_that_exits_127_without_starting_fails_the_job() -> None:
    entry = STARTS["shell-command-not-found"]
    pods = [make_pod("llama", 1, 0, "Running", "ascend-0"), failed(1, entry["message"], 127)]
    assert detect(pods) == fault(1, "user", "CommandNotFound", f"container trainer: Error, exit code 127: "
                                                               f"{entry['message']}")


@pytest.mark.parametrize("entry_id", ["image-pull-back-off", "image-manifest-not-found"])
def test_an_image_pull_is_given_time_before_it_fails_the_job(entry_id: str) -> None:
    """A registry that is down comes back: 120 s after the kubelet started the pod, the pull is the user's."""
    pods = [make_pod("llama", 1, 0, "Running", "ascend-0"), waiting(1, entry_id, started=-30.0)]
    assert detect(pods) == pytest.approx(90.0)
    assert detect(pods, after=90.0) == start_fault(1, entry_id, after=90.0)


@pytest.mark.parametrize(("started", "created", "expected"), [(None, -100.0, 20.0), (None, None, None)])
def test_the_pull_is_timed_from_the_pods_creation_without_a_start_time(
        started: float | None, created: float | None, expected: float | None) -> None:
    """A restarted operator remembers nothing: the times come from the pod, and a pod with no time at all (which
    the API server never serves) decides at once rather than waiting for ever."""
    found = detect([waiting(1, "image-pull-back-off", started=started, created=created)])
    assert found == (pytest.approx(expected) if expected else start_fault(1, "image-pull-back-off"))


def test_runtime_trouble_that_outlasts_the_grace_is_unknown_not_the_users() -> None:
    pod = waiting(1, "crio-create-container-error-mount", started=-30.0)
    assert detect([pod]) == pytest.approx(90.0)
    assert detect([pod], after=100.0) == start_fault(1, "crio-create-container-error-mount", "unknown", after=100.0)


def test_while_an_image_pulls_a_failed_rank_ends_the_attempt_without_blaming_the_pull_on_the_user() -> None:
    """Rank 0 gave up waiting for rank 1: a restart, not the user's fault (the grace has not run out)."""
    pods = [failed(0, NCCL_REMOTE), waiting(1, "image-pull-back-off", started=-30.0)]
    assert detect(pods) == start_fault(1, "image-pull-back-off", "unknown")


# --- D: a node NotReady for less than nodeNotReadyGraceSeconds --------------------------------------------------

# What the kubelet and the node lifecycle controller write (kubernetes pkg/kubelet/nodestatus, pkg/controller/
# nodelifecycle): a runtime the kubelet cannot reach, and a kubelet that stopped posting.
KUBELET_NOT_READY = ("False", "KubeletNotReady", "container runtime is down")
STOPPED_POSTING = ("Unknown", "NodeStatusUnknown", "Kubelet stopped posting node status.")


def not_ready(name: str = "ascend-1", since: float | None = -20.0, ready: tuple[str, str, str] = KUBELET_NOT_READY,
              **extra: Any) -> dict[str, dict[str, Any]]:
    """The cluster's nodes with `name` NotReady since `since` seconds from NOW (None: no lastTransitionTime)."""
    node = make_node(name, "ascend-910b")
    status, reason, message = ready
    condition = {"type": "Ready", "status": status, "reason": reason, "message": message}
    if since is not None:
        condition["lastTransitionTime"] = (NOW + timedelta(seconds=since)).isoformat()
    node["status"]["conditions"] = [condition]
    node.update(extra)
    return {**NODES, name: node}


def ranks_running(started: float | None = None) -> list[dict[str, Any]]:
    pods = [make_pod("llama", 1, r, "Running", f"ascend-{r}") for r in range(2)]
    if started is not None:
        for pod in pods:
            pod["status"]["startTime"] = (NOW + timedelta(seconds=started)).isoformat()
    return pods


def node_fault(reason: str, status: str, detail: str, after: float = 0.0) -> Fault:
    return fault(1, "node", reason, f"node ascend-1 Ready={status}: {detail}", after=after)


@pytest.mark.parametrize(("ready", "reason"), [(KUBELET_NOT_READY, "NodeNotReady"),
                                               (STOPPED_POSTING, "NodeUnreachable")])
def test_a_node_not_ready_for_less_than_the_grace_does_not_end_the_attempt(
        ready: tuple[str, str, str], reason: str) -> None:
    """A missed heartbeat is not a dead node: while its ranks run and report nothing, the attempt goes on."""
    assert detect(ranks_running(), nodes=not_ready(ready=ready)) == pytest.approx(40.0)
    assert detect(ranks_running(), nodes=not_ready(ready=ready), after=40.0) == node_fault(
        reason, ready[0], ready[2], after=40.0)


@pytest.mark.parametrize(("grace", "expected"), [(0, node_fault("NodeNotReady", "False", "container runtime is down")),
                                                 (300, 280.0)])
def test_the_grace_is_the_jobs_node_not_ready_grace_seconds(grace: int, expected: Fault | float) -> None:
    job = running(faultPolicy={"nodeNotReadyGraceSeconds": grace})
    assert detect(ranks_running(), job=job, nodes=not_ready()) == expected


def test_a_node_that_is_gone_being_deleted_or_out_of_service_gets_no_grace() -> None:
    gone = {k: v for k, v in NODES.items() if k != "ascend-1"}
    assert detect(ranks_running(), nodes=gone) == fault(1, "node", "NodeLost", "node ascend-1 is gone")
    deleted = not_ready(metadata={"name": "ascend-1", "labels": {}, "deletionTimestamp": NOW.isoformat()})
    assert detect(ranks_running(), nodes=deleted) == node_fault("NodeNotReady", "False", "container runtime is down")
    out = not_ready(spec={"taints": [{"key": "node.kubernetes.io/out-of-service", "effect": "NoExecute"}]})
    assert detect(ranks_running(), nodes=out) == node_fault("NodeNotReady", "False", "container runtime is down")


def test_a_not_ready_node_with_a_device_fault_report_gets_no_grace() -> None:
    from tandem.operator.device_reports import DeviceFault

    chip = DeviceFault("ascend-1", FaultClass.DEVICE, "NpuChipFault", "Ascend910-4: CardUnhealthy", "device-plugin")
    assert detect(ranks_running(), nodes=not_ready(), device_faults={"ascend-1": [chip]}) == node_fault(
        "NodeNotReady", "False", "container runtime is down")


def test_a_failed_rank_ends_the_attempt_during_the_grace_and_the_node_is_its_cause() -> None:
    """Rank 0 lost rank 1, whose node went NotReady: the node, not rank 0's symptom, is the fault."""
    pods = [failed(0, NCCL_REMOTE), make_pod("llama", 1, 1, "Running", "ascend-1")]
    assert detect(pods, nodes=not_ready()) == node_fault("NodeNotReady", "False", "container runtime is down")


@pytest.mark.parametrize(("started", "expected"), [(-50.0, 10.0), (None, None)])
def test_without_a_transition_time_the_grace_runs_from_the_pods_start(started: float | None,
                                                                      expected: float | None) -> None:
    """The node was Ready when the rank started on it, so its NotReady began later: the wait is never longer than
    the grace, and a restarted operator computes the same. A pod without any time decides at once."""
    found = detect(ranks_running(started), nodes=not_ready(since=None))
    assert found == (pytest.approx(expected) if expected else node_fault("NodeNotReady", "False",
                                                                         "container runtime is down"))


def test_a_not_ready_taint_on_a_ready_node_is_timed_from_the_taint() -> None:
    nodes = {**NODES, "ascend-1": {**NODES["ascend-1"], "spec": {"taints": [
        {"key": "node.kubernetes.io/not-ready", "effect": "NoExecute",
         "timeAdded": (NOW - timedelta(seconds=15)).isoformat()}]}}}
    assert detect(ranks_running(), nodes=nodes) == pytest.approx(45.0)


def test_a_custom_command_per_accelerator_gives_exit_codes_no_meaning() -> None:
    """The pod does not show its containers; the job's command is its own on NPU pools (byAccelerator): exit code 3
    is that command's, not Tandem's launcher's interconnect code."""
    job = running(container={"byAccelerator": {"npu": {"command": ["torchrun", "train.py"]}}})
    found = detect([failed(0, "", 3), failed(1, "", 3)], job=job)
    assert isinstance(found, Fault) and (found.fault_class, found.reason) == (FaultClass.UNKNOWN, "ExitCode")
    for job in (None, running(container={"command": ["/usr/local/bin/tandem-run", "--", "torchrun", "train.py"]})):
        launcher = detect([failed(0, "", 3), failed(1, "", 3)], job=job)  # tandem-train, tandem-run: Tandem's codes
        assert isinstance(launcher, Fault) and (launcher.fault_class, launcher.reason) == (FaultClass.INTERCONNECT,
                                                                                            "ExitCode")
