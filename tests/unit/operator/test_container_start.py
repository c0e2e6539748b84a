"""A training container that cannot start (operator/container_start.py through start_failure and classify_pod):
real kubelet and container-runtime texts people posted publicly (tests/data/faults/container_start.yaml)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import make_failed_launcher_pod, make_node

from tandem.operator.api_types import FaultClass
from tandem.operator.classify import Classification, StartFailure, classify_pod, start_failure

DATA = Path(__file__).parents[2] / "data" / "faults"


failed = make_failed_launcher_pod


def node() -> dict[str, Any]:
    return make_node("n1", "ascend-910b")


STARTS = yaml.safe_load((DATA / "container_start.yaml").read_text())


def not_started(entry: dict[str, Any], phase: str = "Pending") -> dict[str, Any]:
    """A pod whose training container is in the entry's state, as the kubelet reports it."""
    pod = failed(None)
    pod["status"]["phase"] = phase
    state = {key: entry[key] for key in ("reason", "message", "exitCode") if key in entry}
    pod["status"]["containerStatuses"] = [{"name": "trainer", "state": {entry["state"]: state}}]
    return pod


def start_verdict(entry: dict[str, Any]) -> Classification:
    where = entry["reason"] if entry["state"] == "waiting" else f"{entry['reason']}, exit code {entry['exitCode']}"
    message = f"container trainer: {where}: {entry['message']}"
    return Classification(FaultClass(entry["class"]), entry["verdict"], message, "container-state", node="n1")


@pytest.mark.parametrize("entry", STARTS, ids=[e["id"] for e in STARTS])
def test_a_container_that_cannot_start(entry: dict[str, Any]) -> None:
    """The kubelet's reason and message, so the user reads why; `grace`: the cause may go away by itself."""
    assert start_failure(not_started(entry)) == StartFailure(start_verdict(entry), entry["grace"])
    assert entry["source"].startswith("https://")


@pytest.mark.parametrize("entry", STARTS, ids=[e["id"] for e in STARTS])
def test_a_failed_pod_that_never_started(entry: dict[str, Any]) -> None:
    """Its pod failed (a deadline, an eviction): no cause can go away now; the kubelet's words decide."""
    found = classify_pod(not_started(entry, "Failed"), node(), [])
    if entry["class"] in ("user", "node"):
        assert found == start_verdict(entry)
    else:
        assert found.fault_class == FaultClass.UNKNOWN and found.source == "container-state"


@pytest.mark.parametrize("message", ["", "Traceback (most recent call last):\n  File \"t.py\", line 1, in <module>\n"
                                     "    sys.exit(127)\nSystemExit: 127", "sh: 1: sleep: invalid number 'x'"])
def test_exit_code_127_from_the_program_itself_is_no_start_failure(message: str) -> None:
    pod = failed(127, "Error", message)
    assert start_failure(pod) is None
    assert classify_pod(pod, node(), []).reason != "CommandNotFound"
