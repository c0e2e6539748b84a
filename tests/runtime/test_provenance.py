"""Which job wrote a checkpoint, and what the operator reads from the runtime's log while a run is healthy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tandem.runtime.ckpt_layout import (
    COMMITTED_EVENT,
    FOREIGN_EVENT,
    QUARANTINED_EVENT,
    committed_in_log,
    config_fingerprint,
    config_fingerprints,
    foreign_because,
    foreign_in_log,
    provenance,
    quarantined_in_log,
)
from tandem.runtime.config import parse_training_config

MINE = provenance("ml/llama", "uid-2", config_fingerprint({"model": "test", "steps": 100, "globalBatch": 8}))


def test_the_run_length_is_not_part_of_the_config_fingerprint() -> None:
    """Extending a run (more steps) keeps its checkpoints its own; any other change does not."""
    assert config_fingerprint({"model": "test", "steps": 100}) == config_fingerprint({"steps": 900, "model": "test"})
    assert config_fingerprint({"model": "test", "lr": 1e-3}) != config_fingerprint({"model": "test", "lr": 2e-3})


# The fingerprint of the default training config before `checkpoint.onUnreadable` existed (commit bcc9a1c):
# checkpoints written then must stay the job's own after the upgrade.
DEFAULT_FINGERPRINT = "39bacd039a907e36a7b80a38cfc84fe66a99bb8fbfd31b4ca564c8d5a5846142"


def _fingerprints(raw: dict[str, Any]) -> tuple[str, ...]:
    return config_fingerprints(parse_training_config(json.dumps(raw)).model_dump(mode="json", by_alias=True))


@pytest.mark.parametrize("policy", [None, {}, {"onUnreadable": "fail"}, {"onUnreadable": "scratch"}])
def test_the_recovery_policy_is_not_part_of_the_config_fingerprint(policy: dict[str, str] | None) -> None:
    raw = {} if policy is None else {"checkpoint": policy}
    assert _fingerprints(raw) == _fingerprints({})
    assert foreign_because({**MINE, "trainingConfigSha256": DEFAULT_FINGERPRINT}, MINE["job"], MINE["jobUid"],
                           _fingerprints(raw)) == []


@pytest.mark.parametrize("watching", [{"watchdogSeconds": 900}, {"metrics": {"port": 0, "logEverySteps": 1}},
                                      {"metrics": {"peakTflops": 312}}])
def test_how_the_run_is_watched_is_not_part_of_the_config_fingerprint(watching: dict[str, Any]) -> None:
    """A longer watchdog or another metrics port between attempts trains the same model: no ForeignCheckpoint."""
    assert _fingerprints(watching)[0] == _fingerprints({})[0]
    assert _fingerprints({**watching, "lr": 1e-4})[0] != _fingerprints({})[0]


def test_a_checkpoint_fingerprinted_before_the_watchdog_was_left_out_stays_the_jobs_own() -> None:
    """Checkpoints written before the watch settings were left out recorded them (the legacy fingerprint)."""
    current, legacy = _fingerprints({"watchdogSeconds": 900})
    assert current != legacy
    written = {**MINE, "trainingConfigSha256": legacy}
    assert foreign_because(written, MINE["job"], MINE["jobUid"], (current, legacy)) == []
    assert foreign_because(written, MINE["job"], MINE["jobUid"], _fingerprints({"watchdogSeconds": 600})) == [
        "written with another training config"]


@pytest.mark.parametrize(("written", "reasons"), [
    (MINE, []),
    (None, []),
    ({}, []),  # written before checkpoints recorded their job: nothing to say
    ({**MINE, "jobUid": "uid-1"}, ["written by an earlier job ml/llama (uid uid-1)"]),
    ({**MINE, "job": "ml/other", "jobUid": "uid-9"}, ["written by job ml/other"]),
    ({**MINE, "trainingConfigSha256": "0" * 64}, ["written with another training config"]),
    ({**MINE, "job": "ml/other", "trainingConfigSha256": "0" * 64},
     ["written by job ml/other", "written with another training config"]),
])
def test_a_checkpoint_says_whose_it_is(written: dict[str, Any] | None, reasons: list[str]) -> None:
    assert foreign_because(written, MINE["job"], MINE["jobUid"], (MINE["trainingConfigSha256"],)) == reasons


@pytest.mark.parametrize("fmt", ["kv", "json"])
def test_the_operator_reads_the_runtimes_log_in_either_format(fmt: str) -> None:
    def line(event: str, **fields: Any) -> str:
        record = {"timestamp": "2026-12-02T05:00:00Z", "level": "info", "event": event, **fields}
        if fmt == "json":
            return json.dumps(record)
        return " ".join(f"{k}={v!r}" for k, v in record.items())

    log = "\n".join([
        line("training_start", start_step=0),
        line(COMMITTED_EVENT, step=200, path="/c/step-000000200"),
        "Traceback: a line that mentions checkpoint_committed but is not the runtime's",
        line(COMMITTED_EVENT, step=400),
        line(COMMITTED_EVENT, step="bad"),
        line("step", step=450, loss=4.5),
        line(FOREIGN_EVENT, step=400, reasons="written by job ml/other; it's not this one"),
        line(QUARANTINED_EVENT, step=600, reason="checksum", detail="__0_0.distcp: crc32 mismatch"),
        line(QUARANTINED_EVENT, step=500, reason="corrupt", detail="rng-rank1.pt is missing"),
    ])
    assert committed_in_log(log) == 400
    assert quarantined_in_log(log) == ("step 600 (checksum)", "step 500 (corrupt)")
    assert foreign_in_log(log) == "resumes from checkpoint step 400: written by job ml/other; it's not this one"
    assert (committed_in_log(""), foreign_in_log(line("step", step=3))) == (None, None)


def test_a_run_resuming_another_jobs_checkpoint_says_so_before_it_trains(rt: Any, baseline1: Any,
                                                                        tmp_path: Path) -> None:
    """A new job pointed at a folder another job filled: the launcher says whose the checkpoint is before any
    worker loads it (the operator turns that into a Warning Event), then resumes as asked."""
    root = tmp_path / "ckpt"
    shutil.copytree(baseline1.root, root)
    manifest = json.loads((root / f"step-{rt.STEPS:09d}" / "manifest.json").read_text())
    assert (manifest["job"], len(manifest["trainingConfigSha256"])) == ("default/test", 64)
    run = rt.launch(rt.contract_env(root, 1, TANDEM_JOB="another-job", TANDEM_JOB_UID="uid-of-another-job"))
    assert run.returncode == 0, run.output[-3000:]
    events = [rt.parse_line(line).get("event") for line in run.output.splitlines()]
    assert FOREIGN_EVENT in events and events.index(FOREIGN_EVENT) < events.index("training_start")
    assert foreign_in_log(run.output) == f"resumes from checkpoint step {rt.STEPS}: written by job default/test"
