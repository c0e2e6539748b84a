"""`tandem-run [options] -- CMD [ARGS...]` (docs/design.md#tandem-run): supervises any training command in a pod.

It exports the resume point (TANDEM_RESUME_STEP, TANDEM_RESUME_PATH: the newest complete checkpoint under
TANDEM_CHECKPOINT_DIR, tandem.runtime.resume_point), runs the command in its own process group with its output
passed through unchanged, watches its progress from outside (a progress line, or no progress for the timeout:
the process group is ended and a hang reported), forwards SIGTERM and kills after a grace period, and on any
exit writes the pod contract's termination message: the class from the whole output stream and the exit status
(the shared fault table, tandem.faults), the last step seen, the newest complete checkpoint and where it resumed
from. No torch: it supervises any command.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

import structlog

from tandem.faults import read_log
from tandem.faults.signatures import matching
from tandem.runtime import process_tree, recovery
from tandem.runtime.faults import Fault, FaultError, classify_exit, dumps, exit_code, termination_message
from tandem.runtime.fence import fence_from_env
from tandem.runtime.generations import Generations
from tandem.runtime.inject_site import INJECT_SITE, PROGRESS_REGEX_ENV
from tandem.runtime.resume_point import LAYOUTS, ResumePoint, find_resume_point
from tandem.runtime.run_metrics import serve_metrics
from tandem.runtime.timeouts import for_environment
from tandem.sdk import FAULT_DIR_ENV, PROGRESS_FILE_ENV

# What a training loop prints as it goes: `step 12`, `step=12`, `step: 12`, Megatron's `iteration 12/ 1000`, and the
# progress bar of the Hugging Face Trainer (tqdm: `| 12/1000 [`).
DEFAULT_PROGRESS = re.compile(r"\bstep[ =:]\s*(\d+)|\biteration\s+(\d+)\s*/|\|\s*(\d+)/\d+\s*\[", re.IGNORECASE)
log = structlog.get_logger("tandem.run")
TAIL_LINES = 5000  # the end of the stream, kept whole
EARLY_EVIDENCE = 2000  # lines before that which name a fault (a table entry, a Python exception) are kept too
_EXCEPTION = re.compile(r"^\s*(?:\[rank\d+\]:\s*)?(?:Traceback \(most recent call last\)|[\w.]*(?:Error|Exception):)")


def progress_step(pattern: re.Pattern[str], line: str) -> int | None:
    """The step a progress line names (the pattern's first group that matched), else None."""
    match = pattern.search(line)
    return next((int(g) for g in match.groups() if g is not None), None) if match else None


@dataclass
class Stream:
    """What the supervisor has seen of the command's output: the progress and the evidence of a fault."""

    progress: re.Pattern[str] = DEFAULT_PROGRESS
    tail: deque[str] = field(default_factory=lambda: deque(maxlen=TAIL_LINES))
    early: deque[str] = field(default_factory=lambda: deque(maxlen=EARLY_EVIDENCE))
    last_step: int | None = None
    last_progress: float | None = None  # monotonic time of the last progress line
    metrics: dict[str, float] = field(default_factory=dict)  # the numbers of the SDK's last heartbeat
    lock: threading.Lock = field(default_factory=threading.Lock)

    def feed(self, line: str, now: float) -> None:
        with self.lock:
            if len(self.tail) == self.tail.maxlen:
                dropped = self.tail[0]
                if matching(dropped) or _EXCEPTION.match(dropped):
                    self.early.append(dropped)
            self.tail.append(line)
            step = progress_step(self.progress, line)
            if step is not None:
                self.last_step, self.last_progress = step, now

    def heartbeat(self, path: str, now: float) -> None:
        """Read the SDK's heartbeat file (tandem.sdk.progress): a new step there is progress, like a line."""
        try:
            record = json.loads(Path(path).read_text())
        except (OSError, ValueError):
            return
        step = record.get("step") if isinstance(record, dict) else None
        if isinstance(step, int) and not isinstance(step, bool):
            numbers = record.get("metrics") if isinstance(record.get("metrics"), dict) else {}
            with self.lock:
                if step != self.last_step or self.last_progress is None:
                    self.last_step, self.last_progress = step, now
                self.metrics = {k: float(v) for k, v in numbers.items()
                                if isinstance(k, str) and isinstance(v, int | float) and not isinstance(v, bool)}

    def text(self) -> str:
        with self.lock:
            return "\n".join([*self.early, *self.tail])


def _pump(source: IO[bytes], sink: IO[str], stream: Stream) -> None:
    """Pass the command's output through unchanged, line by line, and let the supervisor read it."""
    for raw in iter(source.readline, b""):
        line = raw.decode("utf-8", errors="replace")
        sink.write(line)
        sink.flush()
        stream.feed(line.rstrip("\n"), time.monotonic())


@dataclass(frozen=True)
class Options:
    command: list[str]
    checkpoint_layout: str = "auto"
    progress: re.Pattern[str] = DEFAULT_PROGRESS
    progress_timeout: float | None = None  # seconds without progress after the first step
    startup_timeout: float | None = None  # seconds before the first step (set-up, checkpoint loading)
    grace: float = 30.0  # SIGTERM, then this long, then SIGKILL
    metrics_port: int | None = None  # serve the progress as Prometheus text on this port
    inject_faults: bool = False  # fire TANDEM_FAULT_INJECT at the command's progress lines (demos and tests)


@dataclass
class Outcome:
    returncode: int
    hang: str | None = None  # why the supervisor ended the command
    terminated: bool = False  # the pod was told to stop (SIGTERM)
    moved_to: int | None = None  # the operator asked for a newer attempt in this pod: the command was stopped


def _stop(proc: subprocess.Popen[bytes], grace: float) -> None:
    """SIGTERM the command's process group, then SIGKILL it after `grace` seconds (SIGCONT after SIGTERM: a
    stopped process handles nothing until it continues); then SIGKILL what is left of the command's whole tree, as
    it was before the first signal (torchrun's workers run in sessions of their own: tandem.runtime.process_tree)."""
    everything = process_tree.tree(proc.pid)
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, None)):
        try:
            os.killpg(proc.pid, sig)
            if sig == signal.SIGTERM:
                os.killpg(proc.pid, signal.SIGCONT)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait)
            break
        except subprocess.TimeoutExpired:
            continue
    left = process_tree.end(everything)
    if left:
        log.warning("command_leftovers_killed", pids=left, grace=grace,
                    reason="processes of the command outside its process group still ran after it ended")


