"""`tandem-train`: the pod's entry point (docs/design.md#pod-contract, docs/design.md#runtime).

Reads the pod contract, validates the training config, builds the token file, picks the checkpoint to
resume, starts one worker per device, supervises them (one fails -> the others are stopped at once),
and on every exit writes one JSON termination message and exits with the code of its fault class.
It never imports torch: a bad config is refused in milliseconds, and a broken torch is still reported.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from tandem.runtime import ckpt_layout, logs, recovery
from tandem.runtime.config import Contract, contract_from_env
from tandem.runtime.data import build_token_file
from tandem.runtime.faults import Fault, FaultError, classify_exception, classify_exit, dumps, exit_code, root_cause
from tandem.runtime.faults import termination_message as make_message
from tandem.runtime.fence import Fence
from tandem.runtime.generations import Generations
from tandem.runtime.inject import parse_inject
from tandem.runtime.plan import batch_plan
from tandem.runtime.timeouts import for_environment
from tandem.runtime.warm import WORKER, WarmPool
from tandem.runtime.worker import report_path
from tandem.sdk import PROGRESS_FILE_ENV

log = structlog.get_logger("tandem.launcher")


@dataclass(frozen=True)
class Exit:
    local_rank: int
    rank: int
    returncode: int
    at: float
    killed_by_us: bool


def prepare(contract: Contract, attempt_token: str = "") -> tuple[Path, int | None]:
    """Everything decided before a worker starts: the fence, the token file and the checkpoint to resume."""
    cfg = contract.training
    parse_inject(contract.fault_inject)
    batch_plan(cfg.global_batch, contract.world_size, cfg.micro_batch)
    root = checkpoint_root(contract.checkpoint_dir)
    guard = Fence(root, contract.attempt, attempt_token, contract.job_uid)
    if contract.node_rank == 0:
        guard.acquire()  # before anything else touches the volume: older attempts can no longer commit
    else:
        guard.check("start")
    token_file = build_token_file(cfg.data, root / "data")
    chosen = choose_checkpoint(contract, root, guard)
    log.info("resume_choice", step=chosen.step if chosen else None)
    mine = contract.provenance()
    foreign = ckpt_layout.foreign_because(chosen.manifest if chosen else None, mine["job"], mine["jobUid"],
                                          contract.config_fingerprints())
    if chosen and foreign:  # said before any worker loads it: the operator posts it as a Warning Event
        log.warning(ckpt_layout.FOREIGN_EVENT, step=chosen.step, reasons="; ".join(foreign))
    return token_file, chosen.step if chosen else None


def checkpoint_root(checkpoint_dir: str) -> Path:
    """The checkpoint folder. An absolute TANDEM_CHECKPOINT_DIR is where the volume is mounted (the operator
    mounts it at checkpoint.path): it must exist, or the mount failed and the run would silently write to the
    container's own disk: storage/VolumeMissing. A relative one (local runs) is created."""
    root = Path(checkpoint_dir)
    if not root.is_absolute():
        root.mkdir(parents=True, exist_ok=True)
        return root
    try:
        mode = root.stat().st_mode  # any other OSError (EIO, ESTALE) propagates: a storage fault of its own
    except FileNotFoundError as exc:
        above = "exists" if root.parent.is_dir() else "does not exist either"
        raise FaultError(
            "storage",
            "VolumeMissing",
            f"checkpoint volume {root} does not exist ({root.parent} {above}): the volume is not mounted; an "
            "absolute TANDEM_CHECKPOINT_DIR is never created (for a local run, create the folder first)",
        ) from exc
    if not stat.S_ISDIR(mode):
        raise FaultError("user", "InvalidEnvironment", f"TANDEM_CHECKPOINT_DIR={root} is not a folder")
    return root


def choose_checkpoint(contract: Contract, root: Path, guard: Fence) -> ckpt_layout.Entry | None:
    """Node 0 verifies newest first, sets broken ones aside and applies retention; rank 0's choice is
    the one every rank resumes (train.Trainer.agree_on_resume), so other nodes only look."""
    if contract.node_rank != 0:
        return ckpt_layout.choose_resume(ckpt_layout.scan(root))
    recovery.sweep_partials(root, guard)
    chosen = recovery.choose(root, guard, recovery.on_unreadable(contract.training))
    recovery.retain(root, contract.checkpoint_keep, guard)
    return chosen


def worker_env(contract: Contract, env: Mapping[str, str], local_rank: int) -> dict[str, str]:
    rank = contract.node_rank * contract.devices_per_node + local_rank
    return {
        **env,
        **for_environment(contract.accelerator, contract.training.watchdog_seconds, env).env,
        "RANK": str(rank),
        "LOCAL_RANK": str(local_rank),
        "WORLD_SIZE": str(contract.world_size),
        "LOCAL_WORLD_SIZE": str(contract.devices_per_node),
        "MASTER_ADDR": contract.master_addr,
        "MASTER_PORT": str(contract.master_port),
        "PYTHONUNBUFFERED": "1",
    }


