"""Damaged checkpoints are set aside (never deleted), the next intact one resumes bit-identically, and
when none is left the policy decides; real `tandem-train` runs on copies of the 2-rank baseline."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tandem.runtime import ckpt_layout, verify


def flip_bit(path: Path, offset: int | None = None, mask: int = 0x10) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2 if offset is None else offset] ^= mask
    path.write_bytes(bytes(data))


def folder(root: Path, step: int) -> Path:
    return root / f"step-{step:09d}"


def quarantined(root: Path) -> dict[int, str]:
    return {q.step: q.reason for q in ckpt_layout.scan_quarantine(root)}


def rewrite_manifest(checkpoint: Path, change: Callable[[dict[str, Any]], object]) -> None:
    """Change a manifest and re-digest it: the checksums pass, whatever the change says."""
    path = checkpoint / "manifest.json"
    manifest = json.loads(path.read_text())
    change(manifest)
    manifest[verify.DIGEST_FIELD] = verify.manifest_digest(manifest)
    path.write_text(json.dumps(manifest))


def assert_resumed_exactly(rt: Any, run: Any, baseline: Any, step: int) -> None:
    assert run.returncode == 0, run.output[-4000:]
    assert run.termination["resumedFrom"] == step and run.termination["checkpointStep"] == rt.STEPS
    # The losses after the resume are the uninterrupted run's, to the last bit.
    assert run.losses() == {s: baseline.losses()[s] for s in range(step + 1, rt.STEPS + 1)}


def test_flipped_bits_in_a_shard_the_metadata_and_the_manifest(rt: Any, baseline2: Any, tmp_path: Path) -> None:
    root = rt.copy_checkpoints(baseline2.root, tmp_path / "ckpt", [2, 4, 6, 8])
    flip_bit(folder(root, 8) / "__1_0.distcp")  # one bit of one weight or moment: sizes still match
    flip_bit(folder(root, 6) / ".metadata")
    manifest = folder(root, 4) / "manifest.json"
    text = manifest.read_text()
    flip_bit(manifest, text.index('"samplesConsumed": ') + len('"samplesConsumed": '), 1)  # 24 -> 34
    assert {e.step: e.state for e in ckpt_layout.scan(root)} == {s: "complete" for s in (2, 4, 6, 8)}

    run = rt.launch(rt.contract_env(root, 2, TANDEM_CHECKPOINT_KEEP="1"))
    assert_resumed_exactly(rt, run, baseline2, 2)
    events = {e["step"]: e for e in run.events(ckpt_layout.QUARANTINED_EVENT)}
    assert "__1_0.distcp has checksum" in events["8"]["detail"]
    assert ".metadata has checksum" in events["6"]["detail"]
    assert "digest" in events["4"]["detail"]
    assert quarantined(root) == {4: "checksum", 6: "checksum", 8: "checksum"}
    reason = json.loads((root / "quarantine" / "step-000000008-checksum" / ckpt_layout.REASON_FILE).read_text())
    assert reason["attempt"] == 1 and "__1_0.distcp" in reason["detail"]
    # keep 1: only the newest of the new saves is left, and it is intact.
    (last,) = ckpt_layout.scan(root)
    assert last.step == 8 and verify.content_problem(last.path, last.manifest or {}) is None


def test_a_missing_shard_and_truncated_files(rt: Any, baseline2: Any, tmp_path: Path) -> None:
    root = rt.copy_checkpoints(baseline2.root, tmp_path / "ckpt", [2, 4, 6, 8])
    (folder(root, 8) / "__0_0.distcp").unlink()
    rng = folder(root, 6) / "rng-rank1.pt"
    rng.write_bytes(rng.read_bytes()[:-7])
    run = rt.launch(rt.contract_env(root, 2, TANDEM_CHECKPOINT_KEEP="1"))
    assert_resumed_exactly(rt, run, baseline2, 4)
    assert quarantined(root) == {6: "corrupt", 8: "corrupt"}
    assert [e.step for e in ckpt_layout.scan(root)] == [8]


def test_an_implausible_first_loss_rejects_the_checkpoint_in_the_run(rt: Any, baseline2: Any, tmp_path: Path) -> None:
    root = rt.copy_checkpoints(baseline2.root, tmp_path / "ckpt", [2, 4, 6])
    # The saved loss says the model was far better than its weights are: the checksums pass (the manifest
    # is re-digested), the first step after the resume does not.
    rewrite_manifest(folder(root, 6), lambda manifest: manifest["state"].update(loss=0.05))
    run = rt.launch(rt.contract_env(root, 2))
    assert run.returncode == 0, run.output[-4000:]
    (event,) = run.events(ckpt_layout.QUARANTINED_EVENT)
    assert event["step"] == "6" and event["reason"] == "loss" and "bound" in event["detail"]
    assert quarantined(root) == {6: "loss"}
    # Rebuilt from scratch, loaded from 4: the losses continue bit-identically from step 5.
    assert [e["resumed_from"] for e in run.events("training_start") if e["rank"] == "0"] == ["6", "4"]
    assert run.losses() == {s: baseline2.losses()[s] for s in range(5, rt.STEPS + 1)}


def test_every_checkpoint_corrupt_fails_with_checkpoint_unreadable(rt: Any, baseline2: Any, tmp_path: Path) -> None:
    root = rt.copy_checkpoints(baseline2.root, tmp_path / "ckpt", [2, 4, 6, 8])
    for step in (2, 4, 6, 8):
        flip_bit(folder(root, step) / "__0_0.distcp")
    run = rt.launch(rt.contract_env(root, 2, TANDEM_CHECKPOINT_KEEP="1"))
    assert run.returncode != 0
    assert run.termination["class"] == "storage" and run.termination["reason"] == "CheckpointUnreadable"
    assert "onUnreadable=fail" in run.termination["message"]
    assert not run.events("training_start")  # no worker trained from scratch over the evidence
    assert quarantined(root) == {s: "checksum" for s in (2, 4, 6, 8)}
    # The next attempt finds only the quarantine: still the policy's outcome, not a silent fresh start.
    fail = {**rt.TRAINING, "checkpoint": {"onUnreadable": "fail"}}  # the default, said explicitly
    again = rt.launch(rt.contract_env(root, 2, fail, TANDEM_ATTEMPT="2"))
    assert again.termination["reason"] == "CheckpointUnreadable"
    assert len(list((root / "quarantine").iterdir())) == 4


def test_every_checkpoint_corrupt_with_scratch_trains_from_step_0(rt: Any, baseline2: Any, tmp_path: Path) -> None:
    root = rt.copy_checkpoints(baseline2.root, tmp_path / "ckpt", [2, 4, 6, 8])
    for step in (4, 6, 8):
        flip_bit(folder(root, step) / "__0_0.distcp")
    # Step 2 passes its checksums (the manifest is re-digested) and is rejected in the run by its first loss:
    # the fallback inside the workers meets the policy too, not only the launcher.
    rewrite_manifest(folder(root, 2), lambda manifest: manifest["state"].update(loss=0.05))
    run = rt.launch(rt.contract_env(root, 2, {**rt.TRAINING, "checkpoint": {"onUnreadable": "scratch"}}))
    assert run.returncode == 0, run.output[-4000:]
    assert (run.termination["class"], run.termination["checkpointStep"]) == ("none", rt.STEPS)
    assert run.termination["resumedFrom"] is None
    assert quarantined(root) == {2: "loss", 4: "checksum", 6: "checksum", 8: "checksum"}
    (said,) = run.events("checkpoint_unreadable")
    assert said["policy"] == "scratch" and said["start_step"] == "0" and "steps [2, 4, 6, 8]" in said["detail"]
    assert [e["resumed_from"] for e in run.events("training_start") if e["rank"] == "0"] == ["2", "None"]
    # Trained from scratch: the uninterrupted run's losses, to the last bit, and fresh intact checkpoints.
    assert run.losses() == baseline2.losses()
    assert {e.step: e.state for e in ckpt_layout.scan(root)} == {s: "complete" for s in (2, 4, 6, 8)}


def test_a_checkpoint_of_the_trainer_before_the_sdk_resumes_exactly(rt: Any, baseline2: Any, tmp_path: Path) -> None:
    """tandem-train kept samplesConsumed and loss at the top of the manifest before it saved through the SDK
    (which keeps a script's state under `state`): such a checkpoint still resumes bit-identically."""
    root = rt.copy_checkpoints(baseline2.root, tmp_path / "ckpt", [2, 4])
    rewrite_manifest(folder(root, 4), lambda manifest: manifest.update(manifest.pop("state")))
    assert "state" not in json.loads((folder(root, 4) / "manifest.json").read_text())
    assert_resumed_exactly(rt, rt.launch(rt.contract_env(root, 2)), baseline2, 4)
