"""From what the demo saw to what the report says (pure): the loss curve, the resumes, each fault's
recovery split into phases, the steps it cost, and whether the story played out."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from tandem.demo.logparse import parse_time
from tandem.demo.model import Story

# How far the first loss after a resume may rise above the loss at the checkpoint, as a share of
# what training had gained by then: a resume that lost the weights jumps back by ~100 %.
MAX_JUMP_SHARE = 0.3
# A step trained again after a resume sees the same weights and samples: its loss matches the first time up to
# float reduction order (the runtime's tests hold resharded resumes to 1e-4).
MAX_REPLAY_REL = 1e-3


@dataclass(frozen=True)
class Point:
    attempt: int
    step: int
    loss: float
    time: float


@dataclass(frozen=True)
class Resume:
    """An attempt's `training_start` line: where it started and how the global batch was split."""

    attempt: int
    start_step: int
    resumed_from: int | None
    world: int
    micro_batch: int | None
    accumulation: int | None
    global_batch: int | None
    time: float


@dataclass(frozen=True)
class Phase:
    name: str
    seconds: float | None
    ends_at: str  # what marks the end of the phase, for the reader


@dataclass(frozen=True)
class Recovery:
    fault: int  # index into status.faults
    attempt: int
    next_attempt: int
    kind: str  # restart | failover | in place
    pool: str
    next_pool: str
    fault_class: str
    reason: str
    root_cause: str  # what the runtime's logs say hit first: reason, rank and pod of the first `worker_fault`
    fault_step: int | None
    checkpoint_step: int | None
    resumed_step: int | None
    steps_lost: int | None  # completed steps after the checkpoint, trained again
    phases: list[Phase]
    total: float | None  # fault -> training resumed (the checkpoint loaded)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str


def loss_points(story: Story) -> list[Point]:
    """Every `step` line, one point per (attempt, step): the loss is the all-reduced mean, logged by rank 0."""
    points: dict[tuple[int, int], Point] = {}
    for attempt in story.attempts():
        for record in story.records(attempt, "step"):
            if record.step is not None and record.loss is not None:
                points.setdefault((attempt, record.step), Point(attempt, record.step, record.loss, record.time))
    return sorted(points.values(), key=lambda p: (p.attempt, p.step))


def resumes(story: Story) -> list[Resume]:
    found = []
    for attempt in story.attempts():
        starts = story.records(attempt, "training_start")
        if starts:
            first = starts[0].fields
            found.append(Resume(attempt=attempt, start_step=int(first.get("start_step") or 0),
                                resumed_from=first.get("resumed_from"), world=int(first.get("world") or 0),
                                micro_batch=first.get("micro_batch"), accumulation=first.get("accumulation"),
                                global_batch=first.get("global_batch"), time=starts[0].time))
    return found


def _latest(values: list[float | None]) -> float | None:
    return None if not values or any(v is None for v in values) else max(v for v in values if v is not None)


def split_phases(start: float | None, marks: list[tuple[str, float | None, str]]) -> list[Phase]:
    """Consecutive phases between `start` and each mark (name, time, what marks it). A mark that was not
    observed merges its phase into the next one ("start-up + checkpoint load"); times never run backwards."""
    phases: list[Phase] = []
    pending: list[str] = []
    previous = start
    for name, at, ends_at in marks:
        pending.append(name)
        if at is None:
            continue
        seconds = None if previous is None else max(0.0, at - previous)
        phases.append(Phase(" + ".join(pending), seconds, ends_at))
        previous = at if previous is None else max(previous, at)
        pending = []
    if pending:
        phases.append(Phase(" + ".join(pending), None, "not observed"))
    return phases


def _first_of(story: Story, pod: str, attempt: int, event: str) -> float | None:
    """When `pod` first logged `event` in `attempt`."""
    return next((r.time for r in story.attempt_logs.get((pod, attempt), []) if r.event == event), None)


