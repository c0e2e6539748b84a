"""The three examples of examples/byo/, run as they are by the real operator on the local cluster (issue 17): the DDP
script on tandem.sdk, the Hugging Face Trainer script on tandem.sdk.hf and the plain DDP script that uses nothing of
Tandem, each with torchrun under tandem-run on an Ascend-like pool of 2 devices per pod. A real HCCL error text is
injected (and, for the plain script, first a hang): the job restarts there from the newest checkpoint (in place:
tandem-run runs the script again in its pod), then, at the second fault, fails over to a GPU-like pool of 1 device
per pod and resumes from the same step with the same global batch and the same next samples, to Succeeded;
status.lastCheckpoint follows the script's checkpoints throughout.

"The same" is checked against the same example trained without a fault, on one rank, outside the cluster: every
step's loss after the resume must be that run's (the same weights, samples and batch give the same loss; another
sample, batch or weight would not)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from functools import partial
from pathlib import Path
from typing import Any

import operator_jobs
import pytest

GROUP, VERSION, PLURAL = "tandem.dev", "v1alpha1", "trainingjobs"
NS = "default"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "byo"
# 9 steps of 8 sequences, a checkpoint every 3: 2 ranks x 2 sequences x 2 passes, then 1 rank x 2 x 4.
SIZES = {"GLOBAL_BATCH": "8", "MICRO_BATCH": "2", "STEPS": "9", "SAVE_EVERY": "3", "WIDTH": "16", "HIDDEN": "32",
         "LAYERS": "1", "SEQ_LEN": "16"}
HCCL_AT = "interconnect@step={step},attempt={attempt},rank=1,flavor=hccl"
wait_phase = partial(operator_jobs.wait_phase, timeout=240)
STEP_LINE = re.compile(r"^step (\d+) loss (\S+) samples (\d+)-(\d+)$", re.MULTILINE)


def small_pool(name: str, accelerator: str, resource: str, devices: int, nodes_of: str) -> dict[str, Any]:
    """A pool of `devices` per pod on the simulated nodes of `nodes_of`; the runtime's CPU path, as in the local
    examples (the simulated nodes have no NPU or GPU)."""
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AcceleratorPool", "metadata": {"name": name},
            "spec": {"accelerator": accelerator, "deviceResource": resource, "devicesPerNode": devices,
                     "nodeSelector": {"tandem.dev/pool": nodes_of}, "image": "example.org/team/ddp:1",
                     "env": [{"name": "TANDEM_ACCELERATOR", "value": "cpu"}]}}


@pytest.fixture(scope="module")
def small_pools(custom: Any) -> None:
    custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools",
                                        small_pool("npu-two", "npu", "huawei.com/Ascend910", 2, "ascend-910b"))
    custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools",
                                        small_pool("gpu-one", "gpu", "nvidia.com/gpu", 1, "h20"))


def run_example(custom: Any, core: Any, wait_for: Any, name: str, script: str, tandem_run: list[str],
                inject: str, fault_policy: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Run examples/byo/<script> under tandem-run and torchrun on npu-two, then gpu-one, with TANDEM_FAULT_INJECT
    set to `inject`; return the Succeeded job's status and its last attempt's log."""
    env = [{"name": k, "value": v} for k, v in {**SIZES, "TANDEM_FAULT_INJECT": inject}.items()]
    job = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
           "spec": {"nodes": 1, "pools": ["npu-two", "gpu-one"],
                    "container": {"command": ["tandem-run", *tandem_run, "--", sys.executable, "-P", "-m",
                                              "torch.distributed.run", str(EXAMPLES / script)], "env": env},
                    "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": f"{name}-ckpt"}}},
                    "faultPolicy": {"backoffSeconds": 0, "maxBackoffSeconds": 0, **fault_policy}}}
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job)
    status = wait_phase(custom, wait_for, name, "Succeeded")["status"]
    return status, str(core.read_namespaced_pod_log(f"{name}-a{status['attempt']}-0", NS))


