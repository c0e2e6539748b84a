"""Shared harness for the runtime tests: run the real `tandem-train` launcher as a process tree.

Everything is CPU + gloo with the ~0.1M-parameter test model, 32-token sequences and a 0.3 MB corpus
from the standard library, so a whole run costs a few seconds, most of it importing torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from processes import free_port
from waiting import wait_for

STEPS = 8
# microBatch 2 makes the accumulation differ per world size: 1 rank -> 3 x 2, 2 -> 3 x 1, 3 -> 1 x 2.
TRAINING: dict[str, Any] = {
    "model": "test",
    "steps": STEPS,
    "globalBatch": 6,
    "microBatch": 2,
    "seqLen": 32,
    "lr": 3e-3,
    "warmupSteps": 2,
    "watchdogSeconds": 60,
    "data": {"maxBytes": 300_000},
    "metrics": {"port": 0, "logEverySteps": 1},
}
_LINE = re.compile(r"(\w+)=('(?:[^'\\]|\\.)*'|\S+)")


def parse_line(line: str) -> dict[str, str]:
    return {k: v.strip("'") for k, v in _LINE.findall(line)}


@dataclass
class Run:
    returncode: int
    output: str
    termination: dict[str, Any] | None
    seconds: float
    root: Path

    def events(self, name: str) -> list[dict[str, str]]:
        return [e for e in map(parse_line, self.output.splitlines()) if e.get("event") == name]

    def losses(self) -> dict[int, float]:
        return {int(e["step"]): float(e["loss"]) for e in self.events("step")}


def contract_env(root: Path, world: int, training: dict[str, Any] | None = None, **extra: str) -> dict[str, str]:
    root.mkdir(parents=True, exist_ok=True)  # the volume, mounted: an absolute root is never created by the run
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TANDEM_", "MASTER_"))}
    env.update(
        TANDEM_JOB="test",
        TANDEM_ATTEMPT="1",
        TANDEM_POOL="cpu",
        TANDEM_ACCELERATOR="cpu",
        TANDEM_BACKEND="gloo",
        TANDEM_NODES="1",
        TANDEM_NODE_RANK="0",
        TANDEM_DEVICES_PER_NODE=str(world),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(free_port()),
        TANDEM_CHECKPOINT_DIR=str(root),
        TANDEM_CHECKPOINT_INTERVAL_STEPS="2",
        TANDEM_CHECKPOINT_KEEP="4",
        TANDEM_TRAINING_CONFIG=json.dumps(TRAINING if training is None else training),
        TANDEM_TERMINATION_LOG=str(root.parent / f"{root.name}.termination-log"),
        OMP_NUM_THREADS="1",
    )
    env.update(extra)
    return env


def start(env: dict[str, str], cwd: Path | None = None) -> subprocess.Popen[str]:
    # A session of its own: a test can SIGKILL the whole pod (launcher and workers) like a node loss.
    return subprocess.Popen(
        [sys.executable, "-m", "tandem.runtime.launcher"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def finish(proc: subprocess.Popen[str], env: dict[str, str], started: float, timeout: float = 120) -> Run:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        pytest.fail(f"tandem-train did not finish within {timeout}s:\n{output[-4000:]}")
    path = Path(env["TANDEM_TERMINATION_LOG"])
    termination = json.loads(path.read_text()) if path.exists() else None
    return Run(proc.returncode, output, termination, time.monotonic() - started, Path(env["TANDEM_CHECKPOINT_DIR"]))


def launch(env: dict[str, str], timeout: float = 120, cwd: Path | None = None) -> Run:
    started = time.monotonic()
    return finish(start(env, cwd), env, started, timeout)


def copy_checkpoints(src: Path, dst: Path, steps: list[int]) -> Path:
    """A checkpoint volume holding only `steps` of `src` (and its token file)."""
    dst.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src / "data", dst / "data")
    for step in steps:
        shutil.copytree(src / f"step-{step:09d}", dst / f"step-{step:09d}")
    return dst


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A DCP checkpoint folder as one flat dict of full tensors (any world size saved it)."""
    import torch
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    out = path.parent / f"{path.name}.pt"
    dcp_to_torch_save(path, out)
    return torch.load(out, weights_only=False)


def _uninterrupted(tmp_path_factory: pytest.TempPathFactory, ranks: int) -> Run:
    root = tmp_path_factory.mktemp(f"baseline{ranks}") / "ckpt"
    run = launch(contract_env(root, ranks))
    assert run.returncode == 0, run.output[-4000:]
    return run


@pytest.fixture(scope="session")
def baseline2(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """An uninterrupted 2-rank run: checkpoints at steps 2, 4, 6, 8."""
    return _uninterrupted(tmp_path_factory, 2)


@pytest.fixture(scope="session")
def baseline1(tmp_path_factory: pytest.TempPathFactory) -> Run:
    return _uninterrupted(tmp_path_factory, 1)


@pytest.fixture(scope="session")
def rt() -> Any:
    """The harness functions for test modules (conftest cannot be imported under --import-mode=importlib)."""
    import types

    return types.SimpleNamespace(
        STEPS=STEPS,
        TRAINING=TRAINING,
        contract_env=contract_env,
        launch=launch,
        start=start,
        finish=finish,
        wait_for=wait_for,
        copy_checkpoints=copy_checkpoints,
        load_checkpoint=load_checkpoint,
        parse_line=parse_line,
    )
