"""tandem-run's side of in-place restarts (issue 18) with real child processes: after HCCL's EI0006 the pod stays
and waits; a newer attempt on the labels file runs the command again as that attempt (its fence token, its resume
point); a newer attempt while the command still runs (another pod faulted) stops it first; a user error ends the
pod as before."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from waiting import wait_for

from tandem.in_place import attempt_token, last_report
from tandem.runtime.faults import EXIT_CODES

EI0006 = ("EI0006: [PID: 1292363] 2025-04-08-18:07:20.444.436 Getting socket times out. Reason: Remote Rank did "
          "not send the data in time.")  # vllm-project/vllm-ascend#486

# Trains "steps" 1..6 from TANDEM_RESUME_STEP, saving a torchtitan-style step-<n>/ after steps 2 and 4; attempt 1
# fails at step 3 with EI0006 when FAIL is set, or sleeps there when HANG is set (its gang is elsewhere at fault).
# With IGNORE_TERM it only says so when told to stop (a rank stuck in a collective does not stop either).
SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    if os.environ.get("IGNORE_TERM"):
        signal.signal(signal.SIGTERM, lambda signum, frame: print("TERM ignored", flush=True))
    root = Path(os.environ["TANDEM_CHECKPOINT_DIR"])
    attempt = os.environ["TANDEM_ATTEMPT"]
    print(f"attempt={attempt} token={os.environ['TANDEM_ATTEMPT_TOKEN']} resume={os.environ['TANDEM_RESUME_STEP']}",
          flush=True)
    for step in range(int(os.environ["TANDEM_RESUME_STEP"] or 0) + 1, 7):
        if step == 3 and attempt == "1":
            if os.environ.get("FAIL"):
                print(os.environ["FAIL"], file=sys.stderr, flush=True)
                sys.exit(1)
            time.sleep(600)
        print(f"step {step}", flush=True)
        if step % 2 == 0:
            (root / f"step-{step}").mkdir()
            (root / f"step-{step}" / ".metadata").write_text("{}")
""")


def start(tmp_path: Path, *options: str, **extra: str) -> tuple[subprocess.Popen[bytes], Path, Path, Path]:
    root, labels, log = tmp_path / "ckpt", tmp_path / "pod" / "labels", tmp_path / "out.log"
    root.mkdir()
    labels.parent.mkdir()
    labels.write_text('tandem.dev/attempt="1"')
    env = {**os.environ, "TANDEM_CHECKPOINT_DIR": str(root), "TANDEM_TERMINATION_LOG": str(tmp_path / "term"),
           "TANDEM_ATTEMPT": "1", "TANDEM_JOB_UID": "uid-1", "TANDEM_ATTEMPT_TOKEN": attempt_token("uid-1", 1),
           "TANDEM_POD_LABELS": str(labels), "TANDEM_READY_FILE": str(tmp_path / "run" / "ready"),
           "TANDEM_IN_PLACE_WAIT_SECONDS": "60", **extra}
    with log.open("wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "tandem.runtime.run", "--checkpoint-layout", "torchtitan",
                                 *options, "--", sys.executable, "-P", "-c", SCRIPT], env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    return proc, labels, log, tmp_path / "run" / "ready"


def said(log: Path) -> list[tuple[int, str]]:
    return [(r.attempt, r.state) for line in log.read_text().splitlines() if (r := last_report(line)) is not None]


def finish(proc: subprocess.Popen[bytes], tmp_path: Path) -> dict[str, Any]:
    assert proc.wait(timeout=60) == 0
    return json.loads((tmp_path / "term").read_text())


def test_after_hccls_error_the_command_runs_again_as_the_next_attempt(tmp_path: Path) -> None:
    proc, labels, log, ready = start(tmp_path, FAIL=EI0006)
    try:
        wait_for(lambda: (1, "faulted") in said(log), timeout=30, what="the faulted report")
        assert proc.poll() is None and not ready.exists()
        report = next(r for line in log.read_text().splitlines() if (r := last_report(line)) and r.state == "faulted")
        assert (report.fault["class"], report.fault["reason"], report.fault["checkpointStep"]) == (
            "interconnect", "HcclSocketTimeout", 2)
        labels.write_text('tandem.dev/attempt="2"')
        message = finish(proc, tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert said(log) == [(1, "stepping"), (1, "faulted"), (2, "restarting"), (2, "stepping")]
    assert f"attempt=2 token={attempt_token('uid-1', 2)} resume=2" in log.read_text()
    assert (message["class"], message["resumedFrom"], message["step"]) == ("none", 2, 6)
    assert ready.read_text() == "2\n"


def test_a_newer_attempt_stops_a_command_that_still_runs(tmp_path: Path) -> None:
    """Another pod of the gang faulted: this one's command still runs (stuck in a collective) when its label
    moves; it is stopped, and run again as the new attempt."""
    proc, labels, log, _ = start(tmp_path)
    try:
        wait_for(lambda: "step 2" in log.read_text() and (tmp_path / "ckpt" / "step-2").exists(), timeout=30,
                 what="step 2")
        labels.write_text('tandem.dev/attempt="2"')
        message = finish(proc, tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert said(log) == [(1, "stepping"), (2, "restarting"), (2, "stepping")]
    assert (message["class"], message["resumedFrom"]) == ("none", 2)


def test_a_user_error_ends_the_pod_as_before(tmp_path: Path) -> None:
    proc, _, log, _ = start(tmp_path, FAIL="ModuleNotFoundError: No module named 'megatron'")
    assert proc.wait(timeout=30) == EXIT_CODES["user"]
    message = json.loads((tmp_path / "term").read_text())
    assert (message["class"], said(log)) == ("user", [(1, "stepping")])


def test_a_pod_told_to_stop_while_a_hang_is_being_ended_does_not_wait_in_place(tmp_path: Path) -> None:
    """The pod's SIGTERM came while tandem-run was ending a hang (the command ignored its SIGTERM): the hang is an
    `unknown` fault, one to wait with, and the pod waited in place for a restart the operator had decided against
    (it was deleting the pod) until the kubelet's SIGKILL."""
    import signal

    # The pod's SIGTERM must come within the grace: 10 s, room for a slow poll on a loaded VM.
    proc, _, log, _ = start(tmp_path, "--progress-timeout", "2", "--grace", "10", IGNORE_TERM="1")
    try:
        wait_for(lambda: "TERM ignored" in log.read_text(), timeout=30, what="the hang being ended")
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=40)  # the command is killed 10 s after its SIGTERM; the wait would be 60 s
    finally:
        if proc.poll() is None:
            proc.kill()
    message = json.loads((tmp_path / "term").read_text())
    assert (returncode, message["class"], message["reason"]) == (EXIT_CODES["unknown"], "unknown", "NoProgress")
    assert said(log) == [(1, "stepping")]  # no `faulted`: nothing waits