def attempt_logs(cluster: Any, name: str, attempts: int, lines: int = 40) -> str:
    """The end of each attempt's rank-0 log (the kubelet keeps it after the pod is deleted; an attempt restarted in
    place wrote into its first pod's): a failed assertion shows them, so a rare failure can be read from CI's
    output alone."""
    said = []
    for attempt in range(1, attempts + 1):
        path = cluster.kubelet.log_path(NS, f"{name}-a{attempt}-0")
        if path is not None and path.is_file():
            tail = path.read_text(errors="replace").splitlines()[-lines:]
            said.append("\n".join([f"--- {name}-a{attempt}-0", *tail]))
    return "\n".join(said)


def assert_restarted_then_failed_over(core: Any, wait_for: Any, cluster: Any, name: str, status: dict[str, Any],
                                      faults: list[tuple[str, str, int]]) -> None:
    """Two faults on npu-two (`faults`: class, reason, the newest checkpoint then), a restart there (in place) from
    the first's checkpoint, a failover to gpu-one from the second's, and the last checkpoint at step 9."""
    assert [(f["class"], f["reason"], f["checkpointStep"], f["pool"]) for f in status["faults"]] == [
        (*fault, "npu-two") for fault in faults], "\n".join(
        [*(f["message"] for f in status["faults"]), attempt_logs(cluster, name, status["attempt"])])
    assert (status["attempt"], status["pool"], status["failovers"], status["lastCheckpoint"]["step"]) == (
        3, "gpu-one", 1, 9), attempt_logs(cluster, name, status["attempt"])

    def started() -> list[str] | None:  # Events are posted after the status
        events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={name}").items
        said = [(e.reason, e.message) for e in sorted(events, key=lambda e: int(e.metadata.resource_version))
                if e.reason in ("AttemptStarted", "InPlace")]
        return said if len(said) == 3 else None

    first, second, third = wait_for(started, timeout=30, what=f"{name}'s three attempts' Events")
    assert first[0] == "AttemptStarted" and first[1].startswith("attempt 1 on pool npu-two: 1 pod(s) of 2 device(s); "
                                                                  "image")
    # The first fault restarts the script inside its pod (tandem-run is its supervisor); the second, within
    # inPlaceRestartWindowSeconds of it, restarts in full, on the other pool.
    assert second[0] == "InPlace" and second[1].endswith(
        f"attempt 2 restarts in place from checkpoint step {faults[0][2]}: 1 pod(s) stay")
    assert third[0] == "AttemptStarted" and third[1].startswith(
        f"attempt 3 on pool gpu-one: 1 pod(s) of 1 device(s), resuming from checkpoint step {faults[1][2]}")


