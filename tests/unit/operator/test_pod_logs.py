"""The operator's log reads (issue 18): after an in-place restart rank 0 runs in a pod named for an earlier
attempt, and its checkpoints are read there; a supervisor's log is read only while its pod runs and is not Ready
(or stays through a running in-place restart)."""

from __future__ import annotations

from typing import Any

from builders import make_job, make_pod

from tandem.operator.pod_logs import PodLogs


class Logs:
    def __init__(self, texts: dict[str, str]) -> None:
        self.texts, self.read = texts, []

    def read_log_tail(self, namespace: str, pod: str, lines: int = 1000) -> str:
        self.read.append(pod)
        return self.texts.get(pod, "")


def supervised(attempt: int, rank: int, name_attempt: int, ready: bool) -> dict[str, Any]:
    pod = make_pod("llama", attempt, rank, "Running", f"n{rank}")
    pod["metadata"]["name"] = f"llama-a{name_attempt}-{rank}"
    pod["metadata"]["annotations"] = {"tandem.dev/in-place-restart": "true"}
    pod["status"]["conditions"] = [{"type": "Ready", "status": "True" if ready else "False"}]
    return pod


def test_rank_zeros_log_is_read_in_the_pod_it_stayed_in() -> None:
    kube = Logs({"llama-a1-0": "checkpoint_committed step=40"})
    job = make_job(status={"phase": "Running", "attempt": 2, "pool": "ascend-910b"}, nodes=2)
    pods = [supervised(2, 0, 1, True), supervised(2, 1, 1, True)]
    assert PodLogs(kube).rank_zero(job, pods) == "checkpoint_committed step=40"  # type: ignore[arg-type]
    assert kube.read == ["llama-a1-0"]


def test_only_the_supervisors_not_ready_are_read() -> None:
    line = 'tandem-supervisor: {"attempt":2,"state":"faulted","fault":{"class":"unknown"}}'
    kube = Logs({"llama-a1-1": line})
    job = make_job(status={"phase": "Running", "attempt": 2, "pool": "ascend-910b"}, nodes=2)
    reports = PodLogs(kube).supervisors(job, [supervised(2, 0, 1, True), supervised(2, 1, 1, False)])  # type: ignore[arg-type]
    assert (kube.read, {k: (r.attempt, r.state) for k, r in reports.items()}) == (
        ["llama-a1-1"], {"llama-a1-1": (2, "faulted")})


def test_a_supervisor_is_read_again_only_once_its_pod_changed_or_a_second_passed() -> None:
    """A job's burst of pod events (each reconciles it) reads a supervisor's log once, not once per event."""
    line = 'tandem-supervisor: {"attempt":2,"state":"faulted","fault":{"class":"unknown"}}'
    kube = Logs({"llama-a1-1": line})
    clock = [100.0]
    logs = PodLogs(kube, monotonic=lambda: clock[0])  # type: ignore[arg-type]
    job = make_job(status={"phase": "Running", "attempt": 2, "pool": "ascend-910b"}, nodes=2)
    pods = [supervised(2, 0, 1, True), supervised(2, 1, 1, False)]
    pods[1]["metadata"]["resourceVersion"] = "7"
    heard = []
    for step in ("event", "event", "a second later", "its pod changed", "event"):
        if step == "a second later":
            clock[0] += 1.0
        if step == "its pod changed":
            pods[1]["metadata"]["resourceVersion"] = "8"
        heard.append({k: r.state for k, r in logs.supervisors(job, pods).items()})
    assert (kube.read, heard) == (["llama-a1-1"] * 3, [{"llama-a1-1": "faulted"}] * 5)
