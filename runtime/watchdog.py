"""The hang watchdog: a step or collective without progress for `watchdogSeconds` ends the run.

A hung collective never raises: the vendor timeouts (HCCL_EXEC_TIMEOUT defaults to 30 minutes, the
process-group timeout to 10-30) leave a job burning its devices. The training loop beats at every
phase change; a thread checks the beats and, past the deadline, calls `on_hang`, which reports
`interconnect` / `CollectiveHang` and ends the process (a thread cannot interrupt a blocked collective).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Beat:
    phase: str
    step: int
    at: float  # time.monotonic()
    wall: float  # time.time(), for reports compared across processes


def overdue(beat: Beat, now: float, timeout: float) -> bool:
    return now - beat.at > timeout


def check_interval(timeout: float) -> float:
    """Checks often enough to fire within about a second of the deadline, rarely enough to cost nothing."""
    return max(0.05, min(1.0, timeout / 10))


class Watchdog:
    def __init__(
        self, timeout: float, on_hang: Callable[[Beat, float], None], clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.timeout = timeout
        self.on_hang = on_hang
        self.clock = clock
        self._beat: Beat | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="tandem-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def beat(self, phase: str, step: int) -> None:
        self._beat = Beat(phase, step, self.clock(), time.time())

    def pause(self) -> None:
        """Disarm until the next beat (e.g. while waiting for a slow, legitimate synchronous save)."""
        self._beat = None

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(check_interval(self.timeout)):
            beat = self._beat
            if beat is not None and overdue(beat, self.clock(), self.timeout):
                self.on_hang(beat, self.clock() - beat.at)
                return
