"""`tandem.sdk.hf` with the real transformers Trainer on a tiny randomly initialised Llama (no download): under
`tandem-run`, a run that dies at step 4 reports the checkpoint of step 3, and the next attempt resumes the Trainer
from it to the last step; the global batch is kept over any world size."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hf_trainer_script import SCRIPT

from tandem.sdk.hf import resume_from_checkpoint, trainer_arguments


def _attempt(tmp_path: Path, **env: str) -> tuple[dict[str, object], str]:
    tandem_run = str(Path(sys.executable).with_name("tandem-run"))
    result = subprocess.run([tandem_run, "--progress-timeout", "120", "--", sys.executable, "-P", "-c", SCRIPT],
                            env={**os.environ, "TANDEM_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
                                 "TANDEM_TERMINATION_LOG": str(tmp_path / "termination-log"), "TANDEM_NODES": "1",
                                 "TANDEM_DEVICES_PER_NODE": "1", "WORLD_SIZE": "1", **env},
                            capture_output=True, text=True, timeout=300)
    return json.loads((tmp_path / "termination-log").read_text()), result.stdout


def test_a_trainer_script_restarts_from_its_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    died, out = _attempt(tmp_path, DIE_AT_STEP="4")
    assert "plan 2 4" in out  # 8 sequences per step on one process: 2 per pass, 4 passes
    assert (died["step"], died["checkpointStep"], died["resumedFrom"]) == (4, 3, None)
    assert sorted(p.name for p in (tmp_path / "ckpt" / "hf").iterdir()) == ["checkpoint-3"]
    finished, _ = _attempt(tmp_path)
    assert finished == {"class": "none", "reason": "Completed", "message": "trained to step 6", "rank": None,
                        "step": 6, "checkpointStep": 6, "resumedFrom": 3}


@pytest.mark.parametrize(("world", "micro", "accumulation"), [(1, 8, 32), (4, 8, 8), (16, 8, 2), (32, 8, 1)])
def test_the_global_batch_is_kept_on_any_world(monkeypatch: pytest.MonkeyPatch, world: int, micro: int,
                                                accumulation: int) -> None:
    monkeypatch.setenv("WORLD_SIZE", str(world))
    args = trainer_arguments(256, 8, output_dir="/out")
    assert args == {"output_dir": "/out", "per_device_train_batch_size": micro,
                    "gradient_accumulation_steps": accumulation}
    assert micro * accumulation * world == 256


def test_only_a_trainer_checkpoint_under_the_output_dir_is_resumed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_RESUME_STEP", "300")
    monkeypatch.setenv("TANDEM_RESUME_PATH", "/ckpt/hf/checkpoint-300")
    assert resume_from_checkpoint("/ckpt/hf") == "/ckpt/hf/checkpoint-300"
    assert resume_from_checkpoint("/ckpt/other") is None
    monkeypatch.setenv("TANDEM_RESUME_PATH", "/ckpt/step-300")  # torchtitan's, not the Trainer's
    assert resume_from_checkpoint("/ckpt") is None
    monkeypatch.setenv("TANDEM_RESUME_STEP", "")
    assert resume_from_checkpoint("/ckpt/hf") is None
