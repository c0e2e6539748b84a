"""The launcher's decisions from worker exits and reports, and two pods forming one job."""

from __future__ import annotations

import json
import signal
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from processes import free_port

from tandem.runtime.config import contract_from_env
from tandem.runtime.faults import Fault, root_cause
from tandem.runtime.launcher import Exit, collect, oom_kills, worker_env
from tandem.runtime.metrics import Metrics
from tandem.runtime.worker import report_path


def _report(folder: Path, fault: Fault, resumed: int | None = None) -> None:
    report_path(folder, fault.rank or 0).write_text(json.dumps({**fault.to_json(), "resumedFrom": resumed}))


def test_collect_prefers_reports_and_ignores_ranks_the_launcher_stopped(tmp_path: Path) -> None:
    _report(tmp_path, Fault("interconnect", "HcclExecTimeout", "EI0002", rank=2, step=7, time=5.0), resumed=4)
    exits = [
        Exit(0, 0, -signal.SIGKILL, 6.0, killed_by_us=True),  # stopped after rank 2 failed
        Exit(1, 1, -signal.SIGKILL, 5.5, killed_by_us=False),  # died on its own without a report
        Exit(2, 2, 3, 5.1, killed_by_us=False),
    ]
    faults, step, resumed, finished = collect(exits, tmp_path)
    assert [(f.rank, f.cls, f.reason) for f in faults] == [
        (1, "unknown", "Killed"),
        (2, "interconnect", "HcclExecTimeout"),
    ]
    assert (step, resumed, finished) == (7, 4, False)
    # EI0002 is a rank that waited for a peer (a symptom); the rank that died unexplained ranks above it, though the
    # timeout fired first (tandem.faults.taxonomy.cause_rank, the same order as the operator's).
    assert root_cause(faults).rank == 1
    # The pod's memory cgroup counted an OOM kill while the workers ran: the SIGKILL was the OOM killer's.
    faults, *_ = collect(exits, tmp_path, oom_killed=True)
    assert (faults[0].rank, faults[0].cls, faults[0].reason) == (1, "oom", "OOMKilled")
    assert root_cause(faults).rank == 1


