"""Every collective timeout from one derivation (runtime/timeouts.py), case by case: the whole result (what is
exported, what HCCL will really apply, the process group's timeout and the notes) for every chip generation and
edge: 910A's 68 s rounding and 17340 s cap, A2/A3 whole seconds, AIV mode's 1091 s cap, a deadline below HCCL's
120 s connect minimum, the 1800 s torch_npu takes for "not set", values the pool set, HCCL_EXEC_TIMEOUT=0."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tandem.chips import generation_of
from tandem.runtime.timeouts import Timeouts, derive, effective_exec, for_environment

ASYNC = {"HCCL_ASYNC_ERROR_HANDLING": "1", "TORCH_HCCL_ASYNC_ERROR_HANDLING": "1"}


def npu(exec_: str, connect: str) -> dict[str, str]:
    return {**ASYNC, "HCCL_EXEC_TIMEOUT": exec_, "HCCL_CONNECT_TIMEOUT": connect}


CASES = [
    # id, accelerator, deadline, pool/job env, generation -> the whole derivation
    ("910a-rounds-up-to-68", "npu", 600, {}, "ascend910",
     Timeouts(600, timedelta(seconds=740), npu("680", "630"), 680, 630)),
    ("910a-a-multiple-of-68-stays", "npu", 650, {}, "ascend910",
     Timeouts(650, timedelta(seconds=740), npu("680", "680"), 680, 680)),
    ("910a-cap-still-after-the-deadline", "npu", 17300, {}, "ascend910",
     Timeouts(17300, timedelta(seconds=17400), npu("17340", "7200"), 17340, 7200)),
    ("910a-cap-before-the-deadline", "npu", 17400, {}, "ascend910",
     Timeouts(17400, timedelta(seconds=17460), npu("17340", "7200"), 17340, 7200, (
         "HCCL's execution timeout (17340 s, the ascend910 range) fires before Tandem's deadline (17400 s): hangs "
         "are reported by HCCL",))),
    ("a2-whole-seconds", "npu", 600, {}, "ascend910b",
     Timeouts(600, timedelta(seconds=690), npu("630", "630"), 630, 630)),
    ("a3-whole-seconds", "npu", 3600, {}, "ascend910c",
     Timeouts(3600, timedelta(seconds=3690), npu("3630", "3630"), 3630, 3630)),
    ("a2-aiv-caps-at-1091", "npu", 1200, {"HCCL_OP_EXPANSION_MODE": "AIV"}, "ascend910b",
     Timeouts(1200, timedelta(seconds=1290), npu("1091", "1230"), 1091, 1230, (
         "HCCL's execution timeout (1091 s, the ascend910b range, AIV mode) fires before Tandem's deadline "
         "(1200 s): hangs are reported by HCCL",))),
    ("a2-aiv-within-range", "npu", 600, {"HCCL_OP_EXPANSION_MODE": "AIV"}, "ascend910b",
     Timeouts(600, timedelta(seconds=690), npu("630", "630"), 630, 630)),
    ("deadline-below-the-connect-minimum", "npu", 30, {}, "ascend910b",
     Timeouts(30, timedelta(seconds=180), npu("60", "120"), 60, 120)),
    ("910a-short-deadline-gets-68", "npu", 20, {}, "ascend910",
     Timeouts(20, timedelta(seconds=180), npu("68", "120"), 68, 120)),
    ("never-exactly-1800", "npu", 1710, {}, "ascend910b",
     Timeouts(1710, timedelta(seconds=1801), npu("1740", "1740"), 1740, 1740)),
    ("unknown-generation-is-the-strictest", "npu", 600, {}, "unknown",
     Timeouts(600, timedelta(seconds=740), npu("680", "630"), 680, 630)),
    ("the-pools-values-win-and-the-process-group-follows-them", "npu", 900,
     {"HCCL_EXEC_TIMEOUT": "600", "HCCL_CONNECT_TIMEOUT": "1200"}, "ascend910",
     Timeouts(900, timedelta(seconds=1260), ASYNC, 544, 1200, (
         "HCCL's execution timeout (544 s, the pool or job set HCCL_EXEC_TIMEOUT) fires before Tandem's deadline "
         "(900 s): hangs are reported by HCCL",))),
    ("exec-zero-never-times-out-on-a2", "npu", 600, {"HCCL_EXEC_TIMEOUT": "0"}, "ascend910b",
     Timeouts(600, timedelta(seconds=690), {**ASYNC, "HCCL_CONNECT_TIMEOUT": "630"}, None, 630, (
         "HCCL_EXEC_TIMEOUT=0: HCCL never times out a task; the process group follows Tandem's deadline",))),
    ("gpu-nccl", "gpu", 600, {}, "unknown",
     Timeouts(600, timedelta(seconds=630), {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "1"})),
    ("gpu-nccl-set-by-the-pool", "gpu", 600, {"TORCH_NCCL_ASYNC_ERROR_HANDLING": "3"}, "unknown",
     Timeouts(600, timedelta(seconds=630), {})),
    ("cpu-gloo", "cpu", 1770, {}, "unknown", Timeouts(1770, timedelta(seconds=1801), {})),
]


@pytest.mark.parametrize(("accelerator", "deadline", "env", "generation", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_whole_derivation(accelerator: str, deadline: float, env: dict[str, str], generation: str,
                              expected: Timeouts) -> None:
    assert derive(accelerator, deadline, env, generation) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(("generation", "aiv"), [(g, a) for g in ("ascend910", "ascend910b", "ascend910c", "unknown")
                                                 for a in (False, True)])
@pytest.mark.parametrize("deadline", [1, 60, 119, 600, 1769, 1770, 5000, 17000])
def test_the_order_holds_wherever_the_range_allows(generation: str, aiv: bool, deadline: int) -> None:
    """Tandem's deadline < HCCL's execution timeout as HCCL applies it < the process group, and the process
    group beyond the connect timeout and never exactly torch_npu's 1800 s, for every generation and deadline."""
    env = {"HCCL_OP_EXPANSION_MODE": "AIV"} if aiv else {}
    t = derive("npu", deadline, env, generation)  # type: ignore[arg-type]
    pg = t.process_group.total_seconds()
    assert t.hccl_exec == effective_exec(int(t.env["HCCL_EXEC_TIMEOUT"]), generation, aiv)  # type: ignore[arg-type]
    assert t.hccl_exec is not None and pg > t.hccl_exec and pg > int(t.env["HCCL_CONNECT_TIMEOUT"]) and pg != 1800
    assert (t.hccl_exec > deadline) == (not t.notes)


