"""What the terminal shows: a snapshot of the story (pure), drawn with `rich` on a terminal, or as
plain lines when the output is not one (CI logs stay readable)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Group, RenderableType
from rich.panel import Panel
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text

from tandem.demo.model import EventSeen, Story, one_line
from tandem.operator.observe import node_is_ready
from tandem.operator.podspec import POOL_LABEL

EVENTS_SHOWN = 8


@dataclass(frozen=True)
class NodeRow:
    name: str
    pool: str
    ready: bool
    devices: str
    pods: str
    excluded: bool


@dataclass(frozen=True)
class RankRow:
    rank: int
    pod: str
    node: str
    phase: str
    last_event: str
    step: int | None  # the job's step once the rank trains: every rank steps in lockstep
    loss: float | None  # the all-reduced loss of that step (the same on every rank)


@dataclass(frozen=True)
class Snapshot:
    started: float
    elapsed: float
    phase: str
    attempt: int
    pool: str
    restarts: int
    failovers: int
    checkpoint: int
    message: str
    steps: int
    step: int
    loss: float | None
    world: int | None
    accumulation: int | None
    nodes: list[NodeRow] = field(default_factory=list)
    ranks: list[RankRow] = field(default_factory=list)
    events: list[EventSeen] = field(default_factory=list)


def _device_count(node: dict[str, Any]) -> str:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    found = [f"{v} x {k.split('/')[-1]}" for k, v in allocatable.items() if "/" in k]
    return ", ".join(found) or "-"


def snapshot(story: Story, nodes: list[dict[str, Any]], steps: int, now: float) -> Snapshot:
    status = story.status
    attempt = int(status.get("attempt") or 0)
    current = story.attempt_pods(attempt)
    excluded = set(status.get("excludedNodes") or [])
    node_rows = []
    for node in sorted(nodes, key=lambda n: n["metadata"]["name"]):
        name = node["metadata"]["name"]
        here = [p.name for p in current if p.node == name and p.phase != "Deleted"]
        pool = (node["metadata"].get("labels") or {}).get(POOL_LABEL, "")
        node_rows.append(NodeRow(name=name, pool=pool, ready=node_is_ready(node), devices=_device_count(node),
                                 pods=" ".join(here), excluded=name in excluded))
    points = [r for r in story.records(attempt, "step") if r.step is not None]
    starts = story.records(attempt, "training_start")
    last = points[-1] if points else None
    resumed_step = int(starts[0].fields.get("start_step") or 0) if starts else 0
    step = last.step if last and last.step else resumed_step
    training = {r.rank for r in starts}
    rank_rows = []
    for pod in current:
        by_rank: dict[int, str] = {}
        for record in story.logs.get(pod.name, []):
            if record.rank is not None:
                by_rank[record.rank] = record.event + (f" {record.step}" if record.step is not None else "")
        for rank in sorted(by_rank) or [-1]:
            trains = rank in training and pod.phase in ("Running", "Succeeded")
            rank_rows.append(RankRow(rank=rank, pod=pod.name, node=pod.node or "-", phase=pod.phase,
                                     last_event=by_rank.get(rank, "starting"), step=step if trains else None,
                                     loss=last.loss if trains and last else None))
    return Snapshot(
        started=story.started, elapsed=now - story.started, phase=str(status.get("phase") or "Pending"),
        attempt=attempt,
        pool=str(status.get("pool") or "-"), restarts=int(status.get("restarts") or 0),
        failovers=int(status.get("failovers") or 0),
        checkpoint=int((status.get("lastCheckpoint") or {}).get("step") or 0), message=str(status.get("message") or ""),
        steps=steps, step=step, loss=last.loss if last else None,
        world=int(starts[0].fields["world"]) if starts else None,
        accumulation=starts[0].fields.get("accumulation") if starts else None,
        nodes=node_rows, ranks=rank_rows, events=story.events[-EVENTS_SHOWN:])


def render(snap: Snapshot, commands: list[str]) -> RenderableType:
    """The live view: job line, progress bar, nodes, ranks, the latest Events, the kubectl commands."""
    loss = f"{snap.loss:.3f}" if snap.loss is not None else "-"
    head = Text.assemble(
        ("llama-demo ", "bold"), (f"{snap.phase}", "bold green" if snap.phase in ("Running", "Succeeded") else
                                  "bold yellow"),
        f"  attempt {snap.attempt} on {snap.pool}  restarts {snap.restarts}  failovers {snap.failovers}"
        f"  checkpoint step {snap.checkpoint}  [{snap.elapsed:5.0f}s]")
    world = f"world {snap.world} x accumulation {snap.accumulation}" if snap.world else ""
    bar = Table.grid(padding=(0, 1))
    bar.add_row(Text(f"step {snap.step:>4}/{snap.steps}"), ProgressBar(total=snap.steps, completed=snap.step,
                                                                        width=40), Text(f"loss {loss}  {world}"))
    nodes = Table("node", "pool", "ready", "devices", "pods of this attempt", title="pools and nodes",
                  title_justify="left", expand=False)
    for row in snap.nodes:
        ready = "[green]yes[/]" if row.ready else "[red]no[/]"
        nodes.add_row(row.name, row.pool, ready + (" [red](excluded)[/]" if row.excluded else ""), row.devices,
                      row.pods)
    ranks = Table("rank", "pod", "node", "pod phase", "step", "loss", "its last log event", title=(
        "ranks (they step in lockstep: each step ends in an all-reduce of the loss, which rank 0 logs)"),
        title_justify="left")
    for r in snap.ranks:
        ranks.add_row(str(r.rank) if r.rank >= 0 else "-", r.pod, r.node, r.phase,
                      "-" if r.step is None else str(r.step), "-" if r.loss is None else f"{r.loss:.3f}", r.last_event)
    events = Table("at", "type", "reason", "message", title="Events", title_justify="left")
    for event in snap.events:
        style = "yellow" if event.type == "Warning" else ""
        events.add_row(f"{event.at - snap.started:.0f}s", Text(event.type, style),
                       event.reason, one_line(event.message)[:110])
    hint = Text("\n".join(commands), style="dim")
    return Group(Panel(Group(head, bar, Text(snap.message, style="dim")), title="tandem demo"), nodes, ranks, events,
                 hint)


def event_line(elapsed: float, event: EventSeen) -> str:
    return f"[{elapsed:6.1f}s] {event.type:<7} {event.reason:<15} {one_line(event.message)}"


def status_line(snap: Snapshot) -> str:
    loss = f"{snap.loss:.3f}" if snap.loss is not None else "-"
    return (f"[{snap.elapsed:6.1f}s] {snap.phase:<10} attempt={snap.attempt} pool={snap.pool:<12} "
            f"step={snap.step}/{snap.steps} loss={loss} checkpoint={snap.checkpoint}")


class PlainView:
    """Non-terminal output: a line per Event as it arrives, a status line when the phase or attempt changes
    and every `every` steps."""

    def __init__(self, every: int) -> None:
        self.every = every
        self._last: tuple[str, int, int] | None = None

    def lines(self, snap: Snapshot, events: list[EventSeen], started: float) -> list[str]:
        out = [event_line(e.at - started, e) for e in events]
        key = (snap.phase, snap.attempt, snap.step // max(1, self.every))
        if key != self._last:
            self._last = key
            out.append(status_line(snap))
        return out