@dataclass
class Generation:
    """What one generation of workers in this pod did: every worker's exit, the newer attempt the operator
    asked for while it ran (its workers were then stopped, not failed), and whether the pod was told to stop
    (SIGTERM: its workers were asked to save and stop, and the pod must end, not wait for an in-place restart)."""

    exits: list[Exit]
    moved_to: int | None = None
    terminated: bool = False


def _start_worker(local: int, args: list[str], env: dict[str, str], warm: WarmPool | None) -> subprocess.Popen[bytes]:
    proc = warm.start(local, args, env) if warm is not None else None
    return proc or subprocess.Popen([*WORKER, *args], env=env)


def supervise(
    contract: Contract, env: Mapping[str, str], token_file: Path, resume: int | None, report_dir: Path,
    gens: Generations | None = None, warm: WarmPool | None = None,
) -> Generation:
    """Run the workers until all exited; the first failure stops the rest at once (SIGKILL). In a pod that takes
    part in in-place restarts (`gens`), also: past the first step, Ready and a `stepping` report, and standbys for
    the next generation; a newer attempt on the pod's label stops the workers (they belong to an attempt that is
    over)."""
    progress = report_dir / "progress.json"  # tandem.sdk.progress, from every rank
    progress.unlink(missing_ok=True)
    args = ["--report-dir", str(report_dir), "--token-file", str(token_file),
            "--resume-step", str(-1 if resume is None else resume)]
    procs: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}
    warmed = 0
    for local in range(contract.devices_per_node):
        worker = {**worker_env(contract, env, local), PROGRESS_FILE_ENV: str(progress)}
        proc = _start_worker(local, args, worker, warm)
        warmed += proc.args[-1] == "--standby"  # a standby's own command line: it imported torch already
        procs[proc.pid] = (local, proc)
    log.info("workers_started", attempt=contract.attempt, workers=len(procs), warm=warmed)
    generation = Generation([])

    def forward(signum: int, frame: object) -> None:
        # The kubelet's SIGTERM: the workers finish the step, save a checkpoint, and stop.
        generation.terminated = True
        for _, proc in procs.values():
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    killed: set[int] = set()
    stepped = gens is None

    def stop_all() -> None:
        for other_pid, (_, other) in procs.items():
            if other.returncode is None and other_pid not in killed:
                killed.add(other_pid)
                other.kill()

    try:
        while len(generation.exits) < len(procs):
            # Each worker's own Popen is polled (never a wait for any child: the standbys are children too, and a
            # Popen reaps its process itself when it is signalled).
            seen = {e.local_rank for e in generation.exits}
            ended = [(pid, local, proc) for pid, (local, proc) in procs.items()
                     if local not in seen and proc.poll() is not None]
            for pid, local, proc in ended:
                rank = contract.node_rank * contract.devices_per_node + local
                generation.exits.append(Exit(local, rank, int(proc.returncode), time.time(), pid in killed))
                if proc.returncode != 0 and not generation.terminated:
                    stop_all()
                    if killed:
                        log.warning("workers_stopped", after_rank=rank, returncode=proc.returncode,
                                    stopped=len(killed))
            if gens is not None:
                if not stepped and (step := _first_step(progress, resume)) is not None:
                    stepped = True
                    gens.stepping(step)
                    if warm is not None:
                        warm.prepare(range(contract.devices_per_node), lambda lr: worker_env(contract, env, lr))
                if generation.moved_to is None and (asked := gens.moved_on()) is not None:
                    generation.moved_to = asked
                    log.warning("workers_stopped_for_new_attempt", attempt=asked)
                    stop_all()
            if not ended:
                time.sleep(GENERATION_POLL_SECONDS)
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    return generation


GENERATION_POLL_SECONDS = 0.05


