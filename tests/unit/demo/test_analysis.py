from dataclasses import replace

from tandem.demo import analysis
from tandem.demo.analysis import Phase, split_phases
from tandem.demo.model import Story

T0 = 1_700_000_000.0
POOLS = ["ascend-910b", "h20"]


def test_split_phases_in_order_and_merged_where_not_observed() -> None:
    phases = split_phases(10.0, [("a", 11.0, "x"), ("b", None, "y"), ("c", 14.5, "z"), ("d", None, "w")])
    assert phases == [Phase("a", 1.0, "x"), Phase("b + c", 3.5, "z"), Phase("d", None, "not observed")]


def test_split_phases_never_run_backwards() -> None:
    # Teardown finished before the operator recorded the fault: that phase took no time of its own.
    phases = split_phases(10.0, [("detection", 12.0, ""), ("teardown", 11.0, ""), ("backoff", 13.0, "")])
    assert [p.seconds for p in phases] == [2.0, 0.0, 1.0]


def test_split_phases_without_a_start() -> None:
    assert split_phases(None, [("a", 1.0, "")])[0].seconds is None


def test_loss_points_one_per_attempt_and_step(story: Story) -> None:
    points = analysis.loss_points(story)
    assert [(p.attempt, p.step) for p in points][:2] == [(1, 1), (1, 2)]
    assert {p.attempt for p in points} == {1, 2, 3}
    assert all(abs(p.loss - (5.5 - 0.1 * p.step)) < 1e-9 for p in points)


def test_resumes(story: Story) -> None:
    resumed = analysis.resumes(story)
    assert [(r.attempt, r.resumed_from, r.world, r.accumulation) for r in resumed] == [
        (1, None, 4, 1), (2, 8, 4, 1), (3, 12, 2, 2)]


def test_recovery_phases_from_the_observed_moments(story: Story) -> None:
    first, second = analysis.recoveries(story)
    assert (first.kind, first.next_pool, second.kind, second.next_pool) == ("in place", "ascend-910b", "failover",
                                                                            "h20")
    assert first.root_cause == "HcclSocketTimeout on rank 1 (llama-demo-a1-0)"
    # attempt 1 logged up to step 10, attempt 2 resumed at 8: steps 9 and 10 are trained again.
    assert (first.steps_lost, first.resumed_step, second.steps_lost) == (2, 8, 2)
    seconds = {p.name: round(p.seconds, 3) for p in first.phases if p.seconds is not None}
    # In place: fault (log) at +30, in the status at +31, labels moved at +31.5, the supervisors' resume_choice at
    # +33, load start at +36, resumed at +36.9; no teardown, backoff, scheduling or container start.
    assert seconds == {"detection": 1.0, "signal": 0.5, "supervisor": 1.5, "worker start-up": 3.0,
                       "checkpoint load": 0.9}
    assert abs(first.total - 6.9) < 1e-6
    assert abs(sum(p.seconds for p in first.phases if p.seconds) - first.total) < 1e-6
    # The failover: attempt 2's pods (attempt 1's, moved) stop at +60.6, new pods at +62, bound at +62.2, launchers
    # at +63, load start at +66, resumed at +66.9.
    seconds = {p.name: round(p.seconds, 3) for p in second.phases if p.seconds is not None}
    assert seconds == {"detection": 1.0, "teardown": 0.0, "backoff": 1.0, "scheduling": 0.2,
                       "container start": 0.8, "worker start-up": 3.0, "checkpoint load": 0.9}


def test_recovery_without_the_checkpoint_read_merges_start_up_and_load(story: Story) -> None:
    story.load_started.clear()
    names = [p.name for p in analysis.recovery(story, 0).phases]
    assert names[-1] == "worker start-up + checkpoint load"


def test_story_checks_pass_on_the_story(story: Story) -> None:
    points, resumed = analysis.loss_points(story), analysis.resumes(story)
    checks = analysis.story_checks(story.status, POOLS, 24, points, resumed)
    assert all(c.ok for c in checks), [c for c in checks if not c.ok]


def test_story_checks_catch_a_resume_that_lost_the_weights(story: Story) -> None:
    # attempt 3 starts over from the initial loss
    for record in story.logs["llama-demo-a3-0"]:
        if record.event == "step":
            record.fields["loss"] = repr(5.5)
    checks = {c.name: c for c in analysis.story_checks(story.status, POOLS, 24, analysis.loss_points(story),
                                                        analysis.resumes(story))}
    assert not checks["the loss continues"].ok


def test_story_checks_catch_a_missing_failover_and_a_wrong_resume(story: Story) -> None:
    status = {**story.status, "pool": "ascend-910b", "failovers": 0}
    resumed = [replace(r, resumed_from=0, start_step=0) if r.attempt == 3 else r for r in analysis.resumes(story)]
    checks = {c.name: c.ok for c in analysis.story_checks(status, POOLS, 24, analysis.loss_points(story), resumed)}
    assert not checks["failover to the second pool"] and not checks["resumed at the checkpoint"]
    assert checks["succeeded"]


def test_story_checks_need_two_interconnect_faults_and_success(story: Story) -> None:
    status = {**story.status, "phase": "Failed", "faults": [{**story.status["faults"][0], "class": "user"}]}
    checks = {c.name: c.ok for c in analysis.story_checks(status, POOLS, 24, [], [])}
    assert not checks["succeeded"] and not checks["two interconnect faults"] and not checks["trained to the last step"]


def test_times_are_relative_to_the_story(story: Story) -> None:
    assert story.started == T0


def test_replayed_steps_compare_the_same_step_of_two_attempts(story: Story) -> None:
    replays = analysis.replayed_steps(analysis.loss_points(story))
    assert [(step, attempt) for step, attempt, _, _ in replays] == [(9, 2), (10, 2), (13, 3), (14, 3)]
    assert all(first == later for _, _, first, later in replays)


def test_story_checks_catch_a_replay_that_differs(story: Story) -> None:
    for record in story.attempt_logs[("llama-demo-a1-0", 2)]:  # attempt 2 ran in attempt 1's pods (in place)
        if record.event == "step" and record.step == 9:
            record.fields["loss"] = repr(4.0)
    checks = {c.name: c.ok for c in analysis.story_checks(story.status, POOLS, 24, analysis.loss_points(story),
                                                           analysis.resumes(story))}
    assert not checks["trained-again steps match the first time"]
