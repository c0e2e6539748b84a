"""A team's own training code with the real operator on the local cluster (issue 16): a job whose Ascend and
NVIDIA commands differ fails over and the new pods run the GPU command with the GPU environment (checked in the
pods and in what the process itself received); a dataset volume, /dev/shm and labels reach the pods; a template
field that would break the pod contract is refused by `kubectl apply`, naming the field."""

from __future__ import annotations

import json
import sys
import textwrap
from functools import partial
from typing import Any

import operator_jobs
import yaml

GROUP, VERSION, PLURAL = "tandem.dev", "v1alpha1", "trainingjobs"
NS = "default"
wait_phase = partial(operator_jobs.wait_phase, timeout=90)
HCCL = {"class": "interconnect", "reason": "HcclSocketTimeout", "rank": 1, "step": 7, "checkpointStep": 5,
        "message": "EI0006: Getting socket times out. Reason: Remote Rank did not send the data in time."}
# The Ascend command: rank 1 fails with the runtime's HCCL report on every attempt; rank 0 trains a little.
ON_NPU = textwrap.dedent('''
    import json, os, sys, time
    if os.environ["TANDEM_NODE_RANK"] == "1":
        time.sleep(0.3)
        json.dump(json.loads(os.environ["REPORT"]), open(os.environ["TANDEM_TERMINATION_LOG"], "w"))
        sys.exit(3)
    time.sleep(5)
''')
# The NVIDIA command: prints what it was started with, as the process sees it, and finishes.
ON_GPU = textwrap.dedent('''
    import json, os, sys
    keys = ["VENDOR", "NPU_ONLY", "SHARED", "TANDEM_BACKEND", "PET_NNODES", "PET_NODE_RANK", "PET_NPROC_PER_NODE",
            "NNODES", "NPROC_PER_NODE", "WORLD_SIZE", "MASTER_ADDR", "PET_MASTER_ADDR", "MASTER_PORT",
            "PET_MASTER_PORT"]
    print(json.dumps({"argv": sys.argv[1:], "cwd": os.getcwd(), "env": {k: os.environ.get(k) for k in keys}}))
''')


def byo_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
        "spec": {
            "nodes": 2, "pools": ["ascend-910b", "h20"],
            "container": {
                "env": [{"name": "SHARED", "value": "both"}, {"name": "VENDOR", "value": "unset"}],
                "byAccelerator": {
                    "npu": {"command": [sys.executable, "-P", "-c", ON_NPU],
                            "env": [{"name": "VENDOR", "value": "ascend"}, {"name": "NPU_ONLY", "value": "yes"},
                                    {"name": "REPORT", "value": json.dumps(HCCL)}]},
                    "gpu": {"command": [sys.executable, "-P", "-c", ON_GPU], "args": ["--gpu-recipe"],
                            "env": [{"name": "VENDOR", "value": "nvidia"}], "workingDir": "/checkpoints/gpu-work"},
                },
            },
            "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "ckpt"}}},
            "faultPolicy": {"backoffSeconds": 0, "maxBackoffSeconds": 0, "failoverAfterFaults": 1},
        },
    }


