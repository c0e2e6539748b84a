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

from sdk_ddp import SCRIPT


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
