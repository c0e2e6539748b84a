"""Where a training command resumes from (docs/design.md#tandem-run): the newest complete checkpoint under
TANDEM_CHECKPOINT_DIR, found by the layout the command's framework writes. Pure functions over a folder; no torch.

Layouts, and what "complete" means for each (a partial or unreadable checkpoint is never chosen):
- tandem: Tandem's own DCP layout, `step-<9 digits>/` with a verified manifest (tandem.runtime.ckpt_layout);
- huggingface: the Trainer's `checkpoint-<step>/` with its `trainer_state.json` (written with the checkpoint),
  in the folder or one level below it (the script's `--output_dir` inside the volume);
- megatron: `latest_checkpointed_iteration.txt` naming an iteration whose `iter_<7 digits>/` folder exists;
- deepspeed: `latest` naming a tag folder that exists (the step is the tag's number, `global_step1200`);
- torchtitan: `step-<n>/` with DCP's `.metadata` (written last by a save), in the folder or under
  `checkpoint/`; never Tandem's own `step-<9 digits>/` (it has `.metadata` too, and the tandem finder alone
  judges it).

A folder that is not there is no checkpoint; one that fails to read (EIO, a stale NFS handle) is a `storage` fault,
never "no checkpoint": the command would start from scratch over good checkpoints.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tandem.runtime import ckpt_layout
from tandem.runtime.faults import FaultError, storage_reason

LAYOUTS = ("tandem", "huggingface", "megatron", "deepspeed", "torchtitan")


@dataclass(frozen=True, order=True)
class ResumePoint:
    step: int
    path: str
    layout: str


_ABSENT = (FileNotFoundError, NotADirectoryError)  # what "no checkpoint here" looks like; any other OSError is not


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except _ABSENT:
        return []


def _folders(root: Path) -> Iterator[Path]:
    """The folder and its sub-folders one level down (a script's output_dir inside the volume)."""
    yield root
    yield from (p for p in _children(root) if p.is_dir() and not p.name.startswith("."))


def _tandem(root: Path) -> ResumePoint | None:
    chosen = ckpt_layout.choose_resume(ckpt_layout.scan(root))  # an I/O error propagates: never "none there"
    return ResumePoint(chosen.step, str(chosen.path), "tandem") if chosen else None


def _numbered(root: Path, pattern: re.Pattern[str], marker: str, layout: str,
              folders: Callable[[Path], Iterator[Path]]) -> ResumePoint | None:
    found = []
    for folder in folders(root):
        for child in _children(folder):
            match = pattern.match(child.name)
            if (match and not ckpt_layout.is_step_dir(child.name) and child.is_dir()
                    and (child / marker).is_file()):
                found.append(ResumePoint(int(match.group(1)), str(child), layout))
    return max(found) if found else None


def _huggingface(root: Path) -> ResumePoint | None:
    return _numbered(root, re.compile(r"^checkpoint-(\d+)$"), "trainer_state.json", "huggingface", _folders)


def _torchtitan(root: Path) -> ResumePoint | None:
    def folders(base: Path) -> Iterator[Path]:
        yield from _folders(base)
        yield base / "checkpoint"

    return _numbered(root, re.compile(r"^step-(\d+)$"), ".metadata", "torchtitan", folders)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except (*_ABSENT, IsADirectoryError):
        return None


def _megatron(root: Path) -> ResumePoint | None:
    for folder in _folders(root):
        text = _read(folder / "latest_checkpointed_iteration.txt")
        if text and text.isdigit():
            path = folder / f"iter_{int(text):07d}"
            if path.is_dir():
                return ResumePoint(int(text), str(path), "megatron")
    return None


def _deepspeed(root: Path) -> ResumePoint | None:
    for folder in _folders(root):
        tag = _read(folder / "latest")
        number = re.search(r"(\d+)\s*$", tag or "")
        if tag and number and "/" not in tag and (folder / tag).is_dir():
            return ResumePoint(int(number.group(1)), str(folder / tag), "deepspeed")
    return None


_FINDERS: dict[str, Callable[[Path], ResumePoint | None]] = {
    "tandem": _tandem, "huggingface": _huggingface, "megatron": _megatron, "deepspeed": _deepspeed,
    "torchtitan": _torchtitan,
}


def find_resume_point(root: str | Path | None, layout: str = "auto") -> ResumePoint | None:
    """The newest complete checkpoint of `layout` ("auto": of any layout, the highest step) under `root`."""
    if not root:
        return None
    if layout != "auto" and layout not in _FINDERS:
        raise ValueError(f"checkpoint layout {layout!r} is not one of auto, {', '.join(LAYOUTS)}")
    finders = _FINDERS.values() if layout == "auto" else [_FINDERS[layout]]
    try:
        found = [point for finder in finders if (point := finder(Path(root))) is not None]
    except OSError as error:
        reason = storage_reason(error, str(root)) or "VolumeIOError"
        raise FaultError("storage", reason, f"the checkpoint folder {root} cannot be read: {error}") from error
    return max(found, key=lambda p: p.step) if found else None
