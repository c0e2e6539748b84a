"""The attempt fence (two attempts on one volume at once) and retention under transient storage errors."""

from __future__ import annotations

import errno
import json
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from tandem.runtime import ckpt_layout, recovery
from tandem.runtime.faults import FaultError
from tandem.runtime.fence import Fence


def test_transient_stat_errors_delete_and_set_aside_nothing(
    rt: Any, baseline2: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = rt.copy_checkpoints(baseline2.root, tmp_path / "ckpt", [2, 4, 6, 8])
    before = sorted(p.relative_to(root) for p in root.rglob("*"))
    real_stat = os.stat

    def flaky_stat(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        if "step-000000008" in os.fspath(path):
            raise OSError(errno.EIO, "Input/output error", os.fspath(path))
        return real_stat(path, *args, **kwargs)

    monkeypatch.setattr(os, "stat", flaky_stat)
    recovery.retain(root, keep=1, guard=None)  # the round is skipped, not guessed
    with pytest.raises(OSError):
        recovery.choose(root, None, "fail")  # a storage fault for the attempt, nothing set aside
    monkeypatch.undo()
    assert sorted(p.relative_to(root) for p in root.rglob("*")) == before


def test_fence_refuses_older_attempts_and_foreign_tokens(tmp_path: Path) -> None:
    old, new = Fence(tmp_path, 1, "t1", "uid"), Fence(tmp_path, 2, "t2", "uid")
    old.acquire()
    new.acquire()
    with pytest.raises(FaultError) as refused:
        old.check("commit checkpoint 4")
    assert refused.value.reason == "Fenced" and "attempt 2 started" in str(refused.value)
    with pytest.raises(FaultError):
        old.acquire()  # a late start of the old attempt cannot take the volume back
    new.check("commit")
    with pytest.raises(FaultError):
        Fence(tmp_path, 2, "forged", "uid").check("commit")
    Fence(tmp_path, 1, "x", "another-job").check("commit")  # an earlier job's fence files do not count


def test_two_attempts_on_one_volume_the_older_stops(rt: Any, baseline2: Any, tmp_path: Path) -> None:
    root = tmp_path / "ckpt"
    training = {**rt.TRAINING, "watchdogSeconds": 300}  # attempt 1 is frozen for a while, not hung
    env1 = rt.contract_env(root, 2, training, TANDEM_ATTEMPT_TOKEN="token-1")
    started = time.monotonic()
    first = rt.start(env1)
    rt.wait_for(lambda: (root / "step-000000002" / "manifest.json").exists() or first.poll() is not None,
                timeout=90, what="attempt 1's step-2 checkpoint")
    os.killpg(first.pid, signal.SIGSTOP)  # a partition: the operator gives up on it and starts attempt 2
    try:
        env2 = rt.contract_env(root, 2, training, TANDEM_ATTEMPT="2", TANDEM_ATTEMPT_TOKEN="token-2",
                               TANDEM_TERMINATION_LOG=str(tmp_path / "attempt2.termination-log"))
        second_started = time.monotonic()
        second = rt.start(env2)
        rt.wait_for(lambda: any(json.loads((p / "manifest.json").read_text()).get("attempt") == 2
                                for p in root.glob("step-*") if (p / "manifest.json").exists()) or
                    second.poll() is not None, timeout=90, what="attempt 2's first commit")
    finally:
        os.killpg(first.pid, signal.SIGCONT)  # the old attempt comes back while the new one trains
    old = rt.finish(first, env1, started)
    new = rt.finish(second, env2, second_started)
    assert old.termination["class"] == "unknown" and old.termination["reason"] == "Fenced", old.output[-3000:]
    assert new.returncode == 0, new.output[-4000:]
    resumed = new.termination["resumedFrom"]
    assert new.losses() == {s: baseline2.losses()[s] for s in range(resumed + 1, rt.STEPS + 1)}
    # Attempt 2's checkpoints survive, intact, and nothing attempt 1 wrote after the fence was committed.
    for entry in ckpt_layout.scan(root):
        assert entry.state == "complete" and recovery.intact_problem(entry) is None
        assert entry.step <= resumed or (entry.manifest or {})["attempt"] == 2, entry.step
    assert (entry.manifest or {})["step"] == rt.STEPS
