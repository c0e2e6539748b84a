"""Fault injection for any command (tandem.sdk.progress inside a script; `tandem-run --inject-faults` from outside a
script that uses nothing of Tandem) and the attempt fence tandem-run claims on the checkpoint volume, with real
child processes under tandem-run."""

from __future__ import annotations

import json
import os
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tandem.runtime.fence import Fence
from tandem.runtime.run import Options, run

PLAIN_LOOP = '''
    import time
    for step in range(1, 6):
        print(f"step {step} loss 1.0", flush=True)
        time.sleep(0.3)
'''


def _env(tmp_path: Path, **more: str) -> dict[str, str]:
    (tmp_path / "ckpt").mkdir(exist_ok=True)
    return {**os.environ, "TANDEM_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
            "TANDEM_TERMINATION_LOG": str(tmp_path / "termination-log"), **more}


def _python(code: str) -> list[str]:
    return [sys.executable, "-P", "-c", textwrap.dedent(code)]


def _message(tmp_path: Path) -> dict[str, Any]:
    return json.loads((tmp_path / "termination-log").read_text())


def test_an_sdk_script_raises_the_injected_hccl_error_at_its_step(tmp_path: Path) -> None:
    script = _python('''
        import tandem.sdk as sdk
        for step in range(1, 6):
            sdk.progress(step)
            print(f"survived step {step}", flush=True)
    ''')
    env = _env(tmp_path, TANDEM_FAULT_INJECT="interconnect@step=3,attempt=2", TANDEM_ATTEMPT="2",
               TANDEM_ACCELERATOR="npu", TANDEM_BACKEND="hccl")
    assert run(Options(script), env) == 3
    message = _message(tmp_path)
    assert (message["class"], message["reason"], message["step"]) == ("interconnect", "HcclSocketTimeout", 3)
    assert message["message"].startswith("EI0006:")
    # Another attempt than the spec's: nothing fires.
    assert run(Options(script), {**env, "TANDEM_ATTEMPT": "3"}) == 0


def test_a_plain_script_raises_the_pools_error_at_its_progress_line(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """No Tandem in the script: with --inject-faults the error is raised in the print of `step 2`, so the script
    never reaches step 3, however fast it runs."""
    env = _env(tmp_path, TANDEM_FAULT_INJECT="interconnect@step=2", TANDEM_BACKEND="hccl")
    assert run(Options(_python(PLAIN_LOOP), inject_faults=True), env) == 3
    message = _message(tmp_path)
    assert (message["class"], message["reason"], message["step"]) == ("interconnect", "HcclSocketTimeout", 2)
    out, err = capsys.readouterr()
    assert "step 2 loss 1.0" in out and "step 3" not in out and "EI0006" in err


def test_a_plain_script_stopped_at_its_progress_line_is_a_hang_the_deadline_ends(tmp_path: Path) -> None:
    env = _env(tmp_path, TANDEM_FAULT_INJECT="hang@step=2")
    options = Options(_python(PLAIN_LOOP), inject_faults=True, progress_timeout=1.0, grace=1.0)
    assert run(options, env) == 1
    message = _message(tmp_path)
    assert (message["class"], message["reason"], message["step"]) == ("unknown", "NoProgress", 2)


def test_injection_follows_the_progress_regex_and_refuses_a_bad_spec(tmp_path: Path) -> None:
    script = _python("for n in range(1, 4): print(f'it={n}', flush=True)")
    options = Options(script, progress=re.compile(r"it=(\d+)"), inject_faults=True)
    assert run(options, _env(tmp_path, TANDEM_FAULT_INJECT="oom@step=3,flavor=npu")) == 5
    assert (_message(tmp_path)["class"], _message(tmp_path)["step"]) == ("oom", 3)
    assert run(options, _env(tmp_path, TANDEM_FAULT_INJECT="meteor@step=3")) == 2
    assert (_message(tmp_path)["class"], _message(tmp_path)["reason"]) == ("user", "InvalidFaultInject")


def test_tandem_run_claims_the_volume_and_an_older_attempt_cannot_start(tmp_path: Path) -> None:
    env = _env(tmp_path, TANDEM_ATTEMPT="3", TANDEM_ATTEMPT_TOKEN="t3", TANDEM_JOB_UID="u")
    partial = tmp_path / "ckpt" / "step-000000004.attempt-2.partial"  # an older attempt's unfinished save
    partial.mkdir()
    assert run(Options(_python("print('step 1')")), env) == 0
    assert json.loads((tmp_path / "ckpt" / "fence" / "attempt-3.json").read_text())["token"] == "t3"
    assert not partial.exists() and (tmp_path / "ckpt" / "quarantine").is_dir()
    assert run(Options(_python("print('never runs')")), {**env, "TANDEM_ATTEMPT": "2"}) != 0
    assert (_message(tmp_path)["class"], _message(tmp_path)["reason"]) == ("unknown", "Fenced")


def test_an_sdk_checkpoint_of_a_superseded_attempt_is_refused(tmp_path: Path) -> None:
    """Attempt 1 still runs when attempt 2 claims the volume (a partition healed late): its next save may write
    its own partial folder but never commit it."""
    env = _env(tmp_path, TANDEM_ATTEMPT="1", TANDEM_ATTEMPT_TOKEN="t1", TANDEM_JOB_UID="u")
    script = _python(f'''
        import torch
        import tandem.sdk as sdk
        from tandem.runtime.fence import Fence
        from tandem.sdk.checkpoint import Checkpointer
        ctx = sdk.init()
        model = torch.nn.Linear(4, 4)
        optim = torch.optim.SGD(model.parameters(), lr=0.1)
        ckpt = Checkpointer(ctx)
        ckpt.save(1, model, optim, {{"sample": 8}}, blocking=True)
        Fence({str(tmp_path / "ckpt")!r}, 2, "t2", "u").acquire()
        ckpt.save(2, model, optim, {{"sample": 16}}, blocking=True)
    ''')
    assert run(Options(script), env) != 0
    message = _message(tmp_path)
    assert (message["class"], message["reason"], message["checkpointStep"]) == ("unknown", "Fenced", 1)
    assert Fence(tmp_path / "ckpt", 1, "t1", "u").newer() == (2, "attempt 2 started after this attempt 1")
