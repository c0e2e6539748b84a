"""`tandem.sdk.init()` in a real two-process gloo job started by torchrun under tandem-run: each rank joins the
process group with the pool's backend, binds its device, and reports progress through the heartbeat."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tandem.runtime.faults import FaultError
from tandem.sdk import init

SCRIPT = textwrap.dedent('''
    import torch, torch.distributed as dist
    import tandem.sdk as sdk
    ctx = sdk.init()
    total = torch.tensor([float(ctx.rank + 1)])
    dist.all_reduce(total)
    plan = sdk.batch_plan(32, micro_batch=4)
    for step in range(1, 4):
        sdk.progress(step)
    print(f"rank {ctx.rank}/{ctx.world_size} {ctx.backend} {ctx.device} sum {total.item():.0f} "
          f"plan {plan.micro_batch}x{plan.accumulation}", flush=True)
    dist.destroy_process_group()
''')


def test_two_ranks_join_the_group_and_report_progress(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    (tmp_path / "ckpt").mkdir()
    env = {**os.environ, "TANDEM_CHECKPOINT_DIR": str(tmp_path / "ckpt"), "TANDEM_ACCELERATOR": "cpu",
           "TANDEM_TERMINATION_LOG": str(tmp_path / "termination-log")}
    tandem_run = str(Path(sys.executable).with_name("tandem-run"))
    result = subprocess.run([tandem_run, "--", sys.executable, "-P", "-m", "torch.distributed.run", "--standalone",
                             "--nproc-per-node", "2", str(tmp_path / "train.py")], env=env, capture_output=True,
                            text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    # The two ranks share torchrun's stdout: their lines may interleave, so find them anywhere in it.
    assert sorted(re.findall(r"rank \d/2 gloo cpu sum 3 plan 4x4", result.stdout)) == [
        "rank 0/2 gloo cpu sum 3 plan 4x4", "rank 1/2 gloo cpu sum 3 plan 4x4"]
    message = json.loads((tmp_path / "termination-log").read_text())
    assert (message["class"], message["step"]) == ("none", 3)


def test_a_launcher_variable_that_is_not_a_number_is_the_users_to_fix() -> None:
    with pytest.raises(FaultError) as error:
        init({"TANDEM_ACCELERATOR": "cpu", "RANK": "zero", "WORLD_SIZE": "2"})
    assert error.value.cls == "user" and "RANK='zero'" in str(error.value)


def test_a_single_process_needs_no_group() -> None:
    ctx = init({"TANDEM_ACCELERATOR": "cpu", "TANDEM_RESUME_STEP": ""})
    assert (ctx.rank, ctx.world_size, ctx.backend, str(ctx.device)) == (0, 1, "gloo", "cpu")
