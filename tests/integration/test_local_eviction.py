"""The local API's eviction subresource (pods/<name>/eviction), as the real one behaves
(pkg/registry/core/pod/storage/eviction.go): the pod gets the DisruptionTarget condition (reason
EvictionByEvictionAPI) and is then deleted gracefully, so its process gets SIGTERM and what it exits with is
its pod's phase; `kubectl drain` uses it. No PodDisruptionBudget can exist here (policy/v1 budgets are not
served), so no eviction is refused for one."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import kubernetes
import pytest

NS = "default"
KEEP = "test.tandem.dev/keep"  # a finalizer that keeps the pod readable after the kubelet is done with it
# Saves nothing, but behaves like a trainer that checkpoints and exits 0 when told to stop (Megatron-LM's
# --exit-signal-handler): the pod ends Succeeded although it was evicted.
EXITS_0_ON_SIGTERM = ("import signal, sys, time\n"
                      "signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))\n"
                      "print('ready', flush=True)\n"
                      "time.sleep(300)\n")


def _pod(name: str, finalizers: list[str] | None = None) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, **({"finalizers": finalizers} if finalizers else {})},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 10, "containers": [
                {"name": "main", "image": "tandem-runtime:test",
                 "command": [sys.executable, "-c", EXITS_0_ON_SIGTERM]}]}}


def _read(core: Any, name: str) -> dict[str, Any]:
    return json.loads(core.read_namespaced_pod(name, NS, _preload_content=False).data)


def _running(core: Any, name: str, wait_for: Callable[..., Any]) -> dict[str, Any]:
    """The pod once its process has set its SIGTERM handler (it prints "ready" then)."""
    wait_for(lambda: "ready" in core.read_namespaced_pod_log(name, NS), timeout=30, what=f"pod {name} to be ready")
    return _read(core, name)


def _gone(core: Any, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, NS)
    except kubernetes.client.ApiException as exc:
        return exc.status == 404
    return False


def _evict(core: Any, name: str, **body: Any) -> dict[str, Any]:
    """The Status the API answers (the client would read it as an Eviction)."""
    eviction = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": name, "namespace": NS}, **body}
    return json.loads(core.create_namespaced_pod_eviction(name, NS, eviction, _preload_content=False).data)


def test_an_evicted_pod_is_marked_for_disruption_and_stopped_gracefully(core: Any, wait_for: Any) -> None:
    _running(core, core.create_namespaced_pod(NS, _pod("evicted", [KEEP])).metadata.name, wait_for)
    assert _evict(core, "evicted")["status"] == "Success"
    done = wait_for(lambda: (p := _read(core, "evicted"))["status"].get("phase") in ("Succeeded", "Failed") and p,
                    timeout=30, what="the evicted pod to stop")
    disruption = [c for c in done["status"]["conditions"] if c["type"] == "DisruptionTarget"]
    assert [(c["status"], c["reason"], c["message"]) for c in disruption] == [
        ("True", "EvictionByEvictionAPI", "Eviction API: evicting")]
    # Exit 0 on SIGTERM: the phase alone says "finished"; only the condition tells it was stopped from outside.
    assert done["status"]["phase"] == "Succeeded", json.dumps(done["status"])
    # Deleted, and confirmed by the kubelet's final delete (grace 0): the finalizer alone keeps it.
    assert done["metadata"]["deletionTimestamp"] and done["metadata"]["deletionGracePeriodSeconds"] == 0
    core.patch_namespaced_pod("evicted", NS, {"metadata": {"finalizers": None}})
    wait_for(lambda: _gone(core, "evicted"), timeout=30, what="the evicted pod to go")


def test_a_pod_held_by_a_finalizer_is_still_stopped_gracefully(core: Any, wait_for: Any) -> None:
    """A finalizer keeps the object, not the process: the kubelet sends SIGTERM and waits the grace period, and
    the pod goes once the finalizer is released (it was SIGKILLed at once before)."""
    _running(core, core.create_namespaced_pod(NS, _pod("held", [KEEP])).metadata.name, wait_for)
    core.delete_namespaced_pod("held", NS)
    done = wait_for(lambda: (p := _read(core, "held"))["status"].get("phase") in ("Succeeded", "Failed") and p,
                    timeout=30, what="the deleted pod to stop")
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 0
    core.patch_namespaced_pod("held", NS, {"metadata": {"finalizers": None}})
    wait_for(lambda: _gone(core, "held"), timeout=30, what="the pod to go with its finalizer")


IGNORES_SIGTERM = ("import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\nprint('ready', flush=True)\n"
                   "time.sleep(300)\n")


def test_a_force_deletion_shortens_the_grace_of_a_pod_held_by_a_finalizer(core: Any, wait_for: Any) -> None:
    """`kubectl delete --grace-period=0 --force` after a graceful delete: the API server shortens the pending grace
    period to 0 (rest.BeforeDelete), so the kubelet kills the process now, finalizer or not."""
    pod = _pod("stubborn", [KEEP])
    pod["spec"]["terminationGracePeriodSeconds"] = 300
    pod["spec"]["containers"][0]["command"] = [sys.executable, "-c", IGNORES_SIGTERM]
    _running(core, core.create_namespaced_pod(NS, pod).metadata.name, wait_for)
    core.delete_namespaced_pod("stubborn", NS)
    assert _read(core, "stubborn")["metadata"]["deletionGracePeriodSeconds"] == 300
    core.delete_namespaced_pod("stubborn", NS, grace_period_seconds=0)
    done = wait_for(lambda: (p := _read(core, "stubborn"))["status"].get("phase") in ("Succeeded", "Failed") and p,
                    timeout=30, what="the force-deleted pod to stop")
    assert done["status"]["containerStatuses"][0]["state"]["terminated"]["signal"] == 9
    core.patch_namespaced_pod("stubborn", NS, {"metadata": {"finalizers": None}})
    wait_for(lambda: _gone(core, "stubborn"), timeout=30, what="the pod to go with its finalizer")


@pytest.mark.parametrize(("name", "body", "status", "says"), [
    ("nobody", {}, 404, 'pods "nobody" not found'),
    ("refused", {"metadata": {"name": "other", "namespace": NS}}, 400,
     "name in URL does not match name in Eviction object"),
    ("refused", {"kind": "Pod"}, 400, "not a Eviction object"),
    ("refused", {"deleteOptions": {"preconditions": {"uid": "not-its-uid"}}}, 409,
     "the UID in the precondition (not-its-uid) does not match the UID in record"),
])
def test_an_eviction_that_cannot_be_done_is_refused_and_changes_nothing(
        core: Any, wait_for: Any, name: str, body: dict[str, Any], status: int, says: str) -> None:
    if name == "refused" and _gone(core, "refused"):
        _running(core, core.create_namespaced_pod(NS, _pod("refused")).metadata.name, wait_for)
    before = None if name == "nobody" else _read(core, name)
    with pytest.raises(kubernetes.client.ApiException) as refused:
        _evict(core, name, **body)
    assert refused.value.status == status and says in json.loads(refused.value.body)["message"], refused.value.body
    if before is not None:
        after = _read(core, name)
        assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_a_dry_run_eviction_changes_nothing(core: Any, wait_for: Any) -> None:
    if _gone(core, "refused"):
        _running(core, core.create_namespaced_pod(NS, _pod("refused")).metadata.name, wait_for)
    before = _read(core, "refused")
    assert _evict(core, "refused", deleteOptions={"dryRun": ["All"]})["status"] == "Success"
    assert _read(core, "refused")["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_the_eviction_subresource_takes_only_create(api_client: Any) -> None:
    url = f"{api_client.configuration.host}/api/v1/namespaces/{NS}/pods/refused/eviction"
    for method in ("GET", "PUT", "PATCH", "DELETE"):
        answer = api_client.call_api(method, url, header_params={"Content-Type": "application/merge-patch+json"},
                                     body={} if method in ("PUT", "PATCH") else None)
        answer.read()
        assert answer.status == 405, (method, answer.data)


def test_kubectl_drain_cordons_the_node_and_evicts_its_pods(core: Any, kubectl: Any, wait_for: Any) -> None:
    """`kubectl drain` finds the eviction subresource in discovery (pods/eviction, kind Eviction, group policy)
    and evicts through it; a bare pod needs --force."""
    node = _running(core, core.create_namespaced_pod(NS, _pod("drained")).metadata.name, wait_for)["spec"]["nodeName"]
    drained = kubectl("drain", node, "--force", "--ignore-daemonsets", "--timeout=60s")
    assert f'evicting pod {NS}/drained' in drained.stderr + drained.stdout, drained.stderr
    assert f"node/{node} drained" in drained.stdout
    assert _gone(core, "drained")
    assert core.read_node(node).spec.unschedulable is True
    kubectl("uncordon", node)