def _hang(stream: Stream, options: Options, started: float, now: float) -> str | None:
    with stream.lock:
        step, last = stream.last_step, stream.last_progress
        said = f"; its last line: {stream.tail[-1][:200]!r}" if stream.tail else "; it printed nothing"
    if step is None:
        if options.startup_timeout and now - started > options.startup_timeout:
            return (f"no training step within {options.startup_timeout:.0f} s of the start (set-up, checkpoint "
                    f"loading){said}")
        return None
    if options.progress_timeout and last is not None and now - last > options.progress_timeout:
        return f"no progress for {options.progress_timeout:.0f} s after step {step}{said}"
    return None


def _follow_generation(gens: Generations, stream: Stream, outcome: Outcome, proc: subprocess.Popen[bytes],
                       stepped: bool) -> bool:
    """In a pod that takes part in in-place restarts: Ready once the command makes progress; a newer attempt on
    the pod's label stops it (quickly: its gang is being restarted). Returns whether it has stepped."""
    if not stepped and stream.last_step is not None:
        gens.stepping(stream.last_step)
        stepped = True
    if outcome.moved_to is None and (asked := gens.moved_on()) is not None:
        outcome.moved_to = asked
        threading.Thread(target=_stop, args=(proc, STOP_FOR_RESTART_SECONDS), daemon=True).start()
    return stepped


