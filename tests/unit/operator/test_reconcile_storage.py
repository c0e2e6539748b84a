"""A storage fault through the whole core (issue 14): recorded, the gang torn down, a restart after the longer
backoff on the same pool; no node excluded, nothing counted toward a failover; the Events name the volume. Each
case compares the whole decision."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from builders import NOW, make_failed_launcher_pod, make_job, make_node, make_pod, make_pool
from decisions import condition, nothing, summary, zulu

from tandem.operator.api import TrainingJob
from tandem.operator.classify import classify_pod
from tandem.operator.reconcile import Decision, Observation, reconcile

POOLS = {"ascend-910b": make_pool(), "h20": make_pool("h20", "gpu", devices=4)}
NODES = [*(make_node(f"ascend-{i}", "ascend-910b") for i in range(3)), make_node("h20-0", "h20"),
         make_node("h20-1", "h20")]
START = "2026-11-23T11:00:00Z"
NOW_Z = zulu(NOW)
FULL = "OSError: [Errno 28] No space left on device: '/checkpoints/step-000000150/__1_0.distcp'"
HOW = ("storage faults wait at least 60s (4x backoffSeconds, up to maxBackoffSeconds), exclude no node and move "
       "no job")


def report(cls: str, reason: str, message: str) -> str:
    return json.dumps({"class": cls, "reason": reason, "message": message, "rank": 1, "step": 130,
                       "checkpointStep": 100, "resumedFrom": None})


def full(**fields: Any) -> dict[str, Any]:
    base = {"observedGeneration": 1, "phase": "Running", "message": "", "pool": "ascend-910b", "attempt": 1,
            "restarts": 0, "failovers": 0, "lastCheckpoint": {"step": 0}, "faults": [], "excludedNodes": [],
            "exclusions": [], "poolFaults": 0, "pendingEvents": [], "conditions": [], "startTime": START}
    return {key: value for key, value in {**base, **fields}.items() if value is not None}


def running(status: dict[str, Any] | None = None, **spec: Any) -> TrainingJob:
    base = {"phase": "Running", "attempt": 1, "pool": "ascend-910b", "startTime": START}
    return make_job(status={**base, **(status or {})}, **spec)


def failed_gang(message: str, exit_code: int = 7) -> list[dict[str, Any]]:
    return [make_pod("llama", 1, 0, "Running", "ascend-0"),
            make_pod("llama", 1, 1, "Failed", "ascend-1", exit_code=exit_code, message=message)]


def decide(job: TrainingJob, pods: list[dict[str, Any]]) -> Decision:
    return reconcile(Observation(job=job, pools=POOLS, nodes=NODES, pods=pods, service_exists=True, now=NOW,
                                 device_faults={}, force_delete_after=30))


def test_a_full_volume_restarts_later_on_the_same_pool_and_blames_no_node() -> None:
    # One interconnect fault already on the pool and failoverAfterFaults 2: a storage fault must not be the second.
    earlier = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "class": "interconnect", "node": "ascend-2",
               "reason": "HcclSocketTimeout", "message": "", "checkpointStep": 50}  # progress since: streak 1
    job = running({"poolFaults": 1, "faults": [earlier]}, faultPolicy={"backoffSeconds": 10,
                                                                        "failoverAfterFaults": 2})
    decision = decide(job, failed_gang(report("storage", "DiskFull", FULL)))
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "storage", "reason": "DiskFull", "message": FULL, "step": 130, "checkpointStep": 100}
    restarting = ("storage fault DiskFull on the checkpoint volume (persistentVolumeClaim ckpt): restart 1 of 10 on "
                  f"ascend-910b 60s after the attempt's pods stop; {HOW}")
    assert summary(decision) == nothing(
        full(phase="Restarting", message=restarting, restarts=1, faults=[{**earlier, "time": NOW_Z}, fault],
             lastCheckpoint={"step": 100, "time": NOW_Z}, restartDelaySeconds=60,
             excludedNodes=[], exclusions=[],  # the volume, not ascend-1
             poolFaults=1,  # still the one interconnect fault: no failover
             conditions=[condition("Ready", False, "Restarting", restarting)]),
        delete=["llama-a1-0"],
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: storage/DiskFull: {FULL}; "
                 "on the checkpoint volume (persistentVolumeClaim ckpt)"),
                ("Normal", "Restarting", restarting)],
        requeue_after=2.0, restarted=("ascend-910b", "storage"))


def test_the_next_attempt_starts_after_the_longer_backoff_on_the_same_nodes() -> None:
    job = running({"phase": "Restarting", "restarts": 1, "restartDelaySeconds": 60})
    old = [make_pod("llama", 1, 1, "Failed", "ascend-1", exit_code=7)]
    scheduled = full(phase="Restarting", restarts=1, restartDelaySeconds=60,
                     nextAttemptTime=zulu(NOW + timedelta(seconds=60)))
    assert summary(decide(job, old)) == nothing(scheduled, requeue_after=60.0)


READ_ONLY_TAIL = ("Traceback (most recent call last):\n"
                  '  File "/opt/conda/lib/python3.12/site-packages/checkm2/fileManager.py", line 128, in download\n'
                  "    with open(diamond_location, 'w') as dd:\n"
                  "OSError: [Errno 30] Read-only file system: '/checkpoints/fence/.attempt-2.8295.tmp'")


@pytest.mark.parametrize(("pod", "reason"), [
    (make_failed_launcher_pod(exit_code=7), "ExitCode"),  # the launcher's exit code 7 alone says storage
    (make_pod("llama", 1, 0, "Failed", "n1", exit_code=1, message=READ_ONLY_TAIL), "ReadOnlyVolume"),  # own command
])  # fmt: skip
def test_storage_from_the_exit_code_or_the_log_tail_excludes_no_node(pod: dict[str, Any], reason: str) -> None:
    found = classify_pod(pod, make_node("n1", "ascend-910b"), [])
    assert (found.fault_class.value, found.reason, found.excludes_node) == ("storage", reason, False)


def test_a_volume_on_nfs_is_named_by_server_and_path() -> None:
    job = running(checkpoint={"volume": {"nfs": {"server": "10.0.0.5", "path": "/exports/ckpt"}}})
    stale = "OSError: [Errno 116] Stale file handle"
    decision = decide(job, failed_gang(report("storage", "StaleFileHandle", stale)))
    assert decision.events[0].message == ("attempt 1, llama-a1-1 on node ascend-1: storage/StaleFileHandle: "
                                          f"{stale}; on the checkpoint volume (nfs 10.0.0.5:/exports/ckpt)")
    assert decision.status.restart_delay_seconds == 60 and decision.status.excluded_nodes == []


def test_a_dataset_read_error_names_the_dataset_file_not_the_checkpoint_volume() -> None:
    # The volume under a dataset failed: the Events must not send the user to look at the checkpoint volume.
    eio = "OSError: [Errno 5] Input/output error: '/data/shards/train-00003.bin'"
    decision = decide(running(), failed_gang(report("storage", "VolumeIOError", eio)))
    where = "/data/shards/train-00003.bin, outside the checkpoint volume (persistentVolumeClaim ckpt at /checkpoints)"
    restarting = (f"storage fault VolumeIOError on {where}: restart 1 of 10 on ascend-910b 60s after the attempt's "
                  f"pods stop; {HOW}")
    fault = {"time": NOW_Z, "attempt": 1, "pool": "ascend-910b", "node": "ascend-1", "pod": "llama-a1-1",
             "class": "storage", "reason": "VolumeIOError", "message": eio, "step": 130, "checkpointStep": 100}
    assert summary(decision) == nothing(
        full(phase="Restarting", message=restarting, restarts=1, faults=[fault],
             lastCheckpoint={"step": 100, "time": NOW_Z}, restartDelaySeconds=60,
             conditions=[condition("Ready", False, "Restarting", restarting)]),
        delete=["llama-a1-0"],
        events=[("Warning", "FaultDetected", f"attempt 1, llama-a1-1 on node ascend-1: storage/VolumeIOError: {eio}; "
                 f"on {where}"),
                ("Normal", "Restarting", restarting)],
        requeue_after=2.0, restarted=("ascend-910b", "storage"))
