"""The recovery policy, exhaustively: fault class x which fault x pool order x backoff x maxRestarts."""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from builders import NOW, make_job

from tandem.operator.api import Fault, FaultClass, FaultPolicy
from tandem.operator.recovery import (
    RecoveryPlan,
    backoff_seconds,
    checkpoint_volume,
    choose_pool,
    fault_streak,
    plan_after_fault,
    plan_after_pending,
    storage_backoff_seconds,
    storage_location,
)

ROOMY = {"ascend-910b": 4, "h20": 4, "cpu": 4}


def fault(cls: str = "interconnect", pool: str = "ascend-910b", attempt: int = 1, checkpoint: int | None = 100,
          reason: str = "HcclSocketTimeout") -> Fault:
    return Fault.model_validate({"time": NOW, "attempt": attempt, "pool": pool, "class": cls, "reason": reason,
                                 "message": "EI0006: Getting socket times out", "checkpointStep": checkpoint})


def spec(**policy: Any) -> Any:
    return make_job(pools=["ascend-910b", "h20", "cpu"], faultPolicy={"backoffSeconds": 10, "maxBackoffSeconds": 300,
                                                                      **policy}).spec


@pytest.mark.parametrize(("streak", "expected"), [(1, 10), (2, 20), (3, 40), (5, 160), (6, 300), (12, 300)])
def test_backoff_doubles_per_consecutive_restart_up_to_the_cap(streak: int, expected: float) -> None:
    policy = FaultPolicy.model_validate({"backoffSeconds": 10, "maxBackoffSeconds": 300})
    assert backoff_seconds(policy, streak) == expected


def test_zero_backoff_restarts_at_once() -> None:
    assert backoff_seconds(FaultPolicy.model_validate({"backoffSeconds": 0, "maxBackoffSeconds": 0}), 7) == 0


def test_progress_between_faults_resets_the_streak() -> None:
    assert fault_streak([]) == 0
    assert fault_streak([fault(checkpoint=100), fault(checkpoint=100)]) == 2
    assert fault_streak([fault(checkpoint=100), fault(checkpoint=100), fault(checkpoint=300)]) == 1


CLASSES = [c.value for c in FaultClass]


@pytest.mark.parametrize(("cls", "nth", "after"), list(itertools.product(CLASSES, [1, 2, 3], [1, 2])))
def test_fault_class_and_count_decide_between_fail_restart_and_failover(cls: str, nth: int, after: int) -> None:
    history = [fault(cls, attempt=i + 1) for i in range(nth)]
    pool_faults = nth if cls in ("interconnect", "device") else 0
    plan = plan_after_fault(spec(failoverAfterFaults=after, maxRestarts=10), history, restarts=nth - 1,
                            current="ascend-910b", capacity=ROOMY, pool_faults=pool_faults, failovers=0)
    if cls == "user":
        assert (plan.outcome, plan.reason) == ("fail", "Failed") and "retrying cannot help" in plan.message
    elif cls in ("interconnect", "device") and nth >= after:
        assert (plan.outcome, plan.pool, plan.reason) == ("failover", "h20", "FailedOver")
        assert "moving from ascend-910b to h20" in plan.message
    else:
        assert (plan.outcome, plan.pool, plan.reason) == ("restart", "ascend-910b", "Restarting")


@pytest.mark.parametrize(("max_restarts", "restarts", "outcome"), [(0, 0, "fail"), (1, 0, "restart"), (1, 1, "fail"),
                                                                   (10, 9, "restart"), (10, 10, "fail")])
def test_max_restarts_counts_every_restart(max_restarts: int, restarts: int, outcome: str) -> None:
    plan = plan_after_fault(spec(maxRestarts=max_restarts, failoverAfterFaults=99), [fault("node")], restarts,
                            "ascend-910b", ROOMY, pool_faults=0, failovers=0)
    assert plan.outcome == outcome
    if outcome == "fail":
        assert f"maxRestarts ({max_restarts}) reached" in plan.message


@pytest.mark.parametrize(("streak", "delay"), [(1, 10.0), (2, 20.0), (4, 80.0), (9, 300.0)])
def test_the_plan_carries_the_backoff(streak: int, delay: float) -> None:
    history = [fault("oom", attempt=i + 1) for i in range(streak)]
    plan = plan_after_fault(spec(), history, streak - 1, "ascend-910b", ROOMY, pool_faults=0, failovers=0)
    assert plan.delay_seconds == delay


@pytest.mark.parametrize(("current", "expected"), [("ascend-910b", "h20"), ("h20", "cpu"), ("cpu", "cpu")])
def test_failover_walks_down_the_preference_order(current: str, expected: str) -> None:
    history = [fault(pool=current), fault(pool=current)]
    plan = plan_after_fault(spec(), history, 1, current, ROOMY, pool_faults=2, failovers=0)
    assert plan.pool == expected
    assert plan.outcome == ("restart" if expected == current else "failover")


