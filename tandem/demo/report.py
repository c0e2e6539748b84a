"""The report folder: the loss curve (PNG), the event timeline, the recovery times and the verdict.
The Markdown and JSON builders are pure; `write_report` is the only writer."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tandem.demo.analysis import Check, Point, Recovery, Resume
from tandem.demo.model import Story, one_line

POD_TIMES = ("created", "scheduled", "running", "finished", "deleted")


def _iso(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def pod_rows(story: Story) -> list[dict[str, Any]]:
    """Every pod of the job with the moments the demo saw it created, bound, running, stopped and deleted."""
    rows = []
    for pod in sorted(story.pods.values(), key=lambda p: p.name):
        row = asdict(pod)
        row.update({key: _iso(row[key]) for key in POD_TIMES if row[key] is not None})
        rows.append(row)
    return rows


def timeline(story: Story) -> list[dict[str, Any]]:
    """The job's phases and the Events, in order, as the demo received them."""
    rows = [{"at": at, "t": round(at - story.started, 3), "kind": "phase", "type": "Normal", "reason": phase,
             "message": f"attempt {attempt} on {pool or '-'}"} for at, phase, attempt, pool in story.phases]
    rows += [{"at": e.at, "t": round(e.at - story.started, 3), "kind": "event", "type": e.type, "reason": e.reason,
              "message": e.message, "object": e.involved} for e in story.events]
    # The runtime's own milestones, from its log lines: where each attempt started, where the faults hit.
    for attempt in story.attempts():
        for event in ("training_start", "worker_fault"):
            found = story.records(attempt, event)
            if found:
                fields, rank = found[0].fields, found[0].rank
                what = (f"attempt {attempt}: {fields.get('reason')} at step {fields.get('step')} on rank {rank}"
                        if event == "worker_fault" else f"attempt {attempt} trains from step {fields.get('start_step')}"
                        f" on {fields.get('world')} ranks (accumulation {fields.get('accumulation')})")
                rows.append({"at": found[0].time, "t": round(found[0].time - story.started, 3), "kind": "log",
                             "type": "Warning" if event == "worker_fault" else "Normal", "reason": event,
                             "message": what})
    rows.sort(key=lambda row: row["at"])
    for row in rows:
        row["at"] = _iso(row["at"])
    return rows


def timeline_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["# Event timeline", "", "Seconds since the demo started, as the demo's watches received them.", "",
             "| t (s) | kind | type | reason | message |", "|--:|--|--|--|--|"]
    lines += [f"| {row['t']:.1f} | {row['kind']} | {row['type']} | {row['reason']} | "
              f"{one_line(row['message']).replace('|', '/')[:200]} |" for row in rows]
    return "\n".join(lines) + "\n"