STOP_FOR_RESTART_SECONDS = 3.0  # the grace of a command stopped for an in-place restart (its collectives are stuck)


def supervise(options: Options, env: Mapping[str, str], stream: Stream, poll: float = 0.2,
              gens: Generations | None = None) -> Outcome:
    heartbeat = env.get(PROGRESS_FILE_ENV, "")
    outcome = Outcome(returncode=0)
    proc: subprocess.Popen[bytes] | None = None

    def terminate(signum: int, frame: object) -> None:
        outcome.terminated = True
        if proc is not None:  # else it is stopped as soon as it has started
            threading.Thread(target=_stop, args=(proc, options.grace), daemon=True).start()

    # In place before the command starts: a SIGTERM in between would otherwise end tandem-run with no message.
    previous = signal.signal(signal.SIGTERM, terminate)
    try:
        proc = subprocess.Popen(options.command, env=dict(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except BaseException:
        signal.signal(signal.SIGTERM, previous)
        raise
    if outcome.terminated:
        threading.Thread(target=_stop, args=(proc, options.grace), daemon=True).start()
    pumps = [threading.Thread(target=_pump, args=(proc.stdout, sys.stdout, stream), daemon=True),
             threading.Thread(target=_pump, args=(proc.stderr, sys.stderr, stream), daemon=True)]
    for pump in pumps:
        pump.start()
    started, stepped = time.monotonic(), False
    try:
        while proc.poll() is None:
            if heartbeat:
                stream.heartbeat(heartbeat, time.monotonic())
            if gens is not None:
                stepped = _follow_generation(gens, stream, outcome, proc, stepped)
            hang = None if outcome.terminated or outcome.moved_to else _hang(stream, options, started, time.monotonic())
            if hang:
                outcome.hang = hang
                _stop(proc, options.grace)
                break
            time.sleep(poll)
        outcome.returncode = proc.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)
    for pump in pumps:
        pump.join(timeout=5)
    if gens is not None:  # a command quicker than one poll: its progress and the label are read once more
        _follow_generation(gens, stream, outcome, proc, stepped)
    return outcome


def sdk_faults(folder: Path) -> list[Fault]:
    """The Tandem faults that ended ranks of the command (tandem.sdk leaves one per process), earliest first."""
    found = []
    for path in sorted(folder.glob("fault-*.json")) if folder.is_dir() else []:
        try:
            record = json.loads(path.read_text())
            found.append(Fault(record["class"], str(record["reason"]), str(record["message"]),
                               rank=int(record["rank"]), time=float(record["time"])))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a torn or foreign file: the stream still tells
    return sorted(found, key=lambda fault: fault.time or 0.0)


def fault_of(outcome: Outcome, stream: Stream, reported: list[Fault] | None = None) -> Fault | None:
    """The command's fault: a hang the supervisor ended; else the earliest Tandem fault a rank reported through
    tandem.sdk (its class is explicit); else what the whole stream says (the shared table); else how it exited.
    None when it finished."""
    if outcome.hang:
        return Fault("unknown", "NoProgress", outcome.hang, step=stream.last_step)
    if outcome.terminated:  # even with exit code 0: a script that saves and exits when told to stop has not finished
        return Fault("node", "Terminated", f"the pod was stopped (SIGTERM); the command ended with code "
                     f"{outcome.returncode}", step=stream.last_step)
    if outcome.returncode == 0:
        return None
    if reported:
        return replace(reported[0], step=stream.last_step, time=None)
    reading = read_log(stream.text())
    if reading is not None:
        return Fault(reading.fault_class.value, reading.reason, reading.message, step=stream.last_step)
    if outcome.returncode < 0:  # a signal: what it means on its own (SIGKILL is not proof of an OOM)
        cls, reason, message = classify_exit(outcome.returncode)
        return Fault(cls, reason, message.replace("worker", "the command"), step=stream.last_step)
    # The command's own exit code names no class: only tandem-train's codes do.
    return Fault("unknown", "ExitCode", f"the command exited with code {outcome.returncode} and its output names no"
                 " fault", step=stream.last_step)


def claim_volume(root: str | None, env: Mapping[str, str]) -> None:
    """Node 0 claims the checkpoint volume for this attempt (the attempt fence, as tandem-train's launcher does), so
    an older attempt still running elsewhere can no longer commit or delete there (tandem.sdk's Checkpointer checks
    the fence), and sets aside the unfinished saves of older attempts. Outside a Tandem pod (no TANDEM_ATTEMPT) it
    does nothing. Raises the `Fenced` fault when a newer attempt holds the volume already."""
    attempt = env.get("TANDEM_ATTEMPT", "")
    if not root or not attempt.isdigit() or env.get("TANDEM_NODE_RANK", "0") != "0" or not Path(root).is_dir():
        return
    guard = fence_from_env(root, env)
    guard.acquire()
    recovery.sweep_partials(Path(root), guard)


def run(options: Options, env: Mapping[str, str]) -> int:
    """Supervise the command; in a pod that takes part in in-place restarts (tandem.in_place), once per attempt the
    operator starts in it: after an interconnect or unknown fault the pod stays and waits to be asked."""
    gens = Generations.from_env(env)
    attempt_env = dict(env)
    while True:
        fault, step, start, outcome = _attempt(options, attempt_env, gens)
        moved_to = None
        if gens is not None:
            message = _message(fault, step, start, options, attempt_env) if fault is not None else None
            moved_to = gens.next_attempt(outcome.moved_to if outcome else None, message,
                                         outcome is not None and outcome.terminated)
        if moved_to is None or gens is None:
            return _report(fault, step, start, options, attempt_env)
        attempt_env = gens.begin(moved_to, env)


def _attempt(options: Options, env: Mapping[str, str],
             gens: Generations | None) -> tuple[Fault | None, int | None, ResumePoint | None, Outcome | None]:
    """One run of the command: (its fault, its last step, where it resumed, how it ended; None when it never
    started)."""
    root = env.get("TANDEM_CHECKPOINT_DIR")
    try:
        claim_volume(root, env)
        start = find_resume_point(root, options.checkpoint_layout)  # a volume that fails to read: storage
    except FaultError as error:
        return Fault(error.cls, error.reason, str(error)), None, None, None
    child = {**env, "TANDEM_RESUME_STEP": str(start.step) if start else "",
             "TANDEM_RESUME_PATH": start.path if start else ""}
    if options.inject_faults:  # every Python process of the command loads the injector (tandem.runtime.inject_site)
        child["PYTHONPATH"] = os.pathsep.join(p for p in (str(INJECT_SITE), env.get("PYTHONPATH", "")) if p)
        child[PROGRESS_REGEX_ENV] = options.progress.pattern
    if options.progress_timeout:  # the vendors' own timeouts stay behind the supervisor's deadline
        child.update(for_environment(env.get("TANDEM_ACCELERATOR", "cpu"), options.progress_timeout, env).env)
    stream = Stream(progress=options.progress)
    server = serve_metrics(stream, options.metrics_port) if options.metrics_port is not None else None
    try:
        with tempfile.TemporaryDirectory(prefix="tandem-run-") as folder:
            child[PROGRESS_FILE_ENV] = os.path.join(folder, "progress.json")  # tandem.sdk.progress writes it
            child[FAULT_DIR_ENV] = os.path.join(folder, "faults")  # and its excepthook a rank's Tandem fault
            os.mkdir(child[FAULT_DIR_ENV])
            outcome = supervise(options, child, stream, gens=gens)
            stream.heartbeat(child[PROGRESS_FILE_ENV], time.monotonic())
            reported = sdk_faults(Path(child[FAULT_DIR_ENV]))
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
    return fault_of(outcome, stream, reported), stream.last_step, start, outcome


def _message(fault: Fault | None, step: int | None, start: ResumePoint | None, options: Options,
             env: Mapping[str, str]) -> dict[str, Any]:
    """The pod contract's termination message for this run of the command."""
    try:
        newest = find_resume_point(env.get("TANDEM_CHECKPOINT_DIR"), options.checkpoint_layout)
    except FaultError:  # only a figure in the message: the fault it reports speaks for itself
        newest = None
    return termination_message(fault, step=step, checkpoint_step=newest.step if newest else None,
                               resumed_from=start.step if start else None, finished=fault is None)


def _report(fault: Fault | None, step: int | None, start: ResumePoint | None, options: Options,
            env: Mapping[str, str]) -> int:
    """Write the termination message of the pod contract; return the exit code that goes with it."""
    message = _message(fault, step, start, options, env)
    path = env.get("TANDEM_TERMINATION_LOG") or "/dev/termination-log"
    try:
        with open(path, "w") as out:
            out.write(dumps(message))
    except OSError as error:
        print(f"tandem-run: cannot write the termination message to {path}: {error}", file=sys.stderr)
    return exit_code(message) if fault is not None else 0


def _regex(value: str) -> re.Pattern[str]:
    try:
        pattern = re.compile(value)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"--progress-regex: {error}") from error
    if pattern.groups != 1:
        raise argparse.ArgumentTypeError("--progress-regex needs exactly one group: the step")
    return pattern