def test_failover_skips_pools_without_room() -> None:
    plan = plan_after_fault(spec(), [fault(), fault()], 1, "ascend-910b", {"ascend-910b": 4, "h20": 1, "cpu": 4},
                            pool_faults=2, failovers=0)
    assert plan.pool == "cpu"


def test_a_pool_that_lost_its_room_is_left_even_before_the_fault_count() -> None:
    plan = plan_after_fault(spec(failoverAfterFaults=5), [fault("node")], 0, "ascend-910b",
                            {"ascend-910b": 1, "h20": 4}, pool_faults=0, failovers=0)
    assert (plan.outcome, plan.pool) == ("failover", "h20") and "room for fewer than 2 pod(s)" in plan.message


def test_nowhere_to_go_restarts_in_place_and_says_so() -> None:
    plan = plan_after_fault(spec(), [fault("node")], 0, "ascend-910b", {"ascend-910b": 1, "h20": 0, "cpu": 0},
                            pool_faults=0, failovers=0)
    assert plan.outcome == "restart" and "no other pool has room for 2 pod(s)" in plan.message


@pytest.mark.parametrize(("fail_back", "expected"), [(False, "h20"), (True, "ascend-910b")])
def test_fail_back_returns_to_the_most_preferred_healthy_pool(fail_back: bool, expected: str) -> None:
    job_spec = spec(failBack=fail_back)
    # On h20 after an earlier failover; an OOM there (not a pool fault) restarts the job.
    history = [fault(), fault(), fault("oom", pool="h20", attempt=3)]
    assert plan_after_fault(job_spec, history, 2, "h20", ROOMY, pool_faults=0, failovers=1).pool == expected


def test_choose_pool_never_returns_to_a_pool_it_is_leaving() -> None:
    assert choose_pool(spec(failBack=True), "ascend-910b", ROOMY, leave_current=True) == "h20"


@pytest.mark.parametrize(("waited", "capacity", "expected"), [
    (599, ROOMY, None),
    (600, ROOMY, "h20"),
    (900, {"ascend-910b": 4, "h20": 0, "cpu": 4}, "cpu"),
    (900, {"ascend-910b": 4}, None),
])
def test_pending_past_the_timeout_fails_over_without_a_restart(waited: float, capacity: dict[str, int],
                                                               expected: str | None) -> None:
    plan = plan_after_pending(spec(), "ascend-910b", capacity, waited, failovers=0)
    assert (plan.pool if plan else None) == expected
    if plan:
        assert plan.delay_seconds == 0 and plan.reason == "FailedOver" and "unschedulable" in plan.message


def test_the_failover_count_is_the_status_counter_not_the_capped_fault_list() -> None:
    """failoverAfterFaults above the 20 faults kept in status.faults still moves the job."""
    history = [fault(attempt=i + 1) for i in range(20)]
    stay = plan_after_fault(spec(failoverAfterFaults=25, maxRestarts=100), history, 23, "ascend-910b", ROOMY,
                            pool_faults=24, failovers=0)
    move = plan_after_fault(spec(failoverAfterFaults=25, maxRestarts=100), history, 24, "ascend-910b", ROOMY,
                            pool_faults=25, failovers=0)
    assert (stay.outcome, stay.pool) == ("restart", "ascend-910b")
    assert (move.outcome, move.pool) == ("failover", "h20")


def test_no_failover_past_max_failovers_the_job_restarts_where_it_is() -> None:
    plan = plan_after_fault(spec(maxFailovers=3), [fault(), fault()], 5, "ascend-910b", ROOMY,
                            pool_faults=2, failovers=3)
    assert plan == RecoveryPlan("restart", "ascend-910b", 20.0, "Restarting",
                                "interconnect fault HcclSocketTimeout: restart 6 of 10 on ascend-910b "
                                "20s after the attempt's pods stop; "
                                "maxFailovers (3) reached: staying on ascend-910b")


@pytest.mark.parametrize(("failovers", "expected"), [(0, "h20"), (9, "h20"), (10, None)])
def test_pending_failovers_spend_the_failover_budget(failovers: int, expected: str | None) -> None:
    """With failBack, two pools without room must not take turns for ever (13 moves in 40 s were seen)."""
    plan = plan_after_pending(spec(failBack=True), "ascend-910b", ROOMY, 900, failovers=failovers)
    assert (plan.pool if plan else None) == expected


# --- storage: a longer backoff, no failover (issue 14) ----------------------------------------------------------

@pytest.mark.parametrize(("backoff", "cap", "streak", "delay"), [
    (10, 300, 1, 60.0),  # at least 60 s
    (10, 300, 2, 80.0),  # else 4x the usual (doubled) backoff
    (10, 300, 3, 160.0),
    (10, 300, 4, 300.0),  # capped by maxBackoffSeconds
    (30, 3600, 1, 120.0),
    (5, 30, 1, 30.0),  # the user's cap wins over the 60 s floor
    (0, 0, 3, 0.0),
])  # fmt: skip
def test_a_storage_fault_waits_longer(backoff: int, cap: int, streak: int, delay: float) -> None:
    policy = FaultPolicy.model_validate({"backoffSeconds": backoff, "maxBackoffSeconds": cap})
    assert storage_backoff_seconds(policy, streak) == delay
    history = [fault("storage", reason="DiskFull", attempt=i + 1) for i in range(streak)]
    job_spec = make_job(pools=["ascend-910b", "h20"], faultPolicy={"backoffSeconds": backoff,
                                                                    "maxBackoffSeconds": cap}).spec
    plan = plan_after_fault(job_spec, history, streak - 1, "ascend-910b", ROOMY, pool_faults=0, failovers=0)
    assert (plan.outcome, plan.pool, plan.delay_seconds) == ("restart", "ascend-910b", delay)