def _first_step(progress: Path, resume: int | None) -> int | None:
    """The step a worker reported through tandem.sdk.progress, once it is past where the generation resumed."""
    try:
        step = int(json.loads(progress.read_text())["step"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return step if step > (resume or 0) else None


# The pod's memory cgroup: cgroup v2 counts OOM kills in memory.events, v1 in memory.oom_control.
CGROUP_ROOT = Path("/sys/fs/cgroup")


def oom_kills(root: Path = CGROUP_ROOT) -> int | None:
    """How many processes the kernel's OOM killer has killed in this container's memory cgroup; None when the
    count cannot be read (no cgroup file system, another layout)."""
    for path in (root / "memory.events", root / "memory" / "memory.oom_control"):
        try:
            text = path.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
    return None


def collect(
    exits: list[Exit], report_dir: Path, resume: int | None = None, oom_killed: bool = False
) -> tuple[list[Fault], int | None, int | None, bool]:
    """Faults of every rank (reports, or the exit status of a rank that left none), the last step, the
    checkpoint the ranks resumed from (`resume`, the launcher's choice, unless a report says: a rejected
    checkpoint falls back to an older one or, with checkpoint.onUnreadable=scratch, to None) and whether
    every rank finished. `oom_killed`: the OOM killer struck in the pod's memory cgroup while the workers ran,
    so a worker that died of SIGKILL was its victim."""
    faults: list[Fault] = []
    steps: list[int] = []
    resumed, told = resume, False
    for ex in exits:
        path = report_path(report_dir, ex.rank)
        if path.exists():
            data = json.loads(path.read_text())
            fault = Fault.from_json(data)
            if "resumedFrom" in data and not told:
                resumed, told = data["resumedFrom"], True
        elif ex.killed_by_us:
            continue  # stopped because another rank failed: not a fault of its own
        else:
            cls, reason, message = classify_exit(ex.returncode, oom_killed=oom_killed)
            fault = Fault(cls, reason, message, rank=ex.rank, time=ex.at)
        faults.append(fault)
        if fault.step is not None:
            steps.append(fault.step)
    finished = bool(exits) and all(ex.returncode == 0 for ex in exits) and all(f.cls == "none" for f in faults)
    return faults, max(steps) if steps else None, resumed, finished


def write_termination(path: str, message: dict[str, object]) -> None:
    text = dumps(message)
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as exc:
        log.warning("termination_log_unwritable", path=path, error=str(exc))
    log.info("terminated", **{k: v for k, v in message.items() if k != "message"}, detail=message["message"])


def run(env: Mapping[str, str]) -> int:
    term_path = env.get("TANDEM_TERMINATION_LOG") or "/dev/termination-log"
    contract: Contract | None = None
    resume: int | None = None
    gens = Generations.from_env(env)
    warm = WarmPool() if gens is not None else None

    def interrupted(signum: int, frame: object) -> None:
        raise FaultError("node", "Terminated", f"launcher received {signal.Signals(signum).name} before training")

    signal.signal(signal.SIGTERM, interrupted)
    attempt_env = dict(env)
    try:
        while True:  # one generation of workers per attempt this pod takes part in (tandem.in_place)
            contract = contract_from_env(attempt_env)
            term_path = contract.termination_log
            message, generation, resume = _generation(contract, attempt_env, gens, warm)
            fault = message if message["class"] != "none" else None
            moved_to = gens.next_attempt(generation.moved_to, fault, generation.terminated) if gens else None
            if moved_to is None or gens is None:
                break
            attempt_env = gens.begin(moved_to, env)
    except BaseException as exc:  # the launcher itself failed: still exactly one message
        cls, reason, text = classify_exception(exc, contract.checkpoint_dir if contract else None)
        if not isinstance(exc, Exception):
            cls, reason, text = "node", "Terminated", f"launcher interrupted: {type(exc).__name__}"
        checkpoint = ckpt_layout.newest_complete_step(contract.checkpoint_dir) if contract else None
        message = make_message(
            Fault(cls, reason, text), step=None, checkpoint_step=checkpoint, resumed_from=resume, finished=False
        )
    finally:
        if warm is not None:
            warm.close()
    write_termination(term_path, message)
    return exit_code(message)


def _generation(contract: Contract, env: Mapping[str, str], gens: Generations | None,
                warm: WarmPool | None) -> tuple[dict[str, Any], Generation, int | None]:
    """One attempt's workers in this pod: (the termination message they would leave, what the generation did,
    the checkpoint they resumed from)."""
    token_file, resume = prepare(contract, env.get("TANDEM_ATTEMPT_TOKEN", ""))
    with tempfile.TemporaryDirectory(prefix="tandem-reports-") as tmp:
        kills_before = oom_kills()
        generation = supervise(contract, env, token_file, resume, Path(tmp), gens, warm)
        kills_after = oom_kills()
        oom_killed = kills_before is not None and kills_after is not None and kills_after > kills_before
        faults, step, resumed, finished = collect(generation.exits, Path(tmp), resume, oom_killed)
    message = make_message(
        root_cause(faults),
        step=step,
        checkpoint_step=ckpt_layout.newest_complete_step(contract.checkpoint_dir),
        resumed_from=resumed,
        finished=finished,
    )
    return message, generation, resumed


def main() -> None:
    logs.configure(
        os.environ.get("TANDEM_LOG_FORMAT", "kv"),
        component="launcher",
        node_rank=os.environ.get("TANDEM_NODE_RANK", "0"),
    )
    sys.exit(run(os.environ))


if __name__ == "__main__":
    main()
