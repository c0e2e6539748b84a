"""Which job is reconciled next, and by how many threads at once (issue 19: bounded and fair).

client-go's workqueue, for jobs: events and timers add a job's key; a key waits at most once in the queue however
many events arrive for it (eight pods starting is one reconcile, not eight), is never reconciled by two workers at
once (an event during its reconcile queues it once more, behind the others), and keys are served first come, first
served. One noisy job therefore costs one place in the line, and a fixed number of workers bounds the operator's
concurrent API calls."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

import structlog

log = structlog.get_logger("tandem.operator")
Key = tuple[str, str]
WORKERS = 8


class WorkQueue:
    def __init__(self, work: Callable[[str, str], None], workers: int = WORKERS) -> None:
        self._work, self._workers = work, workers
        self._ready: deque[Key] = deque()
        self._queued: set[Key] = set()  # waiting in _ready, or to be queued again when its reconcile ends
        self._running: set[Key] = set()
        self._cond = threading.Condition()
        self._threads: list[threading.Thread] = []
        self._stopped = False

    def add(self, namespace: str, name: str) -> None:
        key = (namespace, name)
        with self._cond:
            if self._stopped or key in self._queued:
                return
            self._queued.add(key)
            if key not in self._running:
                self._ready.append(key)
                self._cond.notify()
            if len(self._threads) < self._workers:  # started on demand: a controller that never queues has none
                thread = threading.Thread(target=self._serve, name=f"reconcile-{len(self._threads)}", daemon=True)
                self._threads.append(thread)
                thread.start()

    def depth(self) -> int:
        with self._cond:
            return len(self._ready)

    def wait_idle(self, timeout: float) -> bool:
        """Until no job waits or is being reconciled (False: still busy after `timeout` seconds)."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._ready and not self._running, timeout)

    def stop(self) -> None:
        with self._cond:
            self._stopped = True
            self._ready.clear()
            self._queued.clear()
            self._cond.notify_all()

    def _serve(self) -> None:
        while True:
            with self._cond:
                while not self._ready and not self._stopped:
                    self._cond.wait()
                if self._stopped:
                    return
                key = self._ready.popleft()
                self._queued.discard(key)
                self._running.add(key)
            try:
                self._work(*key)
            except Exception:  # a worker must never die: the others' jobs depend on it
                log.exception("reconcile_worker_failed", namespace=key[0], job=key[1])
            finally:
                with self._cond:
                    self._running.discard(key)
                    if key in self._queued and not self._stopped:  # an event came while it ran
                        self._ready.append(key)
                    self._cond.notify_all()  # a free worker, or wait_idle
