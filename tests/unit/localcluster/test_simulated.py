"""Simulated pods' scripts (issue 19): the node's script, a pod's annotations over it, and what cannot be read."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from tandem.localcluster.nodes import ClusterConfig, node_manifests
from tandem.localcluster.simulated import PodScript, ScriptError, node_script, pod_script

BASE = PodScript(start_seconds=0.5, run_seconds=60)


def _pod(**annotations: str) -> dict[str, Any]:
    return {"metadata": {"name": "p", "annotations": {f"sim.tandem.dev/{k}": v for k, v in annotations.items()}}}


@pytest.mark.parametrize(("annotations", "expected"), [
    ({}, BASE),
    ({"run-seconds": "2.5"}, PodScript(start_seconds=0.5, run_seconds=2.5)),
    ({"exit-code": "3", "termination-message": '{"class": "interconnect"}'},
     PodScript(start_seconds=0.5, run_seconds=60, exit_code=3, termination_message='{"class": "interconnect"}')),
    ({"start-seconds": "0"}, PodScript(start_seconds=0, run_seconds=60)),
])
def test_a_pods_annotations_change_its_nodes_script(annotations: dict[str, str], expected: PodScript) -> None:
    assert pod_script(_pod(**annotations), BASE) == expected


@pytest.mark.parametrize(("annotations", "says"), [
    ({"exit-code": "three"}, "sim.tandem.dev/exit-code: 'three' is not a number"),
    ({"exit-code": "300"}, "exitCode"),
    ({"run-seconds": "-1"}, "runSeconds"),
])
def test_an_unreadable_script_is_refused_naming_the_annotation(annotations: dict[str, str], says: str) -> None:
    with pytest.raises(ScriptError, match=re.escape(says)):
        pod_script(_pod(**annotations), BASE)


def test_the_cluster_config_marks_simulated_nodes() -> None:
    config = ClusterConfig.model_validate({"pools": [
        {"name": "sim", "accelerator": "npu", "nodes": 2, "simulatedPods": {"startSeconds": 1, "runSeconds": 5}},
        {"name": "real", "accelerator": "gpu", "nodes": 1}]})
    nodes = {n["metadata"]["name"]: n for n in node_manifests(config)}
    assert node_script(nodes["sim-node-0"]) == PodScript(start_seconds=1, run_seconds=5)
    assert node_script(nodes["real-node-0"]) is None
    broken = {"metadata": {"annotations": {"tandem.dev/simulated-pods": json.dumps({"runSeconds": "x"})}}}
    with pytest.raises(ScriptError, match=re.escape("tandem.dev/simulated-pods")):
        node_script(broken)
