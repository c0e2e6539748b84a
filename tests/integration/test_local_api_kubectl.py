"""The real kubectl against the local API, as a user would type it."""

import json
import subprocess
import threading
import time
from typing import Any

import pytest
import yaml
from manifests import cases, example

from tandem.localcluster.patches import merge_patch


def test_apply_crds_and_examples_then_get_shows_printer_columns(kubectl: Any) -> None:
    applied = kubectl("apply", "-f", "crds/", "-f", "examples/")
    assert "trainingjob.tandem.dev/llama-demo created" in applied.stdout
    assert "Warning" not in applied.stderr
    pools = kubectl("get", "ap").stdout.splitlines()
    assert pools[0].split() == ["NAME", "ACCELERATOR", "RESOURCE", "NODES", "READY", "FAULTY", "AGE"]
    assert {line.split()[0] for line in pools[1:]} == {"ascend-910b", "h20"}
    jobs = kubectl("get", "tj").stdout.splitlines()
    assert jobs[0].split() == ["NAME", "POOL", "PHASE", "ATTEMPT", "RESTARTS", "FAILOVERS", "CHECKPOINT", "AGE"]
    assert jobs[1].startswith("llama-demo")
    # Re-applying what is there changes nothing.
    assert "unchanged" in kubectl("apply", "-f", "examples/").stdout


def test_printer_columns_show_the_status(kubectl: Any) -> None:
    kubectl("apply", "-f", "examples/trainingjob-llama-demo.yaml")
    status = {"status": {"pool": "ascend-910b", "phase": "Running", "attempt": 2, "restarts": 1,
                         "lastCheckpoint": {"step": 400}}}
    kubectl("patch", "tj", "llama-demo", "--subresource=status", "--type=merge", "-p", json.dumps(status))
    row = kubectl("get", "tj", "llama-demo", "--no-headers").stdout.split()
    assert row[:7] == ["llama-demo", "ascend-910b", "Running", "2", "1", "0", "400"]


@pytest.mark.parametrize("case", cases("bad_trainingjobs.yaml"))
def test_broken_trainingjob_is_refused_naming_the_field(kubectl: Any, case: dict[str, Any]) -> None:
    _assert_refused(kubectl, "TrainingJob", case)


@pytest.mark.parametrize("case", cases("bad_acceleratorpools.yaml"))
def test_broken_pool_is_refused_naming_the_field(kubectl: Any, case: dict[str, Any]) -> None:
    _assert_refused(kubectl, "AcceleratorPool", case)


def test_a_pool_name_longer_than_a_label_value_is_refused(kubectl: Any) -> None:
    """The pool's pods carry its name in their tandem.dev/pool label, at most 63 characters: a longer name used to
    make every pod create on the pool fail."""
    for name, accepted in (("p" * 64, False), ("p" * 63, True)):
        manifest = merge_patch(example("AcceleratorPool"), {"metadata": {"name": name}})
        result = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
        assert (result.returncode == 0) == accepted, result.stderr
        if not accepted:
            assert "metadata.name must be at most 63 characters" in result.stderr, result.stderr


def _assert_refused(kubectl: Any, kind: str, case: dict[str, Any]) -> None:
    manifest = merge_patch(example(kind), {"metadata": {"name": f"broken-{case['case']}"}, "spec": case["spec"]})
    result = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0
    assert case["field"] in result.stderr, result.stderr
    plural = "tj" if kind == "TrainingJob" else "ap"
    missing = kubectl("get", plural, manifest["metadata"]["name"], check=False)
    assert missing.returncode != 0 and "NotFound" in missing.stderr


def test_label_selector_filters_pods(kubectl: Any) -> None:
    pods = []
    for job, rank in (("x", 0), ("x", 1), ("z", 0)):
        pods.append({"apiVersion": "v1", "kind": "Pod",
                     "metadata": {"name": f"{job}-a1-{rank}", "labels": {"tandem.dev/job": job}},
                     "spec": {"containers": [{"name": "trainer", "image": "runtime"}], "restartPolicy": "Never"}})
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump_all(pods))
    names = kubectl("get", "pods", "-l", "tandem.dev/job=x", "-o", "name").stdout.split()
    assert names == ["pod/x-a1-0", "pod/x-a1-1"]


def test_delete_trainingjob(kubectl: Any) -> None:
    kubectl("apply", "-f", "examples/trainingjob-llama-demo.yaml")
    assert 'trainingjob.tandem.dev "llama-demo" deleted' in kubectl("delete", "tj", "llama-demo").stdout
    assert "NotFound" in kubectl("get", "tj", "llama-demo", check=False).stderr


def test_describe_and_explain(kubectl: Any) -> None:
    kubectl("apply", "-f", "examples/pool-ascend-910b.yaml")
    described = kubectl("describe", "ap", "ascend-910b").stdout
    assert "Accelerator:" in described and "huawei.com/Ascend910" in described
    explained = kubectl("explain", "trainingjob.spec.faultPolicy").stdout
    assert "failoverAfterFaults" in explained
    # Every field a team's own code needs is documented where kubectl explain looks (issue 16).
    template = kubectl("explain", "trainingjob.spec.podTemplate.spec").stdout
    for field in ("volumes", "initContainers", "containers", "serviceAccountName", "imagePullSecrets",
                  "schedulerName", "priorityClassName", "securityContext", "nodeSelector", "tolerations"):
        assert field in template, field
    container = kubectl("explain", "trainingjob.spec.container").stdout
    for field in ("byAccelerator", "volumeMounts", "securityContext", "shmSize", "workingDir"):
        assert field in container, field
    assert "merged over" in kubectl("explain", "trainingjob.spec.container.byAccelerator.gpu").stdout


def test_get_watch_streams_changes(kubectl: Any) -> None:
    kubectl("apply", "-f", "examples/pool-ascend-910b.yaml")
    process = subprocess.Popen(["/usr/bin/kubectl", "get", "ap", "--watch-only", "--output-watch-events"],
                               env=kubectl.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines: list[list[str]] = []
    reader = threading.Thread(target=lambda: lines.extend(line.split() for line in process.stdout), daemon=True)
    reader.start()
    try:
        # kubectl's watch may start after a first change: keep changing the pool until one shows.
        deadline = time.monotonic() + 30
        value = 0
        while not any(row[:2] == ["MODIFIED", "ascend-910b"] for row in lines) and time.monotonic() < deadline:
            value += 1
            kubectl("label", "ap", "ascend-910b", f"watched={value}", "--overwrite")
            reader.join(timeout=0.5)
        assert lines[0][:2] == ["EVENT", "NAME"]
        assert any(row[:2] == ["MODIFIED", "ascend-910b"] for row in lines), lines
    finally:
        process.kill()
        process.wait(timeout=10)


def test_nodes_listed(kubectl: Any) -> None:
    nodes = kubectl("get", "nodes", "-l", "tandem.dev/pool=h20", "--no-headers").stdout.splitlines()
    assert len(nodes) == 2 and all(" Ready " in line for line in nodes)
