"""`tandem.sdk.checkpoint.Checkpointer` in real torchrun jobs under tandem-run (gloo, CPU): a two-rank DDP script
saves asynchronously with its data position; a one-rank attempt (another world size, as after a failover) loads
exactly those weights and that position and goes on; a flipped bit sets the newest checkpoint aside and the next
newest loads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sdk_ddp import SCRIPT

from tandem.sdk import init
from tandem.sdk.checkpoint import Checkpointer


def _attempt(tmp_path: Path, ranks: int) -> tuple[dict[str, object], list[str], str]:
    (tmp_path / "train.py").write_text(SCRIPT)
    env = {**os.environ, "TANDEM_CHECKPOINT_DIR": str(tmp_path / "ckpt"), "TANDEM_ACCELERATOR": "cpu",
           "TANDEM_TERMINATION_LOG": str(tmp_path / "termination-log")}
    tandem_run = str(Path(sys.executable).with_name("tandem-run"))
    result = subprocess.run([tandem_run, "--", sys.executable, "-P", "-m", "torch.distributed.run", "--standalone",
                             "--nproc-per-node", str(ranks), str(tmp_path / "train.py")], env=env,
                            capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-3000:]
    lines = [line for line in result.stdout.splitlines() if line.startswith(("loaded ", "saved "))]
    return json.loads((tmp_path / "termination-log").read_text()), lines, result.stdout + result.stderr


def test_a_world_size_change_resumes_the_same_weights_and_data_position(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    first, lines, _ = _attempt(tmp_path, ranks=2)
    saved = {int(line.split()[1]): line.split()[-1] for line in lines if line.startswith("saved ")}
    assert lines[0].startswith("loaded 0 sample 0") and sorted(saved) == [1, 2, 3]
    assert (first["checkpointStep"], first["resumedFrom"], first["step"]) == (3, None, 3)
    kept = sorted(p.name for p in (tmp_path / "ckpt").iterdir() if p.name.startswith("step-"))
    assert kept == ["step-000000002", "step-000000003"]  # keep 2
    second, lines, _ = _attempt(tmp_path, ranks=1)
    assert lines[0] == f"loaded 3 sample 24 weights {saved[3]} same-weights True world 1 plan 2x4"
    assert (second["checkpointStep"], second["resumedFrom"], second["step"]) == (6, 3, 6)


def test_a_flipped_bit_sets_the_newest_aside_and_the_next_loads(tmp_path: Path) -> None:
    (tmp_path / "ckpt").mkdir()
    _, lines, _ = _attempt(tmp_path, ranks=1)
    saved = {int(line.split()[1]): line.split()[-1] for line in lines if line.startswith("saved ")}
    shard = next((tmp_path / "ckpt" / "step-000000003").glob("__0_*.distcp"))
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x01
    shard.write_bytes(bytes(data))
    _, lines, output = _attempt(tmp_path, ranks=1)
    assert lines[0] == f"loaded 2 sample 16 weights {saved[2]} same-weights True world 1 plan 2x4"
    assert "checkpoint_quarantined" in output and "step=3" in output


def test_the_examples_ddp_script_continues_on_another_world(tmp_path: Path) -> None:
    """examples/byo/ddp_sdk.py itself, shrunk by its environment: 2 ranks to step 4, then 1 rank to step 8."""
    example = Path(__file__).resolve().parents[2] / "examples" / "byo" / "ddp_sdk.py"
    (tmp_path / "ckpt").mkdir()
    tandem_run = str(Path(sys.executable).with_name("tandem-run"))
    for ranks, steps, expected in ((2, 4, (4, 4, None)), (1, 8, (8, 8, 4))):
        env = {**os.environ, "TANDEM_CHECKPOINT_DIR": str(tmp_path / "ckpt"), "TANDEM_ACCELERATOR": "cpu",
               "TANDEM_TERMINATION_LOG": str(tmp_path / "termination-log"), "GLOBAL_BATCH": "16",
               "MICRO_BATCH": "4", "STEPS": str(steps), "SAVE_EVERY": "2"}
        result = subprocess.run([tandem_run, "--", sys.executable, "-P", "-m", "torch.distributed.run",
                                 "--standalone", "--nproc-per-node", str(ranks), str(example)], env=env,
                                capture_output=True, text=True, timeout=240)
        assert result.returncode == 0, result.stderr[-3000:]
        message = json.loads((tmp_path / "termination-log").read_text())
        assert (message["step"], message["checkpointStep"], message["resumedFrom"]) == expected


@pytest.mark.parametrize("key", ["format", "step", "savedAt", "files", "checksum", "checksums", "manifestCrc32",
                                 "state", "worldSize", "attempt"])
def test_metadata_cannot_take_a_field_the_manifest_needs(tmp_path: Path, key: str) -> None:
    """`metadata={"format": "llama-hf"}` replaced the manifest's own field: every save committed, and every load
    then set the checkpoint aside as corrupt (or, with on_unreadable="scratch", trained from step 0)."""
    ctx = init({"TANDEM_ACCELERATOR": "cpu", "TANDEM_RESUME_STEP": ""})
    with pytest.raises(ValueError, match=f"metadata key {key!r} is the manifest's own"):
        Checkpointer(ctx, tmp_path, metadata={key: "mine"})


def test_metadata_is_recorded_and_the_checkpoint_loads(tmp_path: Path) -> None:
    ctx = init({"TANDEM_ACCELERATOR": "cpu", "TANDEM_RESUME_STEP": ""})
    torch.manual_seed(0)
    model = torch.nn.Linear(4, 4)
    optimizer = torch.optim.AdamW(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    optimizer.step()
    Checkpointer(ctx, tmp_path, metadata={"corpus": "abc", "globalBatch": 64}).save(1, model, optimizer,
                                                                                   blocking=True)
    manifest = json.loads((tmp_path / "step-000000001" / "manifest.json").read_text())
    assert (manifest["corpus"], manifest["globalBatch"], manifest["step"]) == ("abc", 64, 1)
    loaded = Checkpointer(ctx, tmp_path).load(model, optimizer)
    assert loaded is not None and loaded.step == 1


@pytest.mark.parametrize("step", [-1, 10**9, 2.0, True])
def test_a_step_no_checkpoint_folder_can_name_is_refused_before_anything_is_written(tmp_path: Path,
                                                                                     step: object) -> None:
    """Step folders have nine digits: step 10**9 was committed where no scan ever finds it (a resume from
    scratch), a negative one under a name no scan reads either."""
    ctx = init({"TANDEM_ACCELERATOR": "cpu", "TANDEM_RESUME_STEP": ""})
    model = torch.nn.Linear(4, 4)
    with pytest.raises(ValueError, match="a checkpoint's step is a whole number from 0 to 999999999"):
        Checkpointer(ctx, tmp_path).save(step, model, torch.optim.AdamW(model.parameters()))  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []
