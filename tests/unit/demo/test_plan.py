import yaml

from tandem.demo.plan import FAST, FULL, StoryPlan, demo_job, validate
from tandem.demo.story import EXAMPLES


def test_the_plans_tell_the_story() -> None:
    assert validate(FULL) == [] and validate(FAST) == []
    assert FAST.steps < FULL.steps


def test_a_fault_before_a_new_checkpoint_cannot_tell_it() -> None:
    assert validate(StoryPlan(steps=20, interval=10, faults=((1, 5), (2, 12))))
    assert validate(StoryPlan(steps=20, interval=5, faults=((1, 7), (2, 9))))  # both resume from step 5
    assert validate(StoryPlan(steps=20, interval=5, faults=((1, 7), (2, 30))))


def test_inject_pins_each_fault_to_its_attempt() -> None:
    assert StoryPlan(steps=9, interval=2, faults=((1, 3), (2, 5)), rank=1).inject() == (
        "interconnect@step=3,rank=1,attempt=1,flavor=hccl;interconnect@step=5,rank=1,attempt=2,flavor=hccl")


def test_demo_job_from_the_example() -> None:
    base = yaml.safe_load((EXAMPLES / "trainingjob.yaml").read_text())
    job = demo_job(base, FAST)
    assert job["spec"]["training"]["steps"] == FAST.steps
    assert job["spec"]["training"]["metrics"]["logEverySteps"] == 1
    assert job["spec"]["checkpoint"]["intervalSteps"] == FAST.interval
    assert job["spec"]["container"]["env"] == [{"name": "TANDEM_FAULT_INJECT", "value": FAST.inject()}]
    assert "container" not in base["spec"] or base["spec"]["container"].get("env") != job["spec"]["container"]["env"]
    again = demo_job(job, FAST)
    assert again["spec"]["container"]["env"] == job["spec"]["container"]["env"]