def test_a_failover_switches_command_and_environment_with_the_pool(custom: Any, core: Any, wait_for: Any) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, byo_job("byo"))
    status = wait_phase(custom, wait_for, "byo", "Succeeded")["status"]
    assert (status["pool"], status["failovers"], status["faults"][0]["class"]) == ("h20", 1, "interconnect")
    pods = core.list_namespaced_pod(NS, label_selector=f"tandem.dev/job=byo,tandem.dev/attempt={status['attempt']}")
    assert len(pods.items) == 2
    for pod in pods.items:
        trainer = pod.spec.containers[0]
        env = {e.name: e.value for e in trainer.env}
        assert trainer.command[-1] == ON_GPU and trainer.args == ["--gpu-recipe"]
        assert (env["VENDOR"], env.get("NPU_ONLY"), env["TANDEM_BACKEND"]) == ("nvidia", None, "nccl")
    # What the process itself received on the GPU pool (rank 0's log), not only what the pod spec says.
    log = core.read_namespaced_pod_log(f"byo-a{status['attempt']}-0", NS)
    seen = json.loads(next(line for line in log.splitlines() if line.startswith("{")))
    devices = str(pods.items[0].spec.containers[0].resources.limits["nvidia.com/gpu"])
    # The local kubelet runs a workingDir inside a mount where the mount lives on the host.
    assert seen["argv"] == ["--gpu-recipe"] and seen["cwd"].endswith("/gpu-work")
    # The local kubelet resolves rank 0's DNS name to its loopback address and gives the job a free port: torchrun's
    # PET_ copies follow.
    rendezvous = {k: seen["env"].pop(k) for k in ("MASTER_ADDR", "PET_MASTER_ADDR", "MASTER_PORT", "PET_MASTER_PORT")}
    assert rendezvous["MASTER_ADDR"] == rendezvous["PET_MASTER_ADDR"] and rendezvous["MASTER_ADDR"].startswith("127.")
    assert rendezvous["MASTER_PORT"] == rendezvous["PET_MASTER_PORT"]
    assert seen["env"] == {
        "VENDOR": "nvidia", "NPU_ONLY": None, "SHARED": "both", "TANDEM_BACKEND": "nccl", "PET_NNODES": "2",
        "PET_NODE_RANK": "0", "PET_NPROC_PER_NODE": devices, "NNODES": "2", "NPROC_PER_NODE": devices,
        "WORLD_SIZE": str(2 * int(devices))}
    events = core.list_namespaced_event(NS, field_selector="involvedObject.name=byo").items
    started = [e.message for e in events if e.reason == "AttemptStarted"]
    # Each attempt's Event names its own command (quoted up to 300 characters: here the start of each program).
    assert any("on pool h20" in m and "import json, os, sys\nkeys" in m for m in started)
    assert any("on pool ascend-910b" in m and "import json, os, sys, time" in m for m in started)


def test_volumes_shm_and_labels_reach_the_pods(custom: Any, core: Any, wait_for: Any) -> None:
    job = byo_job("dataset")
    job["spec"]["pools"] = ["h20"]
    job["spec"]["container"].update({"volumeMounts": [{"name": "data", "mountPath": "/data", "readOnly": True}],
                                     "shmSize": "1Gi"})
    job["spec"]["podTemplate"] = {"metadata": {"labels": {"team": "llm"}, "annotations": {"cost-center": "42"}},
                                  "spec": {"volumes": [{"name": "data", "emptyDir": {}}],
                                           "priorityClassName": "training"}}
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job)
    wait_phase(custom, wait_for, "dataset", "Succeeded")
    pod = core.read_namespaced_pod("dataset-a1-0", NS)
    assert (pod.metadata.labels["team"], pod.metadata.annotations["cost-center"]) == ("llm", "42")
    assert pod.spec.priority_class_name == "training" and pod.spec.automount_service_account_token is False
    volumes = {v.name: v for v in pod.spec.volumes}
    assert set(volumes) == {"checkpoint", "data", "dshm"}
    assert (volumes["dshm"].empty_dir.medium, volumes["dshm"].empty_dir.size_limit) == ("Memory", "1Gi")
    mounts = {m.name: m.mount_path for m in pod.spec.containers[0].volume_mounts}
    assert mounts == {"checkpoint": "/checkpoints", "data": "/data", "dshm": "/dev/shm"}


def test_kubectl_apply_names_the_refused_field(kubectl: Any) -> None:
    job = byo_job("refused")
    job["spec"]["podTemplate"] = {"spec": {"volumes": [{"name": "checkpoint", "emptyDir": {}}]}}
    refused = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(job), check=False)
    assert refused.returncode != 0
    assert "spec.podTemplate.spec.volumes" in refused.stderr
    assert "checkpoint, dshm, tandem-pod-info and tandem-supervisor are the operator's" in refused.stderr
    job["spec"]["podTemplate"] = {"spec": {"restartPolicy": "Always"}}
    unknown = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(job), check=False)
    assert unknown.returncode != 0 and 'unknown field "spec.podTemplate.spec.restartPolicy"' in unknown.stderr
    job["spec"]["podTemplate"] = {}
    job["spec"]["container"]["byAccelerator"]["gpu"]["env"] = [{"name": "WORLD_SIZE", "value": "1"}]
    contract = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(job), check=False)
    assert contract.returncode != 0 and "env WORLD_SIZE is a pod-contract variable" in contract.stderr