def recovery(story: Story, index: int) -> Recovery:
    fault = (story.status.get("faults") or [])[index]
    attempt = int(fault["attempt"])
    following = attempt + 1
    old, new = story.attempt_pods(attempt), story.attempt_pods(following)
    failed = story.records(attempt, "worker_fault")
    fault_at = failed[0].time if failed else parse_time(str(fault.get("time", "")))
    root = next((f"{r.fields.get('reason')} on rank {r.rank} ({pod.name})" for pod in old
                 for r in story.logs.get(pod.name, []) if failed and r is failed[0]), "not logged")
    resumed_lines = story.records(following, "resumed")
    resumed_next = next((r for r in resumes(story) if r.attempt == following), None)
    nranks = resumed_next.world if resumed_next else 0
    resumed_at = max(r.time for r in resumed_lines) if resumed_lines and len(resumed_lines) >= nranks else None
    detected = ("detection", story.fault_seen[index] if index < len(story.fault_seen) else None,
                "the fault appears in the job's status")
    tail = [("worker start-up", story.load_started.get(following),
             "the first read of the checkpoint (its .metadata file's access time)"),
            ("checkpoint load", resumed_at, "every rank logged `resumed`")]
    stayed = story.stayed(following)
    if stayed:  # an in-place restart: no pod to stop, create, schedule or start
        phases = split_phases(fault_at, [
            detected,
            ("signal", _latest([p.moved.get(following) for p in stayed]),
             "every pod that stays carries the new attempt's label"),
            ("supervisor", _latest([_first_of(story, p.name, following, "resume_choice") for p in stayed]),
             "every supervisor saw the label, stopped its workers, claimed the fence and chose the checkpoint"),
            *tail,
        ])
    else:
        phases = split_phases(fault_at, [
            detected,
            # The operator deletes the attempt's running pods and keeps the failed ones (for `kubectl logs`).
            ("teardown", _latest([p.finished or p.deleted for p in old]), "every pod of the attempt has stopped"),
            ("backoff", min((p.created for p in new if p.created), default=None),
             "the first pod of the next attempt exists"),
            ("scheduling", _latest([p.scheduled for p in new]), "every new pod is bound to a node"),
            ("container start", _latest([_first_of(story, p.name, following, "resume_choice") for p in new]),
             "every pod's launcher chose the checkpoint (`resume_choice`)"),
            *tail,
        ])
    steps_old = [r.step for r in story.records(attempt, "step") if r.step is not None]
    resumed_step = resumed_next.resumed_from if resumed_next else None
    if steps_old and resumed_step is not None:
        lost: int | None = max(0, max(steps_old) - resumed_step)
    elif fault.get("step") is not None and fault.get("checkpointStep") is not None:
        lost = max(0, int(fault["step"]) - 1 - int(fault["checkpointStep"]))
    else:
        lost = None
    pools = {p.pool for p in new} or {story.status.get("pool") or ""}
    next_pool = sorted(pools)[0]
    total = None if fault_at is None or resumed_at is None else resumed_at - fault_at
    kind = "in place" if stayed else "restart" if next_pool == fault.get("pool") else "failover"
    return Recovery(fault=index, attempt=attempt, next_attempt=following, kind=kind, pool=str(fault.get("pool")),
                    next_pool=next_pool, fault_class=str(fault.get("class")), reason=str(fault.get("reason")),
                    root_cause=root, fault_step=fault.get("step"), checkpoint_step=fault.get("checkpointStep"),
                    resumed_step=resumed_step, steps_lost=lost, phases=phases, total=total)


def recoveries(story: Story) -> list[Recovery]:
    attempts = story.attempts()
    return [recovery(story, i) for i, fault in enumerate(story.status.get("faults") or [])
            if int(fault["attempt"]) + 1 in attempts]


def _loss_at(points: list[Point], step: int, before_attempt: int) -> float | None:
    """The loss of `step` as first trained by an attempt before `before_attempt` (0: the initial loss)."""
    found = [p.loss for p in points if p.step == step and p.attempt < before_attempt]
    return found[0] if found else None


def loss_jumps(points: list[Point], resumed: list[Resume]) -> list[tuple[int, float, float, float]]:
    """Per resumed attempt: (attempt, loss at the checkpoint step before, first loss after, the initial loss)."""
    initial = min(points, key=lambda p: (p.attempt, p.step)).loss if points else None
    jumps = []
    for resume in resumed:
        if not resume.resumed_from or initial is None:
            continue
        before = _loss_at(points, resume.resumed_from, resume.attempt)
        after = next((p.loss for p in points if p.attempt == resume.attempt), None)
        if before is not None and after is not None:
            jumps.append((resume.attempt, before, after, initial))
    return jumps


