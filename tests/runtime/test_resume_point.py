"""Where `tandem-run` resumes a team's command from: the newest complete checkpoint of each framework's layout
under the checkpoint folder, never a partial or unreadable one (runtime/resume_point.py)."""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import pytest

from tandem.runtime import ckpt_layout
from tandem.runtime.faults import FaultError
from tandem.runtime.resume_point import LAYOUTS, ResumePoint, find_resume_point


def _files(root: Path, *paths: str, text: str = "") -> None:
    for path in paths:
        target = root / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)


def test_huggingface_checkpoints_with_their_trainer_state(tmp_path: Path) -> None:
    out = tmp_path / "qwen-sft"  # the script's --output_dir inside the volume
    # checkpoint-600 is still being written: no trainer_state.json yet.
    _files(out, "checkpoint-200/trainer_state.json", "checkpoint-400/trainer_state.json",
           "checkpoint-600/model.safetensors")
    assert find_resume_point(tmp_path) == ResumePoint(400, str(out / "checkpoint-400"), "huggingface")


def test_megatron_follows_its_tracker_file_only_to_a_folder_that_exists(tmp_path: Path) -> None:
    _files(tmp_path, "latest_checkpointed_iteration.txt", text="1500\n")
    assert find_resume_point(tmp_path, "megatron") is None  # iter_0001500/ not there (yet): never chosen
    (tmp_path / "iter_0001500").mkdir()
    assert find_resume_point(tmp_path) == ResumePoint(1500, str(tmp_path / "iter_0001500"), "megatron")
    _files(tmp_path, "latest_checkpointed_iteration.txt", text="release")
    assert find_resume_point(tmp_path) is None


def test_deepspeed_follows_latest(tmp_path: Path) -> None:
    _files(tmp_path, "latest", text="global_step1200")
    (tmp_path / "global_step1200").mkdir()
    assert find_resume_point(tmp_path, "deepspeed") == ResumePoint(1200, str(tmp_path / "global_step1200"), "deepspeed")
    _files(tmp_path, "latest", text="../elsewhere/global_step9")
    assert find_resume_point(tmp_path) is None


def test_torchtitan_steps_need_their_dcp_metadata(tmp_path: Path) -> None:
    _files(tmp_path, "checkpoint/step-10/.metadata", "checkpoint/step-20/__0_0.distcp")
    assert find_resume_point(tmp_path) == ResumePoint(10, str(tmp_path / "checkpoint" / "step-10"), "torchtitan")


def test_auto_takes_the_highest_step_of_any_layout_and_an_empty_folder_none(tmp_path: Path) -> None:
    assert find_resume_point(tmp_path) is None and find_resume_point(None) is None
    assert find_resume_point(tmp_path / "missing") is None
    _files(tmp_path, "hf/checkpoint-300/trainer_state.json", "step-20/.metadata")
    assert find_resume_point(tmp_path).step == 300
    assert find_resume_point(tmp_path, "torchtitan").step == 20


def test_an_unknown_layout_is_refused_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="not one of auto, tandem, huggingface, megatron, deepspeed, torchtitan"):
        find_resume_point(tmp_path, "keras")


def _tandem_checkpoint(root: Path, step: int) -> Path:
    folder = ckpt_layout.step_dir(root, step)
    folder.mkdir(parents=True)
    (folder / ".metadata").write_bytes(b"m" * 64)
    (folder / "__0_0.distcp").write_bytes(b"s" * 4096)
    ckpt_layout.write_manifest(folder, step, {"worldSize": 1})
    return folder


@pytest.mark.parametrize("broken", ["truncated", "no-manifest"])
def test_a_broken_tandem_checkpoint_is_never_taken_for_a_torchtitan_one(tmp_path: Path, broken: str) -> None:
    """Tandem's `step-000000020/` also has DCP's `.metadata`: torchtitan's pattern took it when the tandem finder
    had rejected it (a truncated shard, a manifest an interrupted delete removed first)."""
    _tandem_checkpoint(tmp_path, 10)
    newest = _tandem_checkpoint(tmp_path, 20)
    if broken == "truncated":
        with open(newest / "__0_0.distcp", "r+b") as shard:
            shard.truncate(100)
    else:
        (newest / "manifest.json").unlink()
    assert find_resume_point(tmp_path) == ResumePoint(10, str(ckpt_layout.step_dir(tmp_path, 10)), "tandem")
    assert find_resume_point(tmp_path, "torchtitan") is None


@pytest.mark.parametrize("layout", ["auto", *LAYOUTS])
def test_a_volume_that_fails_to_list_is_a_storage_fault_not_a_fresh_start(tmp_path: Path, layout: str,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """An EIO or a stale NFS handle while the volume is listed: good checkpoints may be there, so the command must
    not be told to start from scratch."""
    _files(tmp_path, "out/checkpoint-400/trainer_state.json")
    real = Path.iterdir

    def iterdir(self: Path) -> Any:
        if self == tmp_path:
            raise OSError(errno.EIO, "Input/output error", str(self))
        return real(self)

    monkeypatch.setattr(Path, "iterdir", iterdir)
    with pytest.raises(FaultError) as error:
        find_resume_point(tmp_path, layout)
    assert (error.value.cls, error.value.reason) == ("storage", "VolumeIOError")
    assert f"the checkpoint folder {tmp_path} cannot be read" in str(error.value)
