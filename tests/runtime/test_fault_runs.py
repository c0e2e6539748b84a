"""Injected faults end a real 2-rank run with the right exit code and termination message, fast."""

from __future__ import annotations

import json
import signal
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from tandem.runtime.ckpt_layout import scan
from tandem.runtime.faults import EXIT_CODES


def seconds_between(first: dict[str, str], last: dict[str, str]) -> float:
    t0, t1 = (datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in (first, last))
    return (t1 - t0).total_seconds()


def test_interconnect_fault_reports_the_root_cause_rank(rt: Any, tmp_path: Path) -> None:
    env = rt.contract_env(tmp_path / "ckpt", 2, TANDEM_FAULT_INJECT="interconnect@step=3,rank=1,flavor=hccl")
    run = rt.launch(env)
    assert run.returncode == EXIT_CODES["interconnect"] == 3
    msg = run.termination
    assert (msg["class"], msg["reason"], msg["rank"], msg["step"]) == ("interconnect", "HcclSocketTimeout", 1, 3)
    assert "EI0006" in msg["message"] and "Getting socket times out" in msg["message"]
    # The step-2 save is asynchronous and may still be in flight when rank 1 dies at step 3 (on a
    # loaded machine it is): the report names exactly the newest checkpoint that is complete on disk.
    complete = [e.step for e in scan(tmp_path / "ckpt") if e.state == "complete"]
    assert msg["checkpointStep"] == (max(complete) if complete else None) and msg["resumedFrom"] is None
    assert msg["checkpointStep"] in (2, None)
    # Rank 0, stopped because rank 1 died, is not the one reported; the pod ends within seconds.
    (fault,) = [e for e in run.events("worker_fault") if e["rank"] == "1"]
    (end,) = run.events("terminated")
    assert seconds_between(fault, end) < 5


def test_hang_is_reported_as_collective_hang_soon_after_the_deadline(rt: Any, tmp_path: Path) -> None:
    training = {**rt.TRAINING, "watchdogSeconds": 3}
    env = rt.contract_env(tmp_path / "ckpt", 2, training, TANDEM_FAULT_INJECT="hang@step=3,rank=1")
    run = rt.launch(env)
    assert run.returncode == EXIT_CODES["interconnect"]
    msg = run.termination
    assert (msg["class"], msg["reason"], msg["step"]) == ("interconnect", "CollectiveHang", 3)
    assert msg["rank"] in (0, 1) and "watchdogSeconds=3" in msg["message"]
    last_step = [e for e in run.events("step")][-1]
    assert last_step["step"] == "2"
    (end,) = run.events("terminated")
    assert 3 <= seconds_between(last_step, end) < 3 + 12  # soon after the deadline: room for a loaded VM


def test_device_oom_on_one_rank(rt: Any, tmp_path: Path) -> None:
    env = rt.contract_env(tmp_path / "ckpt", 2, TANDEM_FAULT_INJECT="oom@step=2,rank=0,flavor=npu")
    run = rt.launch(env)
    assert run.returncode == EXIT_CODES["oom"] == 5
    msg = run.termination
    assert (msg["class"], msg["reason"], msg["rank"], msg["step"]) == ("oom", "DeviceOOM", 0, 2)
    assert msg["message"].startswith("OutOfMemoryError: NPU out of memory. Tried to allocate")
    assert msg["checkpointStep"] is None


def test_bad_config_is_a_user_fault_naming_the_fields(rt: Any, tmp_path: Path) -> None:
    training = {"stepz": 5, "data": {"maxbytes": 10}, "lr": -1}
    env = rt.contract_env(tmp_path / "ckpt", 2, training)
    run = rt.launch(env)
    assert run.returncode == EXIT_CODES["user"] == 2
    msg = run.termination
    assert (msg["class"], msg["reason"]) == ("user", "InvalidConfig")
    for name in ("'stepz'", "'data.maxbytes'", "lr:"):
        assert name in msg["message"]
    assert run.seconds < 10  # refused by the launcher, before any worker imports torch
    assert not run.events("training_start")


def test_a_huge_global_batch_is_refused_at_once(rt: Any, tmp_path: Path) -> None:
    # `globalBatch: 1e30` hung the launcher at 100 % CPU (a batch plan linear in the batch).
    run = rt.launch(rt.contract_env(tmp_path / "ckpt", 2, {**rt.TRAINING, "globalBatch": 1e30}), timeout=30)
    assert run.returncode == EXIT_CODES["user"]
    msg = run.termination
    assert (msg["class"], msg["reason"]) == ("user", "InvalidConfig") and "globalBatch:" in msg["message"]
    assert run.seconds < 10 and not run.events("training_start")


def test_sigterm_saves_a_checkpoint_and_reports_termination(rt: Any, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    env = rt.contract_env(root, 2, {**rt.TRAINING, "steps": 400}, TANDEM_CHECKPOINT_INTERVAL_STEPS="2")
    started = time.monotonic()
    proc = rt.start(env)
    first = root / "step-000000002" / "manifest.json"
    rt.wait_for(lambda: first.exists() or proc.poll() is not None, timeout=90, what="the first checkpoint")
    proc.send_signal(signal.SIGTERM)  # what the kubelet does when the pod is deleted or preempted
    run = rt.finish(proc, env, started)
    msg = run.termination
    assert run.returncode == EXIT_CODES["node"], run.output[-3000:]
    assert (msg["class"], msg["reason"]) == ("node", "Terminated")
    # Every rank stopped after the same step and that step was saved before the exit.
    assert msg["checkpointStep"] == msg["step"] and 2 <= msg["step"] < 400
    manifest = json.loads((root / f"step-{msg['step']:09d}" / "manifest.json").read_text())
    assert manifest["state"]["samplesConsumed"] == msg["step"] * rt.TRAINING["globalBatch"]