def parse(argv: Sequence[str]) -> Options:
    parser = argparse.ArgumentParser(prog="tandem-run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint-layout", default="auto", choices=["auto", *LAYOUTS],
                        help="where to look for the newest complete checkpoint (default: auto, every layout)")
    parser.add_argument("--progress-regex", type=_regex, default=DEFAULT_PROGRESS,
                        help="a line that shows progress, with one group for the step")
    parser.add_argument("--progress-timeout", type=float, default=None, metavar="SECONDS",
                        help="end the command and report a hang after this long without progress")
    parser.add_argument("--startup-timeout", type=float, default=None, metavar="SECONDS",
                        help="the same before the first step (set-up and checkpoint loading take longer)")
    parser.add_argument("--grace", type=float, default=30.0, metavar="SECONDS",
                        help="between SIGTERM and SIGKILL when the command is stopped (default: 30)")
    parser.add_argument("--metrics-port", type=int, default=None, metavar="PORT",
                        help="serve the progress (step, seconds since progress, tandem.sdk.progress numbers) as "
                             "Prometheus text on /metrics")
    parser.add_argument("--inject-faults", action="store_true",
                        help="fire TANDEM_FAULT_INJECT in the command's Python processes when they print a progress "
                             "line (demos and tests of scripts that do not use tandem.sdk)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD [ARGS...]")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("a command is needed: tandem-run [options] -- CMD [ARGS...]")
    return Options(command, args.checkpoint_layout, args.progress_regex, args.progress_timeout,
                   args.startup_timeout, args.grace, args.metrics_port, args.inject_faults)


def _seconds(env: Mapping[str, str], name: str) -> float | None:
    try:
        value = float(env.get(name) or "")
    except ValueError:
        return None
    return value if value > 0 else None


def with_job_deadlines(options: Options, env: Mapping[str, str]) -> Options:
    """The job's faultPolicy deadlines (the pod contract's TANDEM_PROGRESS_TIMEOUT_SECONDS and
    TANDEM_STARTUP_TIMEOUT_SECONDS) where the command line sets none."""
    return replace(options,
                   progress_timeout=options.progress_timeout or _seconds(env, "TANDEM_PROGRESS_TIMEOUT_SECONDS"),
                   startup_timeout=options.startup_timeout or _seconds(env, "TANDEM_STARTUP_TIMEOUT_SECONDS"))


def main(argv: Sequence[str] | None = None) -> int:
    return run(with_job_deadlines(parse(sys.argv[1:] if argv is None else argv), os.environ), os.environ)


if __name__ == "__main__":
    sys.exit(main())