def test_the_generation_from_what_pools_and_nodes_say() -> None:
    assert [generation_of(t) for t in ("ascend910b", "Ascend910B3", "910C", "ascend910", "Ascend910A", None, "x")] == [
        "ascend910b", "ascend910b", "ascend910c", "ascend910", "ascend910", "unknown", "unknown"]
    env = {"TANDEM_CHIP_GENERATION": "ascend910b"}
    assert for_environment("npu", 600, env) == derive("npu", 600, env, "ascend910b")


def test_what_hccl_applies() -> None:
    """The CANN reference's own example (600 -> 544 on the Atlas training series) and the AIV rule."""
    assert effective_exec(600, "ascend910", False) == 544
    assert effective_exec(50, "ascend910", False) == 68
    assert [effective_exec(v, "ascend910b", True) for v in (0, 500, 1091, 5000)] == [1091, 500, 1091, 1091]
    assert effective_exec(0, "ascend910c", False) is None


@pytest.mark.parametrize("value", ["inf", "-inf", "nan", "1e400", "thirty"])
def test_an_hccl_timeout_that_is_no_number_is_taken_as_unset(value: str) -> None:
    """`HCCL_EXEC_TIMEOUT=inf` in a job's env raised OverflowError and stopped the launcher before any worker
    started; what HCCL itself cannot read as a number, Tandem does not act on either."""
    unset = derive("npu", 300, {}, generation_of("ascend910b"))
    given = derive("npu", 300, {"HCCL_EXEC_TIMEOUT": value, "HCCL_CONNECT_TIMEOUT": value},
                   generation_of("ascend910b"))
    assert (given.process_group, given.hccl_exec, given.hccl_connect) == (
        unset.process_group, unset.hccl_exec, unset.hccl_connect)
