from collections.abc import Callable
from typing import Any

from tandem.demo.model import Story, observe_event, observe_job, observe_pod

T0 = 1_700_000_000.0
Pod = Callable[..., dict[str, Any]]



def test_first_sightings_win_so_a_replayed_watch_changes_nothing(make_pod: Pod) -> None:
    story = Story(started=T0)
    observe_pod(story, "ADDED", make_pod("p", 1, 0, "ascend-910b"), 1.0)
    observe_pod(story, "MODIFIED", make_pod("p", 1, 0, "ascend-910b", "n0"), 2.0)
    observe_pod(story, "MODIFIED", make_pod("p", 1, 0, "ascend-910b", "n0", {"running": {}}, "Running"), 3.0)
    observe_pod(story, "ADDED", make_pod("p", 1, 0, "ascend-910b", "n0", {"running": {}}, "Running"), 9.0)
    seen = story.pods["p"]
    assert (seen.created, seen.scheduled, seen.running, seen.finished, seen.node) == (1.0, 2.0, 3.0, None, "n0")
    observe_pod(story, "MODIFIED", make_pod("p", 1, 0, "ascend-910b", "n0", {"terminated": {"reason": "Error",
                                                                                       "exitCode": 3}}, "Failed"), 4.0)
    observe_pod(story, "DELETED", make_pod("p", 1, 0, "ascend-910b", "n0"), 5.0)
    assert (seen.finished, seen.deleted, seen.exit_code, seen.phase) == (4.0, 5.0, 3, "Deleted")


def test_pods_without_an_attempt_are_not_the_jobs() -> None:
    story = Story(started=T0)
    assert observe_pod(story, "ADDED", {"metadata": {"name": "x", "labels": {}}}, 1.0) is None
    assert story.pods == {}


def test_job_faults_and_phases_are_noted_once() -> None:
    story = Story(started=T0)
    observe_job(story, {"phase": "Running", "attempt": 1, "pool": "a"}, 1.0)
    observe_job(story, {"phase": "Running", "attempt": 1, "pool": "a"}, 2.0)
    observe_job(story, {"phase": "Restarting", "attempt": 1, "pool": "a", "faults": [{}]}, 3.0)
    observe_job(story, {"phase": "Restarting", "attempt": 1, "pool": "a", "faults": [{}]}, 4.0)
    assert story.fault_seen == [3.0]
    assert [p[:2] for p in story.phases] == [(1.0, "Running"), (3.0, "Restarting")]


def test_events_are_noted_once() -> None:
    story = Story(started=T0)
    event = {"metadata": {"name": "e1"}, "type": "Warning", "reason": "FaultDetected", "message": "m",
             "involvedObject": {"kind": "TrainingJob", "name": "llama-demo"}}
    assert observe_event(story, event, 1.0) is not None
    assert observe_event(story, event, 2.0) is None
    assert story.events[0].involved == "TrainingJob/llama-demo"