def reference(script: str, tmp_path: Path) -> tuple[str, Path]:
    """The example trained without a fault on one rank (torchrun, outside the cluster): its output and its
    checkpoint folder."""
    folder = tmp_path / "reference"
    folder.mkdir()
    env = {**os.environ, **SIZES, "TANDEM_CHECKPOINT_DIR": str(folder), "TANDEM_ACCELERATOR": "cpu",
           "TANDEM_TERMINATION_LOG": str(tmp_path / "reference-termination-log")}
    env.pop("TANDEM_FAULT_INJECT", None)
    result = subprocess.run([str(Path(sys.executable).with_name("tandem-run")), "--", sys.executable, "-P", "-m",
                             "torch.distributed.run", "--standalone", "--nproc-per-node", "1",
                             str(EXAMPLES / script)], env=env, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout, folder


def assert_continued_like_the_reference(log: str, reference_output: str) -> None:
    """The last attempt (world 1 after world 2) resumed at step 6 and trained steps 7-9 on the reference's
    samples with the reference's losses."""
    assert "resumed at step 6 sample 48 world 1 plan 2x4" in log
    steps = {int(m[0]): m[1:] for m in STEP_LINE.findall(log)}
    expected = {int(m[0]): m[1:] for m in STEP_LINE.findall(reference_output)}
    assert sorted(steps) == [7, 8, 9] and sorted(expected) == list(range(1, 10))
    assert {step: steps[step] for step in steps} == {step: expected[step] for step in steps}


@pytest.mark.timeout(420)
@pytest.mark.usefixtures("small_pools")
def test_the_sdk_ddp_example_restarts_fails_over_and_continues(custom: Any, core: Any, wait_for: Any,
                                                                 tmp_path: Path, cluster: Any) -> None:
    inject = ";".join(HCCL_AT.format(step=step, attempt=attempt) for step, attempt in ((4, 1), (7, 2)))
    status, log = run_example(custom, core, wait_for, "byo-sdk", "ddp_sdk.py", [], inject,
                              {"failoverAfterFaults": 2})
    assert_restarted_then_failed_over(core, wait_for, cluster, "byo-sdk", status, [
        ("interconnect", "HcclSocketTimeout", 3), ("interconnect", "HcclSocketTimeout", 6)])
    assert_continued_like_the_reference(log, reference("ddp_sdk.py", tmp_path)[0])


@pytest.mark.timeout(420)
@pytest.mark.usefixtures("small_pools")
def test_the_plain_torchrun_example_survives_a_hang_and_hccls_error(custom: Any, core: Any, wait_for: Any,
                                                                    tmp_path: Path, cluster: Any) -> None:
    """Nothing of Tandem in the script: tandem-run finds its torchtitan-layout checkpoints, ends the hang at step 4
    after progressTimeoutSeconds (30 s) (unknown: a restart, no failover), and fires HCCL's error at its `step 7`
    line (tandem-run --inject-faults), which moves it. The script ends with os._exit after its final checkpoint:
    PyTorch's own teardown deadlocked here in 1 of 16 loaded runs, and a third fault followed (its comment says
    why)."""
    inject = f"hang@step=4,attempt=1;{HCCL_AT.format(step=7, attempt=2).replace(',rank=1', '')}"
    status, log = run_example(custom, core, wait_for, "byo-plain", "plain_ddp.py",
                              ["--checkpoint-layout", "torchtitan", "--inject-faults", "--grace", "2"], inject,
                              {"failoverAfterFaults": 1, "progressTimeoutSeconds": 30})
    assert_restarted_then_failed_over(core, wait_for, cluster, "byo-plain", status, [
        ("unknown", "NoProgress", 3), ("interconnect", "HcclSocketTimeout", 6)])
    assert_continued_like_the_reference(log, reference("plain_ddp.py", tmp_path)[0])
    assert sorted(p.name for p in cluster.kubelet.claim_dir(NS, "byo-plain-ckpt").glob("step-*")) == [
        "step-3", "step-6", "step-9"]


@pytest.mark.timeout(480)
@pytest.mark.usefixtures("small_pools")
def test_the_hugging_face_trainer_example_keeps_its_trajectory(custom: Any, core: Any, wait_for: Any,
                                                               tmp_path: Path, cluster: Any) -> None:
    """The Trainer's own record (trainer_state.json's log_history, carried from checkpoint to checkpoint) holds a
    loss for every step of the three attempts: each is the uninterrupted one-rank run's."""
    inject = ";".join(HCCL_AT.format(step=step, attempt=attempt) for step, attempt in ((4, 1), (7, 2)))
    status, _ = run_example(custom, core, wait_for, "byo-hf", "hf_trainer.py",
                              ["--checkpoint-layout", "huggingface"], inject, {"failoverAfterFaults": 2})
    assert_restarted_then_failed_over(core, wait_for, cluster, "byo-hf", status, [
        ("interconnect", "HcclSocketTimeout", 3), ("interconnect", "HcclSocketTimeout", 6)])
    _, folder = reference("hf_trainer.py", tmp_path)

    def losses(root: Path) -> dict[int, float]:
        state = json.loads((root / "hf" / "checkpoint-9" / "trainer_state.json").read_text())
        return {entry["step"]: entry["loss"] for entry in state["log_history"] if "loss" in entry}

    ours, expected = losses(cluster.kubelet.claim_dir(NS, "byo-hf-ckpt")), losses(folder)
    assert sorted(ours) == sorted(expected) == list(range(1, 10))
    assert ours == pytest.approx(expected, rel=1e-5)
