"""The reconcile queue (issue 19): a job's burst of events is one reconcile, a job is never reconciled by two workers
at once, an event during its reconcile runs it once more afterwards, the workers are bounded, and a noisy job waits
its turn behind the others."""

from __future__ import annotations

import threading

from tandem.operator.workqueue import WorkQueue


class Recorder:
    """Work that blocks until released, recording the order and the most jobs in flight at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.order: list[str] = []
        self.running: set[str] = set()
        self.overlap = 0
        self.most = 0
        self.release = threading.Event()
        self.started = threading.Semaphore(0)

    def __call__(self, namespace: str, name: str) -> None:
        with self.lock:
            self.overlap += name in self.running
            self.running.add(name)
            self.most = max(self.most, len(self.running))
            self.order.append(name)
        self.started.release()
        self.release.wait(10)
        with self.lock:
            self.running.discard(name)


def test_a_burst_of_events_for_one_job_is_one_reconcile() -> None:
    work = Recorder()
    queue = WorkQueue(work, workers=2)
    work.release.set()
    with queue._cond:  # every add lands before any worker takes the key
        for _ in range(50):
            queue.add("ml", "a")
    assert queue.wait_idle(10)
    assert work.order == ["a"]


def test_an_event_during_a_reconcile_runs_it_once_more_afterwards_never_alongside() -> None:
    work = Recorder()
    queue = WorkQueue(work, workers=4)
    queue.add("ml", "a")
    assert work.started.acquire(timeout=10)
    for _ in range(10):  # while "a" runs: queued once, not given to another worker
        queue.add("ml", "a")
    work.release.set()
    assert queue.wait_idle(10)
    assert (work.order, work.overlap) == (["a", "a"], 0)


def test_the_workers_are_bounded_and_a_noisy_job_waits_its_turn() -> None:
    work = Recorder()
    queue = WorkQueue(work, workers=2)
    queue.add("ml", "noisy")
    assert work.started.acquire(timeout=10)
    for name in ("b", "c", "d"):
        queue.add("ml", name)
        queue.add("ml", "noisy")  # it keeps sending events: one place in the line, behind those already there
    assert work.started.acquire(timeout=10)  # the second worker took "b"; "c" and "d" wait: two workers only
    work.release.set()
    assert queue.wait_idle(10)
    assert (work.most, work.overlap, sorted(work.order)) == (2, 0, ["b", "c", "d", "noisy", "noisy"])
    assert work.order[0] == "noisy" and work.order.index("noisy", 1) > max(work.order.index(n) for n in "bcd")


def test_a_stopped_queue_takes_nothing() -> None:
    work = Recorder()
    queue = WorkQueue(work)
    queue.stop()
    queue.add("ml", "a")
    assert queue.wait_idle(1) and work.order == []