# A team's plain script under tandem-run: it resumes from TANDEM_RESUME_STEP, saves Hugging Face-style checkpoints,
# and rank 1 dies on attempt 1 printing HCCL's error (no termination message of its own).
UNDER_TANDEM_RUN = textwrap.dedent('''
    import os, pathlib, sys, time
    attempt, rank = int(os.environ["TANDEM_ATTEMPT"]), int(os.environ["TANDEM_NODE_RANK"])
    start = int(os.environ["TANDEM_RESUME_STEP"] or 0)
    out = pathlib.Path(os.environ["TANDEM_CHECKPOINT_DIR"]) / os.environ["RUN_NAME"]
    print("resume point", repr(os.environ["TANDEM_RESUME_STEP"]), flush=True)
    for step in range(start + 1, start + 6):
        print(f"step {step}", flush=True)
        if rank == 0 and step % 5 == 0:
            done = out / f"checkpoint-{step}"
            done.mkdir(parents=True, exist_ok=True)
            (done / "trainer_state.json").write_text("{}")
        time.sleep(0.05)
    if attempt == 1 and rank == 1:
        while not (out / "checkpoint-5" / "trainer_state.json").exists():  # rank 0's save, whenever it started
            time.sleep(0.05)
        print(os.environ["HCCL_ERROR"], file=sys.stderr, flush=True)
        sys.exit(1)
''')


def test_a_script_under_tandem_run_restarts_from_its_own_checkpoint(custom: Any, core: Any, wait_for: Any) -> None:
    job = byo_job("plain")
    job["spec"]["container"] = {
        "command": ["tandem-run", "--", sys.executable, "-P", "-c", UNDER_TANDEM_RUN],
        "env": [{"name": "RUN_NAME", "value": "plain-run"}, {"name": "HCCL_ERROR", "value": HCCL["message"]}]}
    job["spec"]["pools"] = ["ascend-910b"]
    # New pods for attempt 2 (read below), whether or not rank 0 had finished when the fault was seen.
    job["spec"]["faultPolicy"]["inPlaceRestart"] = False
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job)
    status = wait_phase(custom, wait_for, "plain", "Succeeded")["status"]
    fault = status["faults"][0]
    # tandem-run found HCCL's error in the stream and said so in the termination message; the operator restarted.
    assert (fault["class"], fault["reason"], fault["pod"], fault["checkpointStep"]) == (
        "interconnect", "HcclSocketTimeout", "plain-a1-1", 5)
    assert (status["attempt"], status["restarts"], status["lastCheckpoint"]["step"]) == (2, 1, 10)
    log = core.read_namespaced_pod_log("plain-a2-0", NS)
    assert "resume point '5'" in log and "step 6" in log and "step 5\n" not in log


# A script that saves and exits 0 when told to stop (Megatron-LM's --exit-signal-handler does): on attempt 1 it
# says it is ready and trains for a while (rank 0 finishes on its own after a few seconds); on attempt 2 every rank
# finishes at once.
EXITS_0_ON_SIGTERM = textwrap.dedent('''
    import os, signal, sys, time
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    if os.environ["TANDEM_ATTEMPT"] != "1":
        sys.exit(0)
    print("ready", flush=True)
    time.sleep(8 if os.environ["TANDEM_NODE_RANK"] == "0" else 300)
''')


def test_a_drained_rank_that_exits_0_is_restarted_not_counted_finished(custom: Any, core: Any, kubectl: Any,
                                                                        wait_for: Any) -> None:
    """`kubectl drain` evicts rank 1 (DisruptionTarget, then SIGTERM); its script exits 0, so its pod ends
    Succeeded. The operator must read that as a node fault and restart, not count the rank finished: rank 0 then
    finishing on its own would make the job Succeeded with rank 1's work never done."""
    job = byo_job("drained")
    job["spec"]["container"] = {"command": [sys.executable, "-P", "-c", EXITS_0_ON_SIGTERM]}
    job["spec"]["pools"] = ["ascend-910b", "h20"]
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job)
    for rank in (0, 1):
        wait_for(lambda rank=rank: "ready" in core.read_namespaced_pod_log(f"drained-a1-{rank}", NS), timeout=60,
                 what=f"rank {rank} to be ready")
    node = core.read_namespaced_pod("drained-a1-1", NS).spec.node_name
    try:
        kubectl("drain", node, "--force", "--ignore-daemonsets", "--timeout=60s")
        status = wait_phase(custom, wait_for, "drained", "Succeeded")["status"]
    finally:
        kubectl("uncordon", node)
    fault = status["faults"][0]
    assert (fault["class"], fault["reason"], fault.get("pod"), fault.get("node")) == (
        "node", "EvictionByEvictionAPI", "drained-a1-1", node), json.dumps(status)
    # The drained node is cordoned: ascend-910b has one node left for a 2-node gang, so attempt 2 runs on h20.
    assert (status["attempt"], status["restarts"], status["failovers"], status["pool"]) == (2, 1, 1, "h20")
