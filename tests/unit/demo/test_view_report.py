import io
import json
from pathlib import Path

from PIL import Image
from rich.console import Console

from tandem.demo import analysis
from tandem.demo.model import Story
from tandem.demo.report import recovery_markdown, timeline, timeline_markdown, write_report
from tandem.demo.view import PlainView, render, snapshot

NODES = [{"metadata": {"name": f"ascend-910b-node-{i}", "labels": {"tandem.dev/pool": "ascend-910b"}},
          "status": {"allocatable": {"huawei.com/Ascend910": "2", "cpu": "64"},
                     "conditions": [{"type": "Ready", "status": "True"}]}} for i in range(3)]

T0 = 1_700_000_000.0



def test_snapshot_of_the_finished_story(story: Story) -> None:
    snap = snapshot(story, NODES, 24, T0 + 100)
    assert (snap.phase, snap.attempt, snap.pool, snap.step, snap.world, snap.accumulation) == (
        "Succeeded", 3, "h20", 24, 2, 2)
    assert snap.loss is not None and abs(snap.loss - (5.5 - 2.4)) < 1e-9
    assert [(r.rank, r.step) for r in snap.ranks] == [(0, 24), (1, 24)]
    assert snap.ranks[1].loss == snap.loss and snap.ranks[1].last_event == "training_start"
    assert snap.nodes[0].devices == "2 x Ascend910" and snap.nodes[0].ready


def test_render_draws_without_a_terminal(story: Story) -> None:
    out = io.StringIO()
    Console(width=160, file=out, force_terminal=False).print(render(snapshot(story, NODES, 24, T0 + 100),
                                                                    ["kubectl get tj"]))
    text = out.getvalue()
    assert "Succeeded" in text and "ascend-910b-node-2" in text
    assert "llama-demo-a3-1" in text and "kubectl get tj" in text


def test_plain_view_prints_changes_only(story: Story) -> None:
    view = PlainView(every=5)
    snap = snapshot(story, NODES, 24, T0 + 100)
    first = view.lines(snap, story.events, story.started)
    assert len(first) == 1 and "Succeeded" in first[0]
    assert view.lines(snap, [], story.started) == []


def test_timeline_is_ordered_and_markdown_escapes_pipes(story: Story) -> None:
    rows = timeline(story)
    assert [r["t"] for r in rows] == sorted(r["t"] for r in rows)
    assert [r["message"] for r in rows if r["reason"] == "worker_fault"] == [
        "attempt 1: HcclSocketTimeout at step 11 on rank 1", "attempt 2: HcclSocketTimeout at step 15 on rank 1"]
    rows.append({"t": 1.0, "kind": "event", "type": "Normal", "reason": "R", "message": "a|b\n   Solution: c"})
    assert "a/b Solution: c |" in timeline_markdown(rows)


def test_recovery_markdown_names_phases(story: Story) -> None:
    text = recovery_markdown(analysis.recoveries(story))
    assert "checkpoint load" in text and "steps lost: 2" in text and "failover to attempt 3 on h20" in text


def test_write_report(tmp_path: Path, story: Story) -> None:
    points, resumed = analysis.loss_points(story), analysis.resumes(story)
    checks = analysis.story_checks(story.status, ["ascend-910b", "h20"], 24, points, resumed)
    write_report(tmp_path, story, {"status": story.status}, [], checks, points, resumed,
                 analysis.recoveries(story), 95.0)
    with Image.open(tmp_path / "loss.png") as image:
        assert image.format == "PNG" and image.size[0] > 400
    facts = json.loads((tmp_path / "report.json").read_text())
    assert facts["ok"] and len(facts["recoveries"]) == 2 and facts["trainingSeconds"] > 0
    assert json.loads((tmp_path / "pods.json").read_text())[0]["created"].endswith("Z")
    assert "The story played out" in (tmp_path / "report.md").read_text()