def replayed_steps(points: list[Point]) -> list[tuple[int, int, float, float]]:
    """Steps trained by two attempts (lost to a fault, trained again from the checkpoint): (step, later attempt,
    first loss, later loss). The same weights and samples give the same loss, up to the reduction order of
    another world size."""
    first: dict[int, Point] = {}
    replays = []
    for point in sorted(points, key=lambda p: (p.attempt, p.step)):
        if point.step in first:
            replays.append((point.step, point.attempt, first[point.step].loss, point.loss))
        else:
            first[point.step] = point
    return replays


def story_checks(status: dict[str, Any], pools: list[str], steps: int, points: list[Point],
                 resumed: list[Resume], in_place: bool = True) -> list[Check]:
    """Did the story of docs/design.md#the-demo-story play out? Judged from the API's status and the runtime's logs."""
    faults = status.get("faults") or []
    by_attempt = {r.attempt: r for r in resumed}
    checks = [
        Check("succeeded", status.get("phase") == "Succeeded", f"phase {status.get('phase')}"),
        Check("two interconnect faults", len(faults) == 2 and all(f.get("class") == "interconnect" for f in faults),
              ", ".join(f"{f.get('class')}/{f.get('reason')}" for f in faults) or "none"),
        Check("restart on the first pool", len(faults) >= 1 and faults[0].get("pool") == pools[0]
              and len(faults) >= 2 and faults[1].get("pool") == pools[0] and faults[1].get("attempt") == 2,
              f"faults on {[f.get('pool') for f in faults]} in attempts {[f.get('attempt') for f in faults]}"),
        Check("the first fault restarted in place" if in_place else "no restart in place",
              ((status.get("inPlaceRestart") or {}).get("attempt") == 2
               and bool((status.get("inPlaceRestart") or {}).get("completedAt"))) == in_place,
              f"status.inPlaceRestart: {status.get('inPlaceRestart')}"),
        Check("failover to the second pool", status.get("pool") == pools[-1] and status.get("failovers") == 1
              and status.get("restarts") == 2 and status.get("attempt") == 3,
              f"pool {status.get('pool')}, attempt {status.get('attempt')}, restarts {status.get('restarts')},"
              f" failovers {status.get('failovers')}"),
    ]
    starts = []
    for fault in faults:
        resume = by_attempt.get(int(fault["attempt"]) + 1)
        ckpt = fault.get("checkpointStep")
        starts.append(resume is not None and bool(ckpt) and resume.resumed_from == ckpt == resume.start_step)
    checks.append(Check("resumed at the checkpoint", len(starts) == 2 and all(starts),
                        "; ".join(f"attempt {r.attempt} from {r.resumed_from}" for r in resumed if r.resumed_from)
                        + f" (checkpoints at the faults: {[f.get('checkpointStep') for f in faults]})"))
    worlds = [r.world for r in resumed]
    batches = {r.global_batch for r in resumed}
    checks.append(Check("another world size, the same global batch", len(set(worlds)) > 1 and len(batches) == 1,
                        ", ".join(f"attempt {r.attempt}: world {r.world} x micro-batch {r.micro_batch} x"
                                  f" accumulation {r.accumulation}" for r in resumed)))
    jumps = loss_jumps(points, resumed)
    continues = len(jumps) == 2 and all(before < initial and after - before <= MAX_JUMP_SHARE * (initial - before)
                                        for _, before, after, initial in jumps)
    checks.append(Check("the loss continues", continues, "; ".join(
        f"attempt {a}: {before:.3f} at the checkpoint -> {after:.3f} (initial {initial:.3f})"
        for a, before, after, initial in jumps) or "no resumed attempt logged a loss"))
    replays = replayed_steps(points)
    worst = max((abs(a - b) / max(abs(a), 1e-12) for _, _, a, b in replays), default=None)
    checks.append(Check("trained-again steps match the first time", worst is not None and worst <= MAX_REPLAY_REL,
                        f"{len(replays)} step(s) trained twice, largest relative loss difference"
                        f" {'n/a' if worst is None else f'{worst:.1e}'}"))
    last = max((p.step for p in points), default=0)
    checks.append(Check("trained to the last step", last == steps, f"last logged step {last} of {steps}"))
    return checks
