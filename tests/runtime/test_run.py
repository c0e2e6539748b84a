"""`tandem-run` supervising real commands (child Python processes): the resume point it exports, its pass-through
output, the class it finds in the whole stream (not only the tail), a hang it ends, SIGTERM forwarded, and the
termination message of the pod contract in every case."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from tandem.runtime import process_tree
from tandem.runtime.run import Options, main, parse, run, with_job_deadlines

EI0006 = ("EI0006: [PID: 1292363] 2025-04-08-18:07:20.444.436 Getting socket times out. Reason: Remote Rank did "
          "not send the data in time.")  # vllm-project/vllm-ascend#486


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "ckpt").mkdir(exist_ok=True)
    return {**os.environ, "TANDEM_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
            "TANDEM_TERMINATION_LOG": str(tmp_path / "termination-log")}


def _python(code: str) -> list[str]:
    return [sys.executable, "-P", "-c", textwrap.dedent(code)]


def _message(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "termination-log").read_text())


def test_a_script_resumes_saves_and_finishes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    env = _env(tmp_path)
    (tmp_path / "ckpt" / "out" / "checkpoint-20").mkdir(parents=True)
    (tmp_path / "ckpt" / "out" / "checkpoint-20" / "trainer_state.json").write_text("{}")
    script = _python('''
        import os, pathlib
        start = int(os.environ["TANDEM_RESUME_STEP"] or 0)
        print("resuming from", os.environ["TANDEM_RESUME_PATH"])
        for step in range(start + 1, start + 11):
            print(f"step {step} loss 1.0")
        done = pathlib.Path(os.environ["TANDEM_CHECKPOINT_DIR"]) / "out" / f"checkpoint-{start + 10}"
        done.mkdir(); (done / "trainer_state.json").write_text("{}")
    ''')
    assert run(Options(script), env) == 0
    out = capsys.readouterr().out
    assert f"resuming from {tmp_path / 'ckpt' / 'out' / 'checkpoint-20'}" in out and "step 30 loss 1.0" in out
    assert _message(tmp_path) == {"class": "none", "reason": "Completed", "message": "trained to step 30",
                                  "rank": None, "step": 30, "checkpointStep": 30, "resumedFrom": 20}


def test_the_fault_is_found_in_the_whole_stream_not_only_its_tail(tmp_path: Path) -> None:
    """The HCCL error scrolled out of the 5000 lines Tandem keeps whole (and far out of Kubernetes' 80)."""
    script = _python(f'''
        import sys
        print("step 7")
        print({EI0006!r}, file=sys.stderr)
        for n in range(7000):
            print(f"[INFO] tearing down rank {{n}}")
        sys.exit(1)
    ''')
    assert run(Options(script), _env(tmp_path)) == 3
    message = _message(tmp_path)
    assert (message["class"], message["reason"], message["step"]) == ("interconnect", "HcclSocketTimeout", 7)
    assert message["message"].startswith("EI0006")


def test_a_custom_exit_code_names_no_class(tmp_path: Path) -> None:
    assert run(Options(_python("import sys; sys.exit(3)")), _env(tmp_path)) == 1
    assert (_message(tmp_path)["class"], _message(tmp_path)["reason"]) == ("unknown", "ExitCode")


def test_a_users_exception_fails_as_the_users(tmp_path: Path) -> None:
    script = _python('''
        def load(name):
            raise ValueError(f"unknown optimizer: {name!r}")
        load("adamw8")
    ''')
    assert run(Options(script), _env(tmp_path)) == 2
    assert (_message(tmp_path)["class"], _message(tmp_path)["reason"]) == ("user", "PythonException")


def test_a_hang_is_ended_and_reported_with_the_last_step(tmp_path: Path) -> None:
    script = _python('''
        import time
        print("step 1", flush=True); print("step 2", flush=True)
        time.sleep(120)
    ''')
    started = time.monotonic()
    assert run(Options(script, progress_timeout=1.0, grace=1.0), _env(tmp_path)) == 1
    assert time.monotonic() - started < 60  # ended by the supervisor, not by the command
    message = _message(tmp_path)
    assert (message["class"], message["reason"], message["step"]) == ("unknown", "NoProgress", 2)
    assert message["message"] == "no progress for 1 s after step 2; its last line: 'step 2'"


def test_a_hang_ends_the_commands_processes_in_sessions_of_their_own(tmp_path: Path) -> None:
    """torchrun starts its workers in sessions of their own: ending the command's process group left a worker that
    handles SIGTERM (or is stuck in a driver call) running after its launcher was killed, holding its devices while
    the next attempt started in the same pod."""
    pid_file = tmp_path / "worker.pid"
    script = _python(f'''
        import pathlib, subprocess, sys, time
        worker = subprocess.Popen([sys.executable, "-c", "import signal, time; "
                                   "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                                   "time.sleep(120)"], start_new_session=True, stdout=subprocess.PIPE, text=True)
        worker.stdout.readline()
        pathlib.Path({str(pid_file)!r}).write_text(str(worker.pid))
        print("step 1", flush=True)
        time.sleep(120)
    ''')
    try:
        assert run(Options(script, progress_timeout=1.0, grace=0.5), _env(tmp_path)) == 1
        worker = int(pid_file.read_text())
        deadline = time.monotonic() + 10  # a SIGKILLed process is gone within milliseconds
        while process_tree._stat(worker) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert process_tree._stat(worker) is None
    finally:
        if pid_file.exists() and process_tree._stat(int(pid_file.read_text())) is not None:
            os.kill(int(pid_file.read_text()), signal.SIGKILL)
    assert (_message(tmp_path)["class"], _message(tmp_path)["reason"]) == ("unknown", "NoProgress")


def test_no_first_step_within_the_startup_timeout_is_a_hang_too(tmp_path: Path) -> None:
    script = _python("import time; time.sleep(120)")
    assert run(Options(script, startup_timeout=1.0, grace=1.0), _env(tmp_path)) == 1
    assert _message(tmp_path)["message"].startswith("no training step within 1 s of the start")


@pytest.mark.parametrize(("line", "step"), [("iteration      120/  500000 | consumed samples: 7680", 120),
                                            (" 12%|█▏        | 120/1000 [00:30<03:40,  4.00it/s]", 120),
                                            ("epoch 0 step=120 loss=2.1", 120), ("Step: 120", 120)])
def test_the_default_progress_lines(tmp_path: Path, line: str, step: int) -> None:
    assert run(Options(_python(f"print({line!r})")), _env(tmp_path)) == 0
    assert _message(tmp_path)["step"] == step


# The command's own exit code after SIGTERM: 143 (it died of it), or 0 (it saved and exited when told to stop, as
# Megatron-LM's --exit-signal-handler does: the pod was still stopped, not finished; ending it Succeeded would count
# a drained node's rank as done, and the job with it).
@pytest.mark.parametrize("code", [143, 0])
def test_sigterm_is_forwarded_and_the_message_says_so(tmp_path: Path, code: int) -> None:
    script = textwrap.dedent(f'''
        import signal, sys, time
        signal.signal(signal.SIGTERM, lambda *a: (print("child saw SIGTERM", flush=True), sys.exit({code})))
        print("step 5", flush=True)
        time.sleep(120)
    ''')
    tandem_run = str(Path(sys.executable).with_name("tandem-run"))
    proc = subprocess.Popen([tandem_run, "--grace", "5", "--", sys.executable, "-P", "-c", script],
                            env=_env(tmp_path), stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "step 5"
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 6 and "child saw SIGTERM" in proc.stdout.read()
    message = _message(tmp_path)
    assert (message["class"], message["reason"], message["step"]) == ("node", "Terminated", 5)


def test_a_sigterm_as_the_command_starts_is_not_lost(tmp_path: Path) -> None:
    """tandem-run took SIGTERM's default action (death, no message) when the signal came after the command started
    and before its handler was in place: its output was already pumped, so the test above could send its SIGTERM
    in between (it failed once on a loaded VM). Here the signal comes while the command is being started."""
    probe = textwrap.dedent("""
        import os, signal, subprocess, sys
        from tandem.runtime import run
        real = subprocess.Popen
        def popen(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGTERM)  # the kubelet, at the worst moment
            return real(*args, **kwargs)
        run.subprocess.Popen = popen
        options = run.Options(command=[sys.executable, "-c", "import time; time.sleep(60)"], grace=5)
        outcome = run.supervise(options, dict(os.environ), run.Stream())
        print("terminated" if outcome.terminated else "not terminated", outcome.returncode)
    """)
    done = subprocess.run([sys.executable, "-P", "-c", probe], capture_output=True, text=True, timeout=60)
    assert (done.returncode, done.stdout.split()[:1]) == (0, ["terminated"]), done.stderr[-2000:]


def test_the_command_line_is_checked(capsys: pytest.CaptureFixture[str]) -> None:
    assert parse(["--", "torchrun", "train.py"]).command == ["torchrun", "train.py"]
    assert parse(["--progress-regex", r"it (\d+)", "python", "x.py"]).progress.pattern == r"it (\d+)"
    for argv, error in ((["--"], "a command is needed"), (["--progress-regex", "step", "--", "x"], "one group"),
                        (["--checkpoint-layout", "keras", "--", "x"], "invalid choice")):
        with pytest.raises(SystemExit):
            main(argv)
        assert error in capsys.readouterr().err


def test_the_jobs_fault_policy_sets_the_deadlines_the_command_line_does_not() -> None:
    env = {"TANDEM_PROGRESS_TIMEOUT_SECONDS": "600", "TANDEM_STARTUP_TIMEOUT_SECONDS": "1800"}
    assert (with_job_deadlines(parse(["--", "x"]), env).progress_timeout,
            with_job_deadlines(parse(["--", "x"]), env).startup_timeout) == (600.0, 1800.0)
    assert with_job_deadlines(parse(["--progress-timeout", "30", "--", "x"]), env).progress_timeout == 30.0
    assert with_job_deadlines(parse(["--", "x"]), {"TANDEM_PROGRESS_TIMEOUT_SECONDS": "soon"}).progress_timeout is None


def test_the_root_cause_among_ranks_interleaved_by_torchrun(tmp_path: Path) -> None:
    """torchrun's workers share the stream: rank 1's own bug, then rank 0's collective timing out waiting for it,
    then torchrun's summary. The job's fault is rank 1's (pytorch/pytorch#88251 has the summary's shape)."""
    script = _python('''
        import sys
        lines = [
            "[rank0]: step 11",
            "[rank1]: Traceback (most recent call last):",
            '[rank1]:   File "/workspace/train.py", line 40, in <module>',
            '[rank1]:     batch = next(batches)["input_ids"]',
            "[rank1]: KeyError: 'input_ids'",
            "[rank0]:[E321 02:07:08.408271257 ProcessGroupNCCL.cpp:607] [Rank 0] Watchdog caught collective "
            "operation timeout: WorkNCCL(SeqNum=1580, OpType=ALLREDUCE) ran for 600060 milliseconds before timing out.",
            "torch.distributed.elastic.multiprocessing.errors.ChildFailedError:",
            "============================================================",
            "train.py FAILED",
        ]
        print("\\n".join(lines), file=sys.stderr)
        sys.exit(1)
    ''')
    assert run(Options(script), _env(tmp_path)) == 2
    message = _message(tmp_path)
    assert (message["class"], message["reason"], message["step"]) == ("user", "PythonException", 11)
    assert message["message"].startswith("KeyError: 'input_ids'")


def test_a_volume_that_fails_to_list_never_starts_the_command_from_scratch(tmp_path: Path,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An EIO while tandem-run looks for the resume point: a storage fault of the attempt (retried), not the
    command started with an empty TANDEM_RESUME_STEP over a good checkpoint."""
    import errno

    env = _env(tmp_path)
    (tmp_path / "ckpt" / "checkpoint-400").mkdir()
    (tmp_path / "ckpt" / "checkpoint-400" / "trainer_state.json").write_text("{}")
    real = Path.iterdir

    def iterdir(self: Path) -> Any:
        if self == tmp_path / "ckpt":
            raise OSError(errno.EIO, "Input/output error", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    started = tmp_path / "started"
    assert run(Options(_python(f"open({str(started)!r}, 'w').write('x')")), env) == 7
    assert not started.exists()
    message = _message(tmp_path)
    assert (message["class"], message["reason"], message["resumedFrom"]) == ("storage", "VolumeIOError", None)
    assert message["message"].startswith(f"the checkpoint folder {tmp_path / 'ckpt'} cannot be read")
