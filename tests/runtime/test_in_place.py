"""tandem-train's side of in-place restarts (issue 18), on a real 2-rank run: after an interconnect fault the
launcher keeps its pod, reports the fault and waits; a newer attempt on the pod's labels file starts a new
generation of workers (warm: the standbys) from the newest checkpoint, which passes its first step (Ready, a
`stepping` report) and finishes with the same losses as an uninterrupted run. Faults of other classes, and a wait
that runs out, end the pod with the fault as before."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

from tandem.in_place import last_report
from tandem.runtime.faults import EXIT_CODES


def in_place_env(rt: Any, root: Path, inject: str, wait: str = "120",
                 training: dict[str, Any] | None = None) -> tuple[dict[str, str], Path, Path]:
    labels, ready = root.parent / "pod" / "labels", root.parent / "run" / "ready"
    labels.parent.mkdir(parents=True)
    labels.write_text('tandem.dev/attempt="1"\ntandem.dev/job="test"')
    env = rt.contract_env(root, 2, training, TANDEM_FAULT_INJECT=inject, TANDEM_POD_LABELS=str(labels),
                          TANDEM_READY_FILE=str(ready), TANDEM_IN_PLACE_WAIT_SECONDS=wait, TANDEM_JOB_UID="uid-1")
    return env, labels, ready


def start_launcher(env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """tandem-train's launcher in the background, its output into `log` (the test talks to it meanwhile)."""
    with log.open("w") as out:
        return subprocess.Popen([sys.executable, "-m", "tandem.runtime.launcher"], env=env, stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)


def reports(output: str) -> list[dict[str, Any]]:
    out = []
    for line in output.splitlines():
        report = last_report(line)
        if report is not None:
            out.append({"attempt": report.attempt, "state": report.state, "step": report.step,
                        "class": (report.fault or {}).get("class")})
    return out


def test_an_interconnect_fault_waits_and_restarts_in_place_from_the_checkpoint(rt: Any, tmp_path: Path,
                                                                               baseline2: Any) -> None:
    root = tmp_path / "ckpt"
    env, labels, ready = in_place_env(rt, root, "interconnect@step=5,rank=1,attempt=1,flavor=hccl")
    log = tmp_path / "out.log"
    started = time.monotonic()
    proc = start_launcher(env, log)
    try:
        wait_for(lambda: '"state":"faulted"' in log.read_text(), timeout=90, what="the faulted report")
        assert proc.poll() is None and not ready.exists()  # kept, not Ready
        labels.write_text('tandem.dev/attempt="2"\ntandem.dev/job="test"')
        asked = time.monotonic()
        wait_for(lambda: '"attempt":2,"state":"stepping"' in log.read_text(), timeout=90, what="attempt 2's step")
        stepped = time.monotonic() - asked
        assert ready.read_text() == "2\n"
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
    output = log.read_text()
    said = reports(output)
    assert [(r["attempt"], r["state"], r["class"]) for r in said] == [
        (1, "stepping", None), (1, "faulted", "interconnect"), (2, "restarting", None), (2, "stepping", None)]
    message = json.loads(Path(env["TANDEM_TERMINATION_LOG"]).read_text())
    # The step-4 save is asynchronous: when rank 1 dies at step 5 it may still be in flight, and 2 is the newest.
    assert (message["class"], message["step"]) == ("none", 8) and message["resumedFrom"] in (2, 4)
    assert said[-1]["step"] == message["resumedFrom"] + 1  # the new generation's first step
    events = [rt.parse_line(line) for line in output.splitlines()]
    losses = {int(e["step"]): float(e["loss"]) for e in events if e.get("event") == "step"}
    assert losses == pytest.approx(baseline2.losses(), rel=1e-5)  # the same training, resumed exactly
    assert [e.get("attempt") for e in events if e.get("event") == "in_place_restart"] == ["2"]
    assert stepped < 60 and time.monotonic() - started < 180


@pytest.mark.parametrize(("inject", "code"), [("oom@step=3,rank=1,attempt=1,flavor=npu", "oom"),
                                              ("user@step=3,attempt=1", "user")])
def test_other_faults_end_the_pod_as_before(rt: Any, tmp_path: Path, inject: str, code: str) -> None:
    env, _, _ = in_place_env(rt, tmp_path / "ckpt", inject)
    run = rt.launch(env)
    assert (run.returncode, run.termination["class"]) == (EXIT_CODES[code], code)
    assert [r["state"] for r in reports(run.output)] in ([], ["stepping"])


def test_a_wait_that_runs_out_ends_the_pod_with_the_fault(rt: Any, tmp_path: Path) -> None:
    env, _, _ = in_place_env(rt, tmp_path / "ckpt", "interconnect@step=3,rank=1,attempt=1,flavor=hccl", wait="2")
    run = rt.launch(env)
    assert (run.returncode, run.termination["class"], run.termination["reason"]) == (
        EXIT_CODES["interconnect"], "interconnect", "HcclSocketTimeout")
    assert [r["state"] for r in reports(run.output)] == ["stepping", "faulted"]


def test_a_sigterm_while_the_workers_run_ends_the_pod_without_waiting_in_place(rt: Any, tmp_path: Path) -> None:
    """The kubelet's SIGTERM (the operator chose a full restart) reached the pod while its workers were stuck in a
    collective whose peer was gone; they then ended with an interconnect fault, and the launcher waited in place for
    a restart that would never come, until the kubelet's SIGKILL 30 s later (a demo's failover, teardown 30.04 s)."""
    import signal

    # The SIGTERM must come before the watchdog ends the hang: 8 s, room for a slow poll on a loaded VM.
    env, _, _ = in_place_env(rt, tmp_path / "ckpt", "hang@step=3,rank=1,attempt=1",
                             training={**rt.TRAINING, "watchdogSeconds": 8})
    log = tmp_path / "out.log"
    proc = start_launcher(env, log)
    try:
        # Step 2's line comes after its stop agreement: the SIGTERM is read at step 3's, which rank 1 never reaches.
        wait_for(lambda: any(e.get("event") == "step" and e.get("step") == "2"
                             for e in map(rt.parse_line, log.read_text().splitlines())), timeout=90, what="step 2")
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=60)  # the watchdog ends the hang after 8 s; the in-place wait is 120 s
    finally:
        if proc.poll() is None:
            proc.kill()
    message = json.loads(Path(env["TANDEM_TERMINATION_LOG"]).read_text())
    assert (returncode, message["class"], message["reason"]) == (
        EXIT_CODES["interconnect"], "interconnect", "CollectiveHang")
    assert [r["state"] for r in reports(log.read_text())] == ["stepping"]  # no `faulted`: nothing waits