def test_storage_faults_never_move_the_job_however_many() -> None:
    history = [fault("storage", reason="StaleFileHandle", attempt=i + 1) for i in range(5)]
    plan = plan_after_fault(spec(failoverAfterFaults=1), history, 4, "ascend-910b", ROOMY, pool_faults=0,
                            failovers=0)
    assert plan == RecoveryPlan(
        "restart", "ascend-910b", 300.0, "Restarting",
        "storage fault StaleFileHandle on the checkpoint volume (persistentVolumeClaim ckpt): restart 5 of 10 on "
        "ascend-910b 300s after the attempt's pods stop; storage faults wait at least 60s (4x backoffSeconds, up to "
        "maxBackoffSeconds), exclude no node and move no job")


@pytest.mark.parametrize(("volume", "named"), [
    ({"persistentVolumeClaim": {"claimName": "ckpt"}}, "persistentVolumeClaim ckpt"),
    ({"hostPath": {"path": "/data/ckpt"}}, "hostPath /data/ckpt"),
    ({"nfs": {"server": "10.0.0.5", "path": "/exports/ckpt"}}, "nfs 10.0.0.5:/exports/ckpt"),
    ({"emptyDir": {}}, "emptyDir"),
])  # fmt: skip
def test_the_checkpoint_volume_is_named(volume: dict[str, Any], named: str) -> None:
    job_spec = make_job(checkpoint={"volume": volume}).spec
    assert checkpoint_volume(job_spec) == named


ON_IT = "on the checkpoint volume (persistentVolumeClaim ckpt)"
OUTSIDE = "outside the checkpoint volume (persistentVolumeClaim ckpt at /checkpoints)"


@pytest.mark.parametrize(("message", "where"), [
    # The runtime's own saves, and errors that name no file: the checkpoint volume.
    ("OSError: [Errno 28] No space left on device: '/checkpoints/step-000000150/__1_0.distcp'",
     ON_IT),
    ("OSError: [Errno 116] Stale file handle", ON_IT),
    ("OSError: [Errno 30] Read-only file system: '/checkpoints'", ON_IT),
    # A file the job read or wrote elsewhere (a dataset, a cache): that volume, not the checkpoint's.
    ("OSError: [Errno 5] Input/output error: '/data/shards/train-00003.bin'",
     f"on /data/shards/train-00003.bin, {OUTSIDE}"),
    ("tensorflow.python.framework.errors_impl.InternalError: /mnt/imagenet/train-00001-of-01024; "
     "Input/output error", f"on /mnt/imagenet/train-00001-of-01024, {OUTSIDE}"),
    # A sibling folder whose name starts like the mount, and a path that climbs out of it, are elsewhere.
    ("OSError: [Errno 28] No space left on device: '/checkpoints-old/x.pt'", f"on /checkpoints-old/x.pt, {OUTSIDE}"),
    ("OSError: [Errno 5] Input/output error: '/checkpoints/../data/x.bin'", f"on /data/x.bin, {OUTSIDE}"),
    # coreutils in a wrapper script ('cp: cannot create regular file ...') and Go's path errors (a sidecar, a FUSE
    # mount's daemon) name the file their own way.
    ("cp: error writing '/scratch/cache/shard-7.arrow': No space left on device",
     f"on /scratch/cache/shard-7.arrow, {OUTSIDE}"),
    ("mkdir: cannot create directory '/checkpoints/step-300': Read-only file system", ON_IT),
    ("write /data/tokens/part-0001.bin: input/output error", f"on /data/tokens/part-0001.bin, {OUTSIDE}"),
    ("open /checkpoints/latest: stale NFS file handle", ON_IT),
    # A copy between two volumes names both: the checkpoint volume is one of them, so it is named.
    ("OSError: [Errno 28] No space left on device: '/data/x.pt' -> '/checkpoints/x.pt'", ON_IT),
])  # fmt: skip
def test_a_storage_fault_names_the_file_it_hit_when_that_is_not_on_the_checkpoint_volume(message: str,
                                                                                        where: str) -> None:
    job_spec = make_job().spec
    assert storage_location(job_spec, message) == where
    history = [fault("storage", reason="VolumeIOError").model_copy(update={"message": message})]
    plan = plan_after_fault(job_spec, history, 0, "ascend-910b", ROOMY, pool_faults=0, failovers=0)
    assert plan.message.startswith(f"storage fault VolumeIOError {where}: restart 1 of ")