def test_oom_kills_are_read_from_the_memory_cgroup(tmp_path: Path) -> None:
    assert oom_kills(tmp_path) is None  # no cgroup file system: unknown, not zero
    (tmp_path / "memory.events").write_text("low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n")
    assert oom_kills(tmp_path) == 2  # cgroup v2
    v1 = tmp_path / "v1"
    (v1 / "memory").mkdir(parents=True)
    (v1 / "memory" / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 5\n")
    assert oom_kills(v1) == 5  # cgroup v1


def test_collect_success_needs_every_rank(tmp_path: Path) -> None:
    for rank in (0, 1):
        _report(tmp_path, Fault("none", "Completed", "ok", rank=rank, step=9, time=1.0))
    faults, step, _, finished = collect([Exit(r, r, 0, 1.0, False) for r in (0, 1)], tmp_path)
    assert (step, finished, root_cause(faults)) == (9, True, None)


def test_the_ranks_say_where_they_resumed_from_once_they_know(tmp_path: Path) -> None:
    exits = [Exit(r, r, 0, 1.0, False) for r in (0, 1)]
    for rank in (0, 1):  # checkpoint 6 (the launcher's choice) was rejected; onUnreadable=scratch: from step 0
        _report(tmp_path, Fault("none", "Completed", "ok", rank=rank, step=9, time=1.0), resumed=None)
    assert collect(exits, tmp_path, resume=6)[2] is None
    for rank in (0, 1):  # failed before they knew: the launcher's choice stands
        report_path(tmp_path, rank).write_text(json.dumps(Fault("user", "X", "x", rank=rank).to_json()))
    assert collect(exits, tmp_path, resume=6)[2] == 6


def test_worker_env_numbers_ranks_across_pods() -> None:
    contract = contract_from_env({"TANDEM_NODES": "2", "TANDEM_NODE_RANK": "1", "TANDEM_DEVICES_PER_NODE": "4",
                                  "TANDEM_ACCELERATOR": "npu", "MASTER_ADDR": "job-0.job"})  # fmt: skip
    env = worker_env(contract, {"PATH": "/bin"}, local_rank=2)
    assert (env["RANK"], env["LOCAL_RANK"], env["WORLD_SIZE"], env["LOCAL_WORLD_SIZE"]) == ("6", "2", "8", "4")
    # watchdogSeconds 300 + 30, as a multiple of 68 s for a generation the pool does not name (runtime/timeouts.py)
    assert env["MASTER_ADDR"] == "job-0.job" and env["HCCL_EXEC_TIMEOUT"] == "340"


def test_prometheus_endpoint_serves_the_metrics(rt: Any) -> None:
    port = free_port()
    metrics = Metrics()
    metrics.step.set(12)
    metrics.serve(port)
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()
    assert "tandem_train_step 12.0" in body and "tandem_train_checkpoints_total" in body


def test_two_pods_form_one_job(rt: Any, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    port = free_port()
    # Both pods on one host ask for the same metrics port: one serves, the other trains without it.
    training = {**rt.TRAINING, "steps": 4, "parallel": "ddp", "metrics": {"port": port, "logEverySteps": 1}}
    env0 = rt.contract_env(root, 1, training, TANDEM_NODES="2", TANDEM_NODE_RANK="0")
    env1 = {**env0, "TANDEM_NODE_RANK": "1", "TANDEM_TERMINATION_LOG": str(tmp_path / "pod1.termination-log")}
    started = time.monotonic()
    pods = [rt.start(env0), rt.start(env1)]
    runs = [rt.finish(pod, env, started) for pod, env in zip(pods, (env0, env1), strict=True)]
    for run in runs:
        assert run.returncode == 0, run.output[-3000:]
        assert run.termination["class"] == "none" and run.termination["checkpointStep"] == 4
    assert len(runs[0].events("metrics_port_unavailable") + runs[1].events("metrics_port_unavailable")) == 1
    (start,) = [e for e in runs[0].events("training_start")]
    assert (start["world"], start["parallel"], start["accumulation"]) == ("2", "ddp", "3")
    manifest = json.loads((root / "step-000000004" / "manifest.json").read_text())
    assert manifest["worldSize"] == 2


def test_the_launcher_never_imports_torch() -> None:
    import subprocess
    import sys

    code = "import sys, tandem.runtime.launcher; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False"


def test_every_worker_exit_is_seen_while_a_standby_child_lives(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers that fail at once, the second reaped by the Popen that stops it (Popen.kill polls first), and a
    standby worker alive beside them: the launcher takes each exit from its worker's own Popen and returns; a wait
    for any child would wait for the standby for ever."""
    import signal
    import subprocess
    import sys

    from tandem.runtime import launcher

    standby = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    codes = iter([2, 3])
    monkeypatch.setattr(launcher, "_start_worker", lambda local, args, env, warm: subprocess.Popen(
        [sys.executable, "-c", f"import sys; sys.exit({next(codes)})"]))
    contract = contract_from_env({"TANDEM_NODES": "1", "TANDEM_NODE_RANK": "0", "TANDEM_DEVICES_PER_NODE": "2",
                                  "TANDEM_ACCELERATOR": "cpu", "MASTER_ADDR": "127.0.0.1"})

    def too_long(signum: int, frame: object) -> None:
        raise TimeoutError("supervise() still waits with every worker gone")

    # An alarm, so that a launcher waiting for the standby fails the test instead of hanging it.
    previous = signal.signal(signal.SIGALRM, too_long)
    signal.alarm(30)
    try:
        generation = launcher.supervise(contract, {}, tmp_path / "t", None, tmp_path)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
        standby.kill()
    exits = {e.local_rank: e for e in generation.exits}
    assert sorted(exits) == [0, 1] and generation.moved_to is None
    # Whichever exits first fails the attempt; the other either failed on its own or was stopped by the launcher.
    first = min(exits.values(), key=lambda e: e.at)
    assert first.returncode in (2, 3) and not first.killed_by_us
    other = exits[1 - first.local_rank]
    assert other.returncode in (2, 3) or (other.killed_by_us and other.returncode == -9)
