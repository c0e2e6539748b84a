"""The simulated kubelet keeps going where a real one does: a pod it cannot handle fails on its own
while the others keep running, and what `kubectl run` creates starts (or fails, saying why).
Pods are left to the module's cluster, whose end stops their processes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest
from processes import pod_pid, process_alive

from tandem.localcluster.containers import StartError, argv

NS = "default"
WaitFor = Callable[..., Any]


def _pod(name: str, command: list[str], **container: Any) -> dict[str, Any]:
    main = {"name": "main", "image": "tandem-runtime:test", "command": command, **container}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1, "containers": [main]}}


def _get(core: kubernetes.client.CoreV1Api, name: str) -> dict[str, Any]:
    return json.loads(core.read_namespaced_pod(name, NS, _preload_content=False).data)


def _phase(core: kubernetes.client.CoreV1Api, name: str, *phases: str) -> dict[str, Any] | None:
    pod = _get(core, name)
    return pod if pod["status"].get("phase") in phases else None


def _store_pod(cluster: Any, manifest: dict[str, Any]) -> None:
    """Write a pod straight into the store, past the API server's validation, as a pod the kubelet
    could not handle would reach it if the API let it through."""
    api = cluster.api
    body = {**manifest, "status": {"phase": "Pending"}}
    cluster.call(lambda: api.store.create(api.types[("", "v1", "pods")], NS, body))


# Specs the API server refuses; each used to raise out of the kubelet and stop it for every pod.
BAD_SPECS = {
    "no-containers": [],
    "env-without-name": [{"name": "main", "image": "busybox", "command": ["true"], "env": [{"value": "x"}]}],
}


@pytest.mark.parametrize("case", sorted(BAD_SPECS))
def test_a_pod_the_kubelet_cannot_handle_fails_alone(cluster: Any, core: Any, wait_for: WaitFor, case: str) -> None:
    before, after = f"before-{case}", f"after-{case}"
    core.create_namespaced_pod(NS, _pod(before, ["python", "-c", "import time; time.sleep(60)"]))
    running = wait_for(lambda: _phase(core, before, "Running"), what=f"{before} running")
    bad = f"bad-{case}"
    _store_pod(cluster, {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": bad},
                         "spec": {"restartPolicy": "Never", "containers": BAD_SPECS[case]}})
    failed = wait_for(lambda: _phase(core, bad, "Failed"), what=f"{bad} failed")
    assert failed["status"]["reason"] == "KubeletError", failed["status"]
    assert "local kubelet" in failed["status"]["message"]
    events = core.list_namespaced_event(NS, field_selector=f"involvedObject.name={bad}").items
    assert [e.reason for e in events] == ["KubeletError"] and events[0].type == "Warning"
    # The pod created before still runs, and one created after starts and finishes.
    assert _phase(core, before, "Running") and process_alive(pod_pid(running))
    core.create_namespaced_pod(NS, _pod(after, ["python", "-c", "print('after')"]))
    done = wait_for(lambda: _phase(core, after, "Succeeded", "Failed"), what=f"{after} finished")
    assert done["status"]["phase"] == "Succeeded", done["status"]


@pytest.mark.parametrize(("name", "args", "logged"), [
    ("args-only", ["--", "sh", "-c", "echo ran with args only; sleep 1"], "ran with args only\n"),
    ("with-command", ["--command", "--", "sh", "-c", "echo ran with a command; sleep 1"], "ran with a command\n"),
])
def test_kubectl_run_starts_and_finishes(kubectl: Any, core: Any, wait_for: WaitFor, name: str, args: list[str],
                                         logged: str) -> None:
    kubectl("run", name, "--image=busybox", "--restart=Never", *args)
    wait_for(lambda: _phase(core, name, "Running", "Succeeded"), what=f"{name} started")
    done = wait_for(lambda: _phase(core, name, "Succeeded", "Failed"), what=f"{name} finished")
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert kubectl("logs", name).stdout == logged


def test_kubectl_run_with_the_default_restart_policy_runs(kubectl: Any, core: Any, wait_for: WaitFor) -> None:
    kubectl("run", "always", "--image=busybox", "--", "sleep", "30")
    wait_for(lambda: _phase(core, "always", "Running"), what="always running")
    assert "Running" in kubectl("get", "pod", "always", "--no-headers").stdout


@pytest.mark.parametrize(("name", "args", "says"), [
    ("not-found", ["--", "tandem-no-such-command", "x"], 'exec: "tandem-no-such-command": executable file not found'),
    ("image-only", [], "has no command"),
])
def test_kubectl_run_of_what_cannot_run_fails_visibly(kubectl: Any, core: Any, wait_for: WaitFor, name: str,
                                                      args: list[str], says: str) -> None:
    kubectl("run", name, "--image=busybox", "--restart=Never", *args)
    failed = wait_for(lambda: _phase(core, name, "Failed"), what=f"{name} failed")
    terminated = failed["status"]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["reason"] == "StartError" and terminated["exitCode"] == 128
    assert says in terminated["message"], terminated


def test_args_without_a_command_are_the_process() -> None:
    # An image the local kubelet knows nothing of counts as one without an ENTRYPOINT (busybox,
    # alpine, ubuntu): args replace its CMD and are what runs; with neither, nothing is known to run.
    assert argv({"name": "c", "args": ["sleep", "$(T)"]}, {"T": "1"}) == ["sleep", "1"]
    assert argv({"name": "c", "command": ["sh"], "args": ["-c", "x"]}, {}) == ["sh", "-c", "x"]
    with pytest.raises(StartError, match="has no command"):
        argv({"name": "c", "image": "busybox"}, {})
