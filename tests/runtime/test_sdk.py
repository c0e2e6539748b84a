"""The torch-free part of `tandem.sdk`, as a script uses it under `tandem-run` (real child processes): the
heartbeat that feeds the hang watch, the resume point, and a batch plan that keeps the global batch over any
world size."""

from __future__ import annotations

import json
import os
import sys
import textwrap
from pathlib import Path

import pytest

from tandem.runtime.faults import FaultError
from tandem.runtime.run import Options, run
from tandem.sdk import BatchPlan, batch_plan, progress, resume_point, world_size


def _env(tmp_path: Path) -> dict[str, str]:
    (tmp_path / "ckpt").mkdir(exist_ok=True)
    return {**os.environ, "TANDEM_CHECKPOINT_DIR": str(tmp_path / "ckpt"),
            "TANDEM_TERMINATION_LOG": str(tmp_path / "termination-log")}


def test_the_heartbeat_keeps_a_quiet_script_alive_and_names_its_step(tmp_path: Path) -> None:
    """No progress lines at all, only tandem.sdk.progress: 4 s of work with a 2 s progress timeout (1 s was a
    stall's worth on a loaded VM)."""
    script = textwrap.dedent('''
        import time
        from tandem.sdk import progress
        for step in range(1, 41):
            time.sleep(0.1)
            progress(step, loss=2.0 / step, lr=float("nan"))
    ''')
    assert run(Options([sys.executable, "-P", "-c", script], progress_timeout=2.0, grace=1.0), _env(tmp_path)) == 0
    message = json.loads((tmp_path / "termination-log").read_text())
    assert (message["class"], message["step"]) == ("none", 40)


def test_a_script_whose_heartbeat_stops_is_a_hang_at_that_step(tmp_path: Path) -> None:
    script = "from tandem.sdk import progress; import time; progress(4); time.sleep(120)"
    assert run(Options([sys.executable, "-P", "-c", script], progress_timeout=1.0, grace=1.0), _env(tmp_path)) == 1
    message = json.loads((tmp_path / "termination-log").read_text())
    assert (message["reason"], message["step"]) == ("NoProgress", 4)


def test_outside_tandem_run_progress_does_nothing(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("TANDEM_PROGRESS_FILE", raising=False)
    progress(3)
    monkeypatch.setenv("TANDEM_PROGRESS_FILE", str(tmp_path / "p.json"))
    progress(3, loss=1.5, bad="x")  # type: ignore[arg-type]
    record = json.loads((tmp_path / "p.json").read_text())
    assert (record["step"], record["metrics"]) == (3, {"loss": 1.5})


def test_the_resume_point_and_the_world(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_RESUME_STEP", "")
    monkeypatch.setenv("TANDEM_RESUME_PATH", "")
    assert resume_point() is None
    monkeypatch.setenv("TANDEM_RESUME_STEP", "1200")
    monkeypatch.setenv("TANDEM_RESUME_PATH", "/ckpt/checkpoint-1200")
    assert (resume_point().step, resume_point().path) == (1200, "/ckpt/checkpoint-1200")
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setenv("TANDEM_NODES", "2")
    monkeypatch.setenv("TANDEM_DEVICES_PER_NODE", "8")
    assert world_size() == 16
    monkeypatch.setenv("WORLD_SIZE", "4")  # torchrun's, in a worker
    assert world_size() == 4


@pytest.mark.parametrize(("world", "plan"), [(16, BatchPlan(256, 16, 4, 4)), (8, BatchPlan(256, 8, 4, 8)),
                                            (2, BatchPlan(256, 2, 4, 32))])
def test_the_global_batch_survives_a_failover_to_another_world(world: int, plan: BatchPlan) -> None:
    assert batch_plan(256, micro_batch=4, world=world) == plan
    assert plan.per_rank * plan.world == 256


def test_a_global_batch_no_world_divides_is_the_users_to_fix() -> None:
    with pytest.raises(FaultError) as error:
        batch_plan(100, world=16)
    assert error.value.cls == "user" and "globalBatch 100 is not divisible by the world size 16" in str(error.value)


def test_tandem_run_serves_the_progress_as_prometheus_text(tmp_path: Path) -> None:
    import socket
    import threading
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    scraped = tmp_path / "scraped"
    script = textwrap.dedent('''
        import os, sys, time
        from tandem.sdk import progress
        progress(5, loss=1.25, tokens_per_second=5120)
        deadline = time.monotonic() + 60
        while not os.path.exists(sys.argv[1]) and time.monotonic() < deadline:  # until the scraper saw it
            time.sleep(0.05)
    ''')
    seen: list[str] = []

    def scrape() -> None:  # while tandem-run supervises in the main thread (it handles SIGTERM there)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not any("tandem_run_step 5" in t for t in seen):
            time.sleep(0.2)
            try:
                seen.append(urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2).read().decode())
            except OSError:
                continue
        scraped.touch()

    scraper = threading.Thread(target=scrape, daemon=True)
    scraper.start()
    assert run(Options([sys.executable, "-P", "-c", script, str(scraped)], metrics_port=port), _env(tmp_path)) == 0
    scraper.join(timeout=60)
    text = next(t for t in seen if "tandem_run_step 5" in t)
    assert 'tandem_run_metric{name="loss"} 1.25' in text
    assert 'tandem_run_metric{name="tokens_per_second"} 5120.0' in text


def test_the_built_in_trainer_is_a_client_of_the_sdk_with_no_private_path() -> None:
    """tandem-train's loop (runtime/train.py) reaches the device, the process group, the batch plan and the
    checkpoints only through tandem.sdk: were it to import the runtime's own pieces again, the SDK could fall
    behind what the built-in trainer needs without anyone noticing."""
    import ast

    import tandem.runtime.train as train

    tree = ast.parse(Path(train.__file__).read_text())
    imported = {f"{node.module}.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    private = {"tandem.runtime.checkpoint.Checkpointer", "tandem.runtime.ckpt_layout", "tandem.runtime.recovery",
               "tandem.runtime.fence", "tandem.runtime.device.load_device_layer", "tandem.runtime.plan.batch_plan",
               "tandem.runtime.timeouts"}
    assert not {name for name in imported if any(name.startswith(p) for p in private)}
    called = {node.func.attr for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)}
    assert not called & {"init_process_group", "TCPStore", "new_group", "load_device_layer"}
    sdk_calls = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
                 and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", None) == "sdk"}
    assert sdk_calls == {"init", "batch_plan", "progress"}
    assert {"tandem.sdk.checkpoint.Checkpointer", "tandem.sdk.checkpoint.CheckpointRejected"} <= imported
