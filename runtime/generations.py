"""The supervisor's side of in-place restarts (tandem.in_place), shared by `tandem-train` and `tandem-run` (no
torch): reading the attempt the operator asks for from the pod's labels file, the ready file the readiness probe
reads, the one-line reports, and the environment of the next generation of workers.

A generation is the workers of one attempt inside this pod. A supervisor never runs two: it stops one (and waits
until its processes are gone) before it starts the next, and the next one's rendezvous and fence carry the new
attempt, so a worker of an older generation elsewhere can neither join it nor commit a checkpoint."""

from __future__ import annotations

import signal
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import structlog

from tandem.in_place import (
    POD_LABELS_ENV,
    READY_FILE_ENV,
    WAIT_ENV,
    WAITS_IN_PLACE,
    SupervisorReport,
    attempt_in_labels,
    attempt_token,
)

log = structlog.get_logger("tandem.generations")
POLL_SECONDS = 0.2  # how often the labels file is read while waiting for the operator


@dataclass
class Generations:
    """The pod's in-place restart channels; `from_env` gives None when the pod does not take part."""

    labels: Path
    ready: Path
    wait_seconds: float
    attempt: int
    job_uid: str

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Generations | None:
        labels, ready = env.get(POD_LABELS_ENV, ""), env.get(READY_FILE_ENV, "")
        if not labels or not ready:
            return None
        attempt = env.get("TANDEM_ATTEMPT", "1")
        wait = env.get(WAIT_ENV, "")
        return cls(Path(labels), Path(ready), float(wait) if wait.replace(".", "", 1).isdigit() else 300.0,
                   int(attempt) if attempt.isdigit() else 1, env.get("TANDEM_JOB_UID", ""))

    def asked(self) -> int | None:
        """The attempt the pod's label names now (None: the file cannot be read yet)."""
        try:
            return attempt_in_labels(self.labels.read_text())
        except OSError:
            return None

    def moved_on(self) -> int | None:
        """A newer attempt than the running generation's, when the operator asked for one."""
        asked = self.asked()
        return asked if asked is not None and asked > self.attempt else None

    def set_ready(self, ready: bool) -> None:
        try:
            if ready:
                self.ready.parent.mkdir(parents=True, exist_ok=True)
                self.ready.write_text(f"{self.attempt}\n")
            else:
                self.ready.unlink(missing_ok=True)
        except OSError as exc:  # the probe then says not ready: the operator's deadline decides
            log.warning("ready_file_unwritable", path=str(self.ready), error=str(exc))

    def say(self, state: str, fault: Mapping[str, object] | None = None, step: int | None = None) -> None:
        """One report line on the container's output, which the operator reads (tandem.in_place)."""
        line = SupervisorReport(self.attempt, state, dict(fault) if fault is not None else None, step).line()  # type: ignore[arg-type]
        print(line, file=sys.stdout, flush=True)

    def stepping(self, step: int) -> None:
        """The generation's workers passed their first step: Ready, and the operator is told."""
        self.set_ready(True)  # first: whoever reads the report finds the pod Ready
        self.say("stepping", step=step)

    def wait_for_restart(self, message: Mapping[str, object], stop: threading.Event | None = None) -> int | None:
        """After a fault the operator may answer in place: report it, then wait for a newer attempt on the label.
        None: the class is not one to wait with, the wait ran out, or the pod is being stopped (the caller exits
        with the fault as before, and the operator restarts the gang in full)."""
        if message.get("class") not in WAITS_IN_PLACE:
            return None
        self.set_ready(False)
        self.say("faulted", fault=message)
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline and not (stop is not None and stop.is_set()):
            if (attempt := self.moved_on()) is not None:
                return attempt
            time.sleep(POLL_SECONDS)
        log.warning("in_place_wait_over", attempt=self.attempt, waited_s=self.wait_seconds)
        return None

    def wait_in_place(self, message: Mapping[str, object]) -> int | None:
        """`wait_for_restart` in the supervisor's main thread: a SIGTERM meanwhile (the operator chose a full
        restart and deletes the pod) ends the wait, and the pod then ends with the fault."""
        stop = threading.Event()
        previous = signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
        try:
            return self.wait_for_restart(message, stop)
        finally:
            signal.signal(signal.SIGTERM, previous)

    def next_attempt(self, moved_to: int | None, fault: Mapping[str, object] | None, stopping: bool) -> int | None:
        """The attempt this pod runs next after a generation ended, or None when the pod ends: nothing more once it
        was told to stop (SIGTERM: the operator is deleting it, whatever its workers did next), the newer attempt the
        operator asked for meanwhile, else after a fault (its termination message) what the in-place wait brings."""
        if stopping:
            return None
        if moved_to is not None or fault is None:
            return moved_to
        return self.wait_in_place(fault)

    def begin(self, attempt: int, env: Mapping[str, str]) -> dict[str, str]:
        """The next generation: its attempt, fence token and rendezvous id; reported as `restarting`."""
        self.attempt = attempt
        self.set_ready(False)
        self.say("restarting")
        log.info("in_place_restart", attempt=attempt)
        return next_env(env, attempt, self.job_uid)


def next_env(env: Mapping[str, str], attempt: int, job_uid: str) -> dict[str, str]:
    """The workers' environment for `attempt`: what the operator would give a new pod of it. TORCHELASTIC's run id
    names the attempt, so torchrun's rendezvous keys of one generation never meet another's."""
    out = dict(env)
    out["TANDEM_ATTEMPT"] = str(attempt)
    out["TANDEM_ATTEMPT_TOKEN"] = attempt_token(job_uid, attempt)
    out["PET_RDZV_ID"] = f"{env.get('TANDEM_JOB', 'job')}-a{attempt}"
    return out
