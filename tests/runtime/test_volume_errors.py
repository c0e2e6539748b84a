"""I/O errors on the checkpoint volume are `storage` faults wherever they surface (the launcher verifying a
checkpoint, a worker's background writer), and a checkpoint volume that is not mounted is refused.
Real `tandem-train` runs; the EIO comes from a seam (seams/sitecustomize.py) in every process of the run."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from tandem.runtime import ckpt_layout
from tandem.runtime.faults import EXIT_CODES

SEAMS = Path(__file__).parent / "seams"


def eio_env(rt: Any, root: Path, world: int = 1, **extra: str) -> dict[str, str]:
    env = rt.contract_env(root, world, **extra)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SEAMS), os.environ.get("PYTHONPATH")) if p)
    env["TANDEM_TEST_EIO_UNDER"] = str(root)
    return env


def fake_checkpoint(root: Path, step: int) -> Path:
    """A committed checkpoint as far as sizes and the manifest go (no torch needed to verify it)."""
    folder = ckpt_layout.step_dir(root, step)
    folder.mkdir(parents=True)
    (folder / ".metadata").write_bytes(b"m" * 64)
    (folder / "__0_0.distcp").write_bytes(b"x" * 4096)
    ckpt_layout.write_manifest(folder, step, {"worldSize": 1, "samplesConsumed": 0})
    return folder


def test_eio_while_the_launcher_verifies_a_checkpoint_is_storage(rt: Any, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    root.mkdir()
    fake_checkpoint(root, 4)
    run = rt.launch(eio_env(rt, root))
    msg = run.termination
    assert run.returncode == EXIT_CODES["storage"], run.output[-3000:]
    assert (msg["class"], msg["reason"]) == ("storage", "VolumeIOError") and "step-000000004" in msg["message"]
    assert not (root / ckpt_layout.QUARANTINE).exists()  # an I/O error sets nothing aside
    assert [e.step for e in ckpt_layout.scan(root)] == [4]


def test_eio_in_a_workers_checkpoint_writer_is_storage(rt: Any, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    root.mkdir()
    run = rt.launch(eio_env(rt, root))
    msg = run.termination
    assert run.returncode == EXIT_CODES["storage"], run.output[-3000:]
    assert (msg["class"], msg["reason"], msg["rank"]) == ("storage", "VolumeIOError", 0), msg
    assert "Input/output error" in msg["message"] and ".partial" in msg["message"]
    assert msg["checkpointStep"] is None  # the save of step 2 never committed


def test_an_absolute_checkpoint_folder_that_does_not_exist_is_a_missing_volume(rt: Any, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    env = rt.contract_env(root, 1)
    root.rmdir()  # the pod's mount failed: /checkpoints is not there, though / is
    run = rt.launch(env)
    msg = run.termination
    assert run.returncode == EXIT_CODES["storage"], run.output[-3000:]
    assert (msg["class"], msg["reason"]) == ("storage", "VolumeMissing") and "not mounted" in msg["message"]
    assert not root.exists()  # not silently created on the container's own disk
    assert not run.events("training_start")


def test_a_relative_checkpoint_folder_is_created(rt: Any, tmp_path: Path) -> None:
    env = rt.contract_env(tmp_path / "unused", 1, {**rt.TRAINING, "steps": 2}, TANDEM_CHECKPOINT_DIR="ckpt/run")
    run = rt.launch(env, cwd=tmp_path)
    assert run.returncode == 0, run.output[-3000:]
    assert run.termination["checkpointStep"] == 2
    assert [e.step for e in ckpt_layout.scan(tmp_path / "ckpt" / "run")] == [2]


def test_a_checkpoint_that_loads_slower_than_the_watchdog_is_no_hang(rt: Any, tmp_path: Path) -> None:
    """A big checkpoint on a slow volume: saves pause the hang watchdog, and the load at a resume must too. It was
    armed through the load, which then ended as `interconnect`/`CollectiveHang` on every attempt (each loads the
    same checkpoint): a failover for a slow disk."""
    root = tmp_path / "ckpt"
    first = rt.launch(rt.contract_env(root, 1, {**rt.TRAINING, "steps": 2, "watchdogSeconds": 5}))
    assert first.returncode == 0, first.output[-3000:]
    env = rt.contract_env(root, 1, {**rt.TRAINING, "steps": 4, "watchdogSeconds": 5})
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(SEAMS), os.environ.get("PYTHONPATH")) if p)
    env["TANDEM_TEST_SLOW_LOAD_SECONDS"] = "7"
    run = rt.launch(env)
    assert run.returncode == 0, run.output[-3000:]
    assert (run.termination["class"], run.termination["resumedFrom"], run.termination["checkpointStep"]) == (
        "none", 2, 4)
