"""A checkpoint without its manifest, or with a truncated shard, is skipped; nothing good is deleted."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tandem.runtime import ckpt_layout


def test_broken_checkpoints_are_skipped_and_the_previous_one_resumes(rt: Any, baseline2: Any, tmp_path: Path) -> None:
    root = rt.copy_checkpoints(baseline2.root, tmp_path / "ckpt", [2, 4, 6, 8])
    (root / "step-000000008" / "manifest.json").unlink()  # the save of step 8 never finished
    shard = root / "step-000000006" / "__1_0.distcp"
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])  # half a shard on disk
    good = {step: (root / f"step-{step:09d}" / "manifest.json").read_text() for step in (2, 4)}

    states = {e.step: e.state for e in ckpt_layout.scan(root)}
    assert states == {2: "complete", 4: "complete", 6: "corrupt", 8: "incomplete"}

    run = rt.launch(rt.contract_env(root, 2))
    assert run.returncode == 0, run.output[-4000:]
    assert run.termination["resumedFrom"] == 4
    skipped = {e["step"]: e for e in run.events("checkpoint_skipped")}
    assert skipped["6"]["state"] == "corrupt" and "__1_0.distcp" in skipped["6"]["detail"]
    assert skipped["8"]["state"] == "incomplete"
    # The good checkpoints are untouched; the broken ones were replaced by fresh, complete saves.
    for step, manifest in good.items():
        assert (root / f"step-{step:09d}" / "manifest.json").read_text() == manifest
    assert {e.step: e.state for e in ckpt_layout.scan(root)} == {s: "complete" for s in (2, 4, 6, 8)}
    resumed = json.loads((root / "step-000000008" / "manifest.json").read_text())
    assert resumed["samplesConsumed"] == 8 * rt.TRAINING["globalBatch"]
    # Resuming from 4 reproduced the uninterrupted run's step-6 and step-8 losses exactly.
    assert run.losses() == {s: baseline2.losses()[s] for s in (5, 6, 7, 8)}
