"""`tandem demo --fast` end to end: a local cluster, the operator subprocess, the real runtime, two
injected HCCL faults. The facts come from the API (the TrainingJob the demo fetched at the end) and
the report (the runtime's own log lines), never from the terminal text."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from PIL import Image

pytestmark = [pytest.mark.slow, pytest.mark.timeout(360)]  # the demo itself gives up after 300 s


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    report = tmp_path_factory.mktemp("demo-report")
    result = subprocess.run([sys.executable, "-P", "-m", "tandem.cli", "demo", "--fast", "--report", str(report)],
                            capture_output=True, text=True, timeout=330)  # past the demo's own 300 s
    return result, report


def _status(report: Path) -> dict:
    return yaml.safe_load((report / "trainingjob.yaml").read_text())["status"]


def test_demo_plays_the_story(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, report = demo
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    status = _status(report)
    assert status["phase"] == "Succeeded"
    faults = status["faults"]
    assert [f["class"] for f in faults] == ["interconnect", "interconnect"]
    assert [(f["attempt"], f["pool"]) for f in faults] == [(1, "ascend-910b"), (2, "ascend-910b")]
    # One restart on Ascend (attempt 2, in place: in the same pods), then one failover to NVIDIA (attempt 3).
    assert (status["attempt"], status["pool"], status["restarts"], status["failovers"]) == (3, "h20", 2, 1)
    assert "Traceback" not in (report / "operator.log").read_text()


def test_each_resume_starts_at_the_checkpoint_and_the_loss_continues(
        demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, report = demo
    faults = _status(report)["faults"]
    facts = json.loads((report / "report.json").read_text())
    attempts = {a["attempt"]: a for a in facts["attempts"]}
    assert attempts[1]["resumed_from"] is None
    for fault in faults:
        resumed = attempts[fault["attempt"] + 1]
        assert fault["checkpointStep"] > 0
        assert resumed["resumed_from"] == resumed["start_step"] == fault["checkpointStep"]
    # The failover changes the world size and keeps the global batch (the accumulation adapts).
    assert attempts[3]["world"] != attempts[1]["world"]
    assert attempts[3]["global_batch"] == attempts[1]["global_batch"]
    last = attempts[3]
    assert last["world"] * last["micro_batch"] * last["accumulation"] == last["global_batch"]
    loss = {(p["attempt"], p["step"]): p["loss"] for p in facts["loss"]}
    initial = loss[(1, 1)]
    for fault in faults:
        ckpt, attempt = fault["checkpointStep"], fault["attempt"]
        before = next(loss[(a, ckpt)] for a in range(1, attempt + 1) if (a, ckpt) in loss)
        after = loss[(attempt + 1, ckpt + 1)]
        assert before < initial - 0.5, "training had made progress before the fault"
        # No jump back towards the initial loss: the weights and optimizer state came back.
        assert after - before < 0.3 * (initial - before), (before, after, initial)
    assert max(step for (_, step) in loss) == facts["status"]["lastCheckpoint"]["step"]
    # The steps lost to each fault are trained again from the checkpoint: same weights, same samples, same loss
    # (up to the reduction order of the other world size after the failover).
    replayed = [(step, a) for (a, step) in loss if a > 1 and (a - 1, step) in loss]
    assert {a for _, a in replayed} == {2, 3}
    for step, a in replayed:
        assert abs(loss[(a, step)] - loss[(a - 1, step)]) <= 1e-3 * abs(loss[(a - 1, step)]), (step, a)


def test_report_has_recoveries_and_a_loss_curve(demo: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, report = demo
    facts = json.loads((report / "report.json").read_text())
    assert facts["ok"] and all(c["ok"] for c in facts["checks"])
    recoveries = facts["recoveries"]
    assert [r["kind"] for r in recoveries] == ["in place", "failover"]
    for rec in recoveries:
        assert rec["steps_lost"] >= 1
        assert rec["total"] > 0
        assert rec["phases"][0]["name"] == "detection"
        assert all(p["seconds"] is None or p["seconds"] >= 0 for p in rec["phases"])
    png = report / "loss.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as image:
        image.verify()
    with Image.open(png) as image:
        assert image.size[0] >= 400 and image.size[1] >= 200
    timeline = json.loads((report / "timeline.json").read_text())
    reasons = [row["reason"] for row in timeline if row["kind"] == "event"]
    assert {"FaultDetected", "InPlace", "FailedOver", "Succeeded"} <= set(reasons)
    assert (report / "report.md").exists() and (report / "timeline.md").exists()
