"""Resume after a crash: bit-for-bit at the same world size, and across world sizes (real processes)."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import torch


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        return {k: v for key, sub in tree.items() for k, v in flatten(sub, f"{prefix}{key}.").items()}
    if isinstance(tree, list | tuple) and any(isinstance(x, dict) for x in tree):
        return {k: v for i, sub in enumerate(tree) for k, v in flatten(sub, f"{prefix}{i}.").items()}
    return {prefix.rstrip("."): tree}


def assert_same_state(a: dict[str, Any], b: dict[str, Any]) -> int:
    flat_a, flat_b = flatten(a), flatten(b)
    assert flat_a.keys() == flat_b.keys()
    tensors = 0
    for key, value in flat_a.items():
        if isinstance(value, torch.Tensor):
            assert torch.equal(value, flat_b[key]), f"{key} differs"
            tensors += 1
        else:
            assert value == flat_b[key], f"{key} differs"
    return tensors


def test_sigkill_mid_run_then_resume_is_bit_identical(rt: Any, baseline2: Any, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    # The injected hang holds the run inside step 6 (after the step-4 checkpoint) so that the SIGKILL
    # lands mid-run deterministically; the watchdog (60 s) never fires before the kill.
    env = rt.contract_env(root, 2, TANDEM_FAULT_INJECT="hang@step=6")
    started = time.monotonic()
    proc = rt.start(env)
    manifest4 = root / "step-000000004" / "manifest.json"
    rt.wait_for(lambda: manifest4.exists() or proc.poll() is not None, timeout=90,
                what="the step-4 checkpoint")
    assert proc.poll() is None, "the run ended before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)  # the pod dies: launcher and workers, no chance to clean up
    killed = rt.finish(proc, env, started)
    assert killed.returncode == -signal.SIGKILL
    assert not (root / "step-000000008").exists()

    resumed = rt.launch(rt.contract_env(root, 2))
    assert resumed.returncode == 0, resumed.output[-4000:]
    assert resumed.termination["resumedFrom"] in (4, 6)
    assert resumed.termination["checkpointStep"] == rt.STEPS
    final = rt.load_checkpoint(root / "step-000000008")
    expected = rt.load_checkpoint(baseline2.root / "step-000000008")
    # Every parameter and every AdamW moment, bit for bit.
    assert assert_same_state(final, expected) >= 3 * len(expected["model"])
    # The losses after the resume are the uninterrupted run's, to the last bit.
    for step, loss in resumed.losses().items():
        assert loss == baseline2.losses()[step], step


def _resume_elsewhere(rt: Any, source: Any, world: int, tmp_path: Path, **training: Any) -> Any:
    root = rt.copy_checkpoints(source.root, tmp_path / "ckpt", [4])
    run = rt.launch(rt.contract_env(root, world, {**rt.TRAINING, **training}))
    assert run.returncode == 0, run.output[-4000:]
    assert run.termination == {
        "class": "none", "reason": "Completed", "message": f"trained to step {rt.STEPS}", "rank": None,
        "step": rt.STEPS, "checkpointStep": rt.STEPS, "resumedFrom": 4,
    }  # fmt: skip
    resumes = run.events("resumed")
    assert len(resumes) == world  # every rank resumed, from the same checkpoint
    (resumed,) = [e for e in resumes if e["rank"] == "0"]
    assert resumed["step"] == "4" and resumed["samples_consumed"] == str(4 * rt.TRAINING["globalBatch"])
    assert resumed["saved_world"] == str(source_world(source)) and resumed["world"] == str(world)
    (start,) = [e for e in run.events("training_start") if e["rank"] == "0"]
    assert start["global_batch"] == str(rt.TRAINING["globalBatch"]) and start["start_step"] == "4"
    # The steps after the resume continue where the run that saved the checkpoint went.
    expected = source.losses()
    assert sorted(run.losses()) == [5, 6, 7, 8]
    for step, loss in run.losses().items():
        assert abs(loss - expected[step]) <= 1e-4 * abs(expected[step]), (step, loss, expected[step])
    return run


def source_world(run: Any) -> int:
    return json.loads((run.root / "step-000000004" / "manifest.json").read_text())["worldSize"]


def test_resume_two_ranks_on_one(rt: Any, baseline2: Any, tmp_path: Path) -> None:
    # Saved by FSDP2 shards, loaded into DDP's replicated parameters: same keys, any strategy.
    run = _resume_elsewhere(rt, baseline2, 1, tmp_path, parallel="ddp")
    assert [e["parallel"] for e in run.events("training_start")] == ["ddp"]


def test_resume_one_rank_on_three(rt: Any, baseline1: Any, baseline2: Any, tmp_path: Path) -> None:
    # The trajectory does not depend on the world size: 1 and 2 ranks agree before any resume ...
    for step, loss in baseline1.losses().items():
        assert abs(loss - baseline2.losses()[step]) <= 1e-4 * abs(loss), step
    # ... and a 1-rank checkpoint continues on 3 ranks where the 1-rank run went (losses: _resume_elsewhere).
    run = _resume_elsewhere(rt, baseline1, 3, tmp_path)
    final = flatten(rt.load_checkpoint(run.root / "step-000000008")["model"])
    reference = flatten(rt.load_checkpoint(baseline1.root / "step-000000008")["model"])
    for key, value in reference.items():
        torch.testing.assert_close(final[key], value, rtol=1e-3, atol=1e-5, msg=key)