def _seconds(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def recovery_markdown(recovered: list[Recovery]) -> str:
    lines = ["## Recovery per fault", "",
             "From the fault (the faulting rank's `worker_fault` log line) to training resumed (every rank of the"
             " next attempt logged `resumed`: the checkpoint is loaded). Phase ends are the moments the demo"
             " received the watch events (milliseconds after the API wrote them; the API's own timestamps have"
             " 1 s resolution), the runtime's log timestamps (microseconds) and the access time of the"
             " checkpoint's `.metadata` (the load's first read).", "",
             "- `backoff`: the operator's policy wait (`backoffSeconds`, counted on its 1 s clock), not work;",
             "- `container start`: the kubelet starts the pod's process, the launcher chooses the checkpoint;",
             "- `worker start-up`: one Python process per rank, importing torch, the gloo rendezvous, building the"
             " model (after an in-place restart the standby workers have imported torch already);",
             "- in place (no new pods): `signal` ends when the operator has moved the label of every pod that stays,"
             " `supervisor` when every pod's supervisor has seen it, stopped its workers and chosen the checkpoint.",
             ""]
    for rec in recovered:
        lines += [f"### Fault {rec.fault + 1}: {rec.fault_class}/{rec.reason}, attempt {rec.attempt} on {rec.pool}"
                  f" -> {rec.kind} to attempt {rec.next_attempt} on {rec.next_pool}", "",
                  f"Root cause in the runtime's logs: {rec.root_cause}. Fault at step {rec.fault_step},"
                  f" last checkpoint {rec.checkpoint_step}, resumed at step {rec.resumed_step};"
                  f" **steps lost: {rec.steps_lost}** (finished steps after the checkpoint, trained again)."
                  f" **Total: {_seconds(rec.total)} s.**", "",
                  "| phase | seconds | ends when |", "|--|--:|--|"]
        lines += [f"| {phase.name} | {_seconds(phase.seconds)} | {phase.ends_at} |" for phase in rec.phases]
        lines.append("")
    return "\n".join(lines)


def summary_markdown(checks: list[Check], recovered: list[Recovery], resumed: list[Resume], duration: float,
                     training: float | None) -> str:
    ok = all(c.ok for c in checks)
    lines = ["# tandem demo report", "", f"**{'The story played out' if ok else 'The story did NOT play out'}.**"
             f" Demo duration {duration:.0f} s (cluster start to the job's end)"
             + (f"; training (first attempt's start to Succeeded) {training:.0f} s." if training else "."), "",
             "![loss curve](loss.png)", "", "| check | ok | detail |", "|--|--|--|"]
    lines += [f"| {c.name} | {'yes' if c.ok else '**no**'} | {c.detail} |" for c in checks]
    lines += ["", "## Attempts", "", "| attempt | start step | world | micro-batch | accumulation | global batch |",
              "|--:|--:|--:|--:|--:|--:|"]
    lines += [f"| {r.attempt} | {r.start_step} | {r.world} | {r.micro_batch} | {r.accumulation} | {r.global_batch} |"
              for r in resumed]
    return "\n".join(lines) + "\n\n" + recovery_markdown(recovered)


def plot_loss(points: list[Point], recovered: list[Recovery], resumed: list[Resume], pools: dict[int, str],
              path: Path) -> None:
    """One line per attempt; a red cross where each fault hit, a dashed line where the next attempt resumed."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file only
    from matplotlib import pyplot as plt

    worlds = {r.attempt: r.world for r in resumed}
    fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
    attempts = sorted({p.attempt for p in points})
    for attempt in attempts:
        mine = [p for p in points if p.attempt == attempt]
        # A resumed attempt trains the lost steps again over its predecessor's line: earlier attempts are drawn
        # on top, so the replayed steps show both (they coincide: same weights, same samples).
        ax.plot([p.step for p in mine], [p.loss for p in mine], marker="o", markersize=2, linewidth=1.3,
                zorder=10 - attempt, label=f"attempt {attempt}: {pools.get(attempt, '?')}, "
                                           f"{worlds.get(attempt, '?')} ranks")
    top = max((p.loss for p in points), default=1.0)
    for rec in recovered:
        before = [p for p in points if p.attempt == rec.attempt]
        if before and rec.fault_step is not None:
            ax.scatter([rec.fault_step], [before[-1].loss], marker="X", s=90, color="red", zorder=20)
            ax.annotate(f"HCCL fault\n(attempt {rec.attempt})", (rec.fault_step, before[-1].loss),
                        xytext=(rec.fault_step + 2, before[-1].loss + 0.25 * (top - before[-1].loss)), fontsize=8,
                        color="red", arrowprops={"arrowstyle": "-", "color": "red", "linewidth": 0.8}, zorder=20)
        if rec.resumed_step is not None:
            ax.axvline(rec.resumed_step, linestyle="--", color="gray", linewidth=1)
            what = {"restart": "restart", "in place": "restart in place"}.get(rec.kind, f"failover to {rec.next_pool}")
            ax.annotate(f"{what}\nfrom step {rec.resumed_step}", (rec.resumed_step, top), textcoords="offset points",
                        xytext=(-4, -26), fontsize=8, ha="right", color="dimgray")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss")
    ax.set_title("llama-demo: loss across attempts (same global batch on every pool)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper right", bbox_to_anchor=(1.0, 0.82))
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def write_report(folder: Path, story: Story, job: dict[str, Any], api_events: list[dict[str, Any]],
                 checks: list[Check], points: list[Point], resumed: list[Resume], recovered: list[Recovery],
                 duration: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pools = {attempt: p.pool for p in story.pods.values() for attempt in p.attempts}  # in place: the same pool
    plot_loss(points, recovered, resumed, pools, folder / "loss.png")
    rows = timeline(story)
    (folder / "timeline.json").write_text(json.dumps(rows, indent=1))
    (folder / "timeline.md").write_text(timeline_markdown(rows))
    starts = [r.time for r in resumed]
    ended = next((at for at, phase, _, _ in story.phases if phase in ("Succeeded", "Failed")), None)
    training = ended - min(starts) if starts and ended else None
    (folder / "report.md").write_text(summary_markdown(checks, recovered, resumed, duration, training))
    (folder / "report.json").write_text(json.dumps({
        "ok": all(c.ok for c in checks),
        "durationSeconds": round(duration, 2),
        "trainingSeconds": None if training is None else round(training, 2),
        "checks": [asdict(c) for c in checks],
        "attempts": [asdict(r) for r in resumed],
        "recoveries": [r.to_json() for r in recovered],
        "loss": [asdict(p) for p in points],
        "status": job.get("status") or {},
    }, indent=1))
    (folder / "pods.json").write_text(json.dumps(pod_rows(story), indent=1))
    (folder / "events.json").write_text(json.dumps(api_events, indent=1, default=str))
