"""The operator's own timers: backoffs, rechecks and resyncs, one pending per key, acting only on the
working replica."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import structlog

from tandem.operator.peering import PeeringGate

log = structlog.get_logger("tandem.operator")
# A stand-by replica's timers look again this often: kopf resumes it (and re-lists every job) when the
# working replica goes; the timers only matter if the two verdicts ever disagree.
STANDBY_RECHECK_SECONDS = 5.0


class Requeue:
    """Call `callback(namespace, name)` after a delay; one pending timer per key (the earliest wins).
    Timers act only on the working replica (`gate`): on a stand-by one they look again later. Once
    stopped, nothing fires."""

    def __init__(self, callback: Callable[[str, str], None], gate: PeeringGate | None = None) -> None:
        self._callback, self._gate = callback, gate
        self._lock = threading.Lock()
        self._timers: dict[tuple[str, str], tuple[float, threading.Timer]] = {}
        self._stopped = False

    def after(self, namespace: str, name: str, seconds: float) -> None:
        key, due = (namespace, name), time.monotonic() + seconds
        with self._lock:
            pending = self._timers.get(key)
            if self._stopped or (pending and pending[0] <= due):
                return
            if pending:
                pending[1].cancel()
            timer = threading.Timer(seconds, self._fire, args=key)
            timer.daemon = True
            self._timers[key] = (due, timer)
            timer.start()

    def _fire(self, namespace: str, name: str) -> None:
        with self._lock:
            self._timers.pop((namespace, name), None)
        try:
            if self._gate is not None and not self._gate.active():
                self.after(namespace, name, STANDBY_RECHECK_SECONDS)
                return
            self._callback(namespace, name)
        except Exception:  # a timer thread must never die silently
            log.exception("timer_failed", namespace=namespace, name=name)

    def stop(self) -> None:
        with self._lock:
            self._stopped = True
            for _, timer in self._timers.values():
                timer.cancel()
            self._timers.clear()
