"""One worker process (one rank): run the loop, and on any exit leave a report for the launcher.

Started by the launcher as `python -m tandem.runtime.worker`; RANK, LOCAL_RANK, WORLD_SIZE and
LOCAL_WORLD_SIZE come from the launcher, everything else from the pod contract.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from tandem.runtime import logs
from tandem.runtime.faults import EXIT_CODES, Fault, classify_exception
from tandem.runtime.watchdog import Beat, Watchdog

if TYPE_CHECKING:
    from tandem.runtime.train import Progress

log = structlog.get_logger("tandem.worker")


def report_path(folder: str | Path, rank: int) -> Path:
    return Path(folder) / f"rank-{rank}.json"


class Reporter:
    def __init__(self, folder: Path, rank: int) -> None:
        self.folder = folder
        self.rank = rank
        self.resume: dict[str, int | None] = {}  # {"resumedFrom": step or None} once the trainer decided

    def follow(self, progress: Progress) -> None:
        """Report the checkpoint this rank resumed from, once it is known (None: it trained from step 0);
        a rank that failed before it knew leaves the launcher's choice standing."""
        self.resume = {"resumedFrom": progress.resumed_from} if progress.resume_decided else {}

    def write(self, fault: Fault) -> None:
        path = report_path(self.folder, self.rank)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({**fault.to_json(), **self.resume}))
        os.replace(tmp, path)


def _exit(code: int) -> None:
    # os._exit: a hung collective's threads or a wedged process-group destructor must not keep a
    # failed worker alive; everything worth keeping is already in the report.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="tandem.runtime.worker")
    parser.add_argument("--report-dir", required=True, type=Path)
    parser.add_argument("--token-file", required=True, type=Path)
    parser.add_argument("--resume-step", type=int, default=-1)
    args = parser.parse_args(argv)
    rank = int(os.environ["RANK"])
    reporter = Reporter(args.report_dir, rank)
    logs.configure(os.environ.get("TANDEM_LOG_FORMAT", "kv"), rank=rank)

    # Imported after the reporter exists: a broken torch install is reported, not just printed.
    from tandem.runtime.config import contract_from_env
    from tandem.runtime.train import Progress, Ranks, Trainer

    progress = Progress()

    def on_sigterm(signum: int, frame: object) -> None:
        # Not an exit: the loop finishes the step, every rank agrees, saves, then stops.
        progress.stop_requested = True

    def on_hang(beat: Beat, idle: float) -> None:
        fault = Fault(
            "interconnect",
            "CollectiveHang",
            f"no progress for {idle:.1f}s in phase {beat.phase!r} of step {beat.step} "
            f"(watchdogSeconds={watchdog_seconds:g}): a collective or a peer is stuck",
            rank=rank,
            step=beat.step or progress.step,
            time=beat.wall,
        )
        reporter.follow(progress)
        reporter.write(fault)
        log.error("collective_hang", step=fault.step, phase=beat.phase, idle_s=round(idle, 2))
        _exit(EXIT_CODES["interconnect"])

    signal.signal(signal.SIGTERM, on_sigterm)
    watchdog_seconds = 0.0
    checkpoint_dir: str | None = None  # an I/O error or a missing folder there is a storage fault
    try:
        contract = contract_from_env(os.environ)
        checkpoint_dir = contract.checkpoint_dir
        watchdog_seconds = contract.training.watchdog_seconds
        ranks = Ranks(
            rank, int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"]), int(os.environ["LOCAL_WORLD_SIZE"])
        )
        watchdog = Watchdog(watchdog_seconds, on_hang).start()
        trainer = Trainer(contract, ranks, args.token_file, progress, watchdog)
        trainer.run(None if args.resume_step < 0 else args.resume_step)
        reporter.follow(progress)
        reporter.write(
            Fault(
                "none", "Completed", f"trained to step {progress.step}", rank=rank, step=progress.step, time=time.time()
            )
        )
        watchdog.stop()
        _exit(0)
    except BaseException as exc:
        cls, reason, message = classify_exception(exc, checkpoint_dir)
        reporter.follow(progress)
        reporter.write(Fault(cls, reason, message, rank=rank, step=progress.step, time=time.time()))
        log.error("worker_fault", fault_class=cls, reason=reason, step=progress.step, error=message[:200])
        traceback.print_exc()
        _exit(EXIT_CODES.get(cls, EXIT_CODES["unknown"]))


def standby() -> None:
    """A warm worker (tandem.runtime.warm): import what every worker imports, then wait for the launcher's order."""
    from tandem.runtime.warm import wait_for_orders, warm_up

    warm_up()
    order = wait_for_orders()
    if order is None:
        _exit(0)
        return
    argv, env = order
    os.environ.clear()
    os.environ.update(env)
    main(argv)


if __name__ == "__main__":
    if sys.argv[1:] == ["--standby"]:
        standby()
    else:
        main()
