"""The shell's promises, with a fake API: retries instead of failures, and the order of writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from builders import NOW, make_job, make_node
from fake_kube import FakeKube
from fake_kube import job_dict as _job
from kubernetes.client.exceptions import ApiException

from tandem.operator import cluster_sync
from tandem.operator.controller import Controller
from tandem.operator.kube import Conflict


def test_status_is_written_before_pods_are_created() -> None:
    kube = FakeKube(_job())
    Controller(kube, clock=lambda: NOW).reconcile_job("ml", "llama")  # type: ignore[arg-type]
    # The Event is part of the write-ahead status, posted after the actions and then cleared.
    assert kube.calls == ["status", "create llama", "create llama-a1-0", "create llama-a1-1", "event AttemptStarted",
                          "status"]
    assert [e["reason"] for e in kube.patches[0]["pendingEvents"]] == ["AttemptStarted"]
    assert kube.patches[1]["pendingEvents"] == []


@pytest.mark.parametrize("error", [ApiException(status=500, reason="Internal Server Error"), ConnectionResetError()])
def test_an_api_error_is_retried_later_and_nothing_else_is_done(error: Exception) -> None:
    kube = FakeKube(_job(), fail=[error])
    controller = Controller(kube, clock=lambda: NOW)  # type: ignore[arg-type]
    requeued: list[float] = []
    controller.requeue.after = lambda ns, name, seconds: requeued.append(seconds)  # type: ignore[method-assign]
    controller.reconcile_job("ml", "llama")
    assert kube.calls == ["status"] and requeued == [2.0]


def test_a_conflict_observes_again_at_once() -> None:
    kube = FakeKube(_job(), fail=[Conflict("stale")])
    Controller(kube, clock=lambda: NOW).reconcile_job("ml", "llama")  # type: ignore[arg-type]
    assert kube.calls[:2] == ["status", "status"] and "create llama-a1-0" in kube.calls


def test_a_burst_of_node_changes_resyncs_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import queue


    monkeypatch.setattr(cluster_sync, "RESYNC_DELAY_SECONDS", 0.2)
    controller = Controller(FakeKube(_job()), clock=lambda: NOW)  # type: ignore[arg-type]
    passes: queue.Queue[int] = queue.Queue()
    controller.reconcile_all = lambda: passes.put(1)  # type: ignore[method-assign]
    controller.sync_all_pools = lambda: None  # type: ignore[method-assign]
    for _ in range(100):  # all within the 0.2 s before the pass starts
        controller.cluster_changed()
    passes.get(timeout=10)
    assert passes.empty()
    controller.cluster_changed()  # a change after the pass gets a pass of its own
    passes.get(timeout=10)


class StandBy:
    def active(self) -> bool:
        return False


def test_a_stand_by_replicas_timers_do_nothing_but_look_again_later() -> None:
    """kopf pauses a replica that a peer outranks; its own requeues and resyncs must not act either."""
    from tandem.operator import controller as module

    kube = FakeKube(_job())
    controller = Controller(kube, clock=lambda: NOW, gate=StandBy())  # type: ignore[arg-type]
    controller.reconcile_all = lambda: pytest.fail("a stand-by replica resynced")  # type: ignore[method-assign]
    rearmed: list[tuple[str, float]] = []
    for timers in (controller.requeue, controller._resyncs):
        timers.after = lambda ns, name, seconds: rearmed.append((name, seconds))  # type: ignore[method-assign]
        timers._fire("ml", "llama")
    assert kube.calls == []
    assert rearmed == [("llama", module.STANDBY_RECHECK_SECONDS)] * 2


def test_a_stopped_controllers_timers_never_fire() -> None:
    kube = FakeKube(_job())
    controller = Controller(kube, clock=lambda: NOW)  # type: ignore[arg-type]
    controller.stop()
    controller.requeue.after("ml", "llama", 0.0)
    controller.cluster_changed()
    assert controller.requeue._timers == {} and controller._resyncs._timers == {} and kube.calls == []


def test_the_view_reads_the_device_plugins_switch_faults_beside_its_device_faults() -> None:
    """Both per-node ConfigMaps of the Ascend device plugin, in its namespace: a switch (UnifiedBus) fault
    makes the node faulty like a chip fault; ConfigMaps of other names are not fault reports."""
    import yaml

    from tandem.operator.controller import ClusterView

    cases = yaml.safe_load((Path(__file__).parents[2] / "data" / "faults" / "ascend_configmaps.yaml").read_text())
    switch = next(c for c in cases if c["id"] == "switch-separate")
    kube = FakeKube(_job())
    kube.list_nodes = lambda: [make_node("node-9", "ascend-910b")]  # type: ignore[method-assign]
    kube.list_device_reports = lambda ns: [switch["configmap"], {"metadata": {"name": "kube-root-ca.crt"}}]  # type: ignore
    view = ClusterView(kube, "kube-system").refresh()  # type: ignore[arg-type]
    faults = view.device_faults["node-9"]
    assert [(f.fault_class.value, f.reason) for f in faults] == [("interconnect", "UnifiedBusFault")]


def test_events_decided_before_a_crash_are_posted_by_the_next_reconcile() -> None:
    """The operator died after the status write and before the Event: the status holds it, and it is posted."""
    job = make_job(status={"phase": "Running", "attempt": 1, "pool": "ascend-910b", "message": "x", "pendingEvents": [
        {"type": "Warning", "reason": "FaultDetected", "message": "HCCL", "time": NOW.isoformat()}]})
    kube = FakeKube(job.model_dump(mode="json", by_alias=True))
    Controller(kube, clock=lambda: NOW).reconcile_job("ml", "llama")  # type: ignore[arg-type]
    assert kube.calls[:2] == ["event FaultDetected", "status"] and kube.patches[0]["pendingEvents"] == []


def test_a_status_patch_clears_fields_with_nulls() -> None:
    """A merge patch that leaves a field out keeps the stored value: nextAttemptTime stayed stale for ever."""
    from tandem.operator.api import TrainingJobStatus

    patch = TrainingJobStatus(phase="Pending", attempt=2).to_patch()
    assert patch["nextAttemptTime"] is None and patch["restartDelaySeconds"] is None and patch["pool"] is None
    assert patch["attempt"] == 2 and patch["lastCheckpoint"] == {"step": 0}


def test_a_refused_create_becomes_a_condition_and_a_warning_with_backoff() -> None:
    """422 or a quota's 403 used to be retried every 2 s for ever, with nothing said."""
    from tandem.operator.kube import Refused

    kube = FakeKube(_job())
    quota = 'pods "llama-a1-0" is forbidden: exceeded quota: pods, requested: pods=1, used: pods=2, limited: pods=2'
    kube.refuse = [Refused("Pod", "llama-a1-0", 403, quota), Refused("Pod", "llama-a1-0", 403, quota)]
    elapsed = [0.0]
    controller = Controller(kube, clock=lambda: NOW, monotonic=lambda: elapsed[0])  # type: ignore[arg-type]
    requeued: list[float] = []
    controller.requeue.after = lambda ns, name, seconds: requeued.append(seconds)  # type: ignore[method-assign]
    controller.reconcile_job("ml", "llama")
    message = f"Pod llama-a1-0: 403 {quota}; retry in 10s"
    # An event that wakes the job within the backoff (its own status write, another pod) creates nothing: had it
    # tried, it would have used up the second refusal below.
    controller.reconcile_job("ml", "llama")
    assert requeued[-1] == 10.0 and [e.reason for e in kube.events].count("CreateRefused") == 1
    elapsed[0] = 10.0  # the requeue fires
    assert kube.job["status"]["conditions"][-1] == {
        "type": "Reconciled", "status": "False", "reason": "CreateRefused", "message": message,
        "lastTransitionTime": NOW.isoformat().replace("+00:00", "Z"), "observedGeneration": 1}
    assert [(e.type, e.reason, e.message) for e in kube.events] == [
        ("Normal", "AttemptStarted", kube.events[0].message), ("Warning", "CreateRefused", message)]
    controller.reconcile_job("ml", "llama")
    assert requeued[0] == 10.0 and 20.0 in requeued  # doubling, not every 2 s
    elapsed[0] = 30.0
    # A retry that decides no Event of its own still posts the refusal at once (not at the next reconcile).
    assert [e.reason for e in kube.events] == ["AttemptStarted", "CreateRefused", "CreateRefused"]
    assert kube.job["status"]["pendingEvents"] == []
    controller.reconcile_job("ml", "llama")  # the quota has room again: the condition says so
    assert kube.job["status"]["conditions"][-1] == {
        "type": "Reconciled", "status": "True", "reason": "Reconciled",
        "message": "reconciled again after CreateRefused", "lastTransitionTime": NOW.isoformat().replace("+00:00", "Z"),
        "observedGeneration": 1}


def test_a_job_whose_reconcile_raises_is_contained_and_told() -> None:
    """One job whose reconcile raises (an OverflowError from a spec no schema bounded) must not stop the others."""
    kube = FakeKube(_job())
    controller = Controller(kube, clock=lambda: NOW)  # type: ignore[arg-type]
    requeued: list[float] = []
    controller.requeue.after = lambda ns, name, seconds: requeued.append(seconds)  # type: ignore[method-assign]
    import tandem.operator.controller as module

    original = module.reconcile
    module.reconcile = lambda observation: (_ for _ in ()).throw(OverflowError("int too large"))  # type: ignore
    try:
        controller.reconcile_job("ml", "llama")
    finally:
        module.reconcile = original
    assert requeued == [10.0]
    assert [(e.type, e.reason) for e in kube.events] == [("Warning", "ReconcileError")]
    assert "OverflowError: int too large" in kube.events[0].message


def test_a_failed_resync_is_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    """One 500 from the API during the cluster-wide pass used to drop it, and device reports with it."""
    import queue


    monkeypatch.setattr(cluster_sync, "RESYNC_RETRY_SECONDS", 0.1)
    controller = Controller(FakeKube(_job()), clock=lambda: NOW)  # type: ignore[arg-type]
    passes: queue.Queue[int] = queue.Queue()
    outcomes = [ApiException(status=500, reason="Internal Server Error"), None]

    def reconcile_all() -> None:
        passes.put(1)
        error = outcomes.pop(0)
        if error:
            raise error

    controller.reconcile_all = reconcile_all  # type: ignore[method-assign]
    controller.sync_all_pools = lambda: None  # type: ignore[method-assign]
    controller._resync()
    passes.get(timeout=10)
    passes.get(timeout=10)  # the retry
    assert outcomes == []


def test_a_job_failed_for_an_invalid_spec_starts_again_once_its_spec_is_fixed() -> None:
    from tandem.operator.api import TrainingJob

    failed = {"phase": "Failed", "message": "invalid spec: ...", "completionTime": NOW.isoformat(), "conditions": [
        {"type": "Failed", "status": "True", "reason": "InvalidSpec", "message": "spec.nodes: ...",
         "lastTransitionTime": NOW.isoformat(), "observedGeneration": 1}]}
    fixed = make_job(status=failed).model_dump(mode="json", by_alias=True)
    fixed["metadata"]["generation"] = 2
    kube = FakeKube(fixed)
    controller = Controller(kube, clock=lambda: NOW)  # type: ignore[arg-type]
    requeued: list[float] = []
    controller.requeue.after = lambda ns, name, seconds: requeued.append(seconds)  # type: ignore[method-assign]
    controller.reconcile_job("ml", "llama")
    assert [(e.type, e.reason) for e in kube.events] == [("Normal", "SpecFixed")]
    restarted = TrainingJob.model_validate(kube.job).status
    assert (restarted.phase.value, restarted.attempt, restarted.conditions, restarted.completion_time) == (
        "Pending", 0, [], None)
    assert requeued == [0.1]
    controller.reconcile_job("ml", "llama")
    assert TrainingJob.model_validate(kube.job).status.attempt == 1
    # Failed for an invalid spec at the current generation: still Failed, nothing done.
    unchanged = make_job(status=failed).model_dump(mode="json", by_alias=True)
    kube = FakeKube(unchanged)
    Controller(kube, clock=lambda: NOW).reconcile_job("ml", "llama")  # type: ignore[arg-type]
    assert kube.calls == []


def test_one_job_that_raises_does_not_stop_the_pass_over_the_others() -> None:
    """The cluster-wide pass (after a device report or a node change) reconciles every job, whatever one does."""
    import tandem.operator.controller as module

    good, bad = _job(), make_job(name="bad").model_dump(mode="json", by_alias=True)
    kube = FakeKube(good)
    kube.list_jobs = lambda namespaces=None: [bad, good]  # type: ignore[attr-defined]
    kube.get_job = lambda namespace, name: bad if name == "bad" else kube.job  # type: ignore[method-assign]
    controller = Controller(kube, clock=lambda: NOW)  # type: ignore[arg-type]
    controller.requeue.after = lambda *_: None  # type: ignore[method-assign]
    original = module.reconcile

    def reconcile(observation: Any) -> Any:
        if observation.job.metadata["name"] == "bad":
            raise OverflowError("int too large to convert to float")
        return original(observation)

    module.reconcile = reconcile  # type: ignore[assignment]
    try:
        controller.reconcile_all()  # queues every job; the workers reconcile them
        assert controller.queue.wait_idle(30)
    finally:
        module.reconcile = original
    assert "create llama-a1-0" in kube.calls


def test_every_api_call_gives_up_after_its_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A hung API server (it accepts the connection and never answers) used to hang the reconcile for ever."""
    import socket
    import threading
    import time

    import kubernetes
    import urllib3

    from tandem.operator import kube as kube_module
    from tandem.operator.kube import Kube

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    held: list[socket.socket] = []
    threading.Thread(target=lambda: held.append(server.accept()[0]), daemon=True).start()
    monkeypatch.setitem(kube_module.CALL, "_request_timeout", (0.5, 0.5))
    configuration = kubernetes.client.Configuration()
    configuration.host = f"http://127.0.0.1:{server.getsockname()[1]}"
    configuration.retries = 0
    started = time.monotonic()
    with kubernetes.client.ApiClient(configuration) as client, pytest.raises(urllib3.exceptions.HTTPError):
        Kube(client).get_job("ml", "llama")
    assert time.monotonic() - started < 5
    server.close()


def test_every_client_call_in_kube_py_carries_the_timeout() -> None:
    import ast

    tree = ast.parse((Path(__file__).parents[3] / "operator" / "kube.py").read_text())
    calls = [node for node in ast.walk(tree) if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
             and isinstance(node.func.value, ast.Attribute) and node.func.value.attr in ("core", "custom")]
    assert calls and all(any(k.arg is None and getattr(k.value, "id", "") == "CALL" for k in c.keywords)
                         for c in calls), [c.lineno for c in calls]


def test_the_node_view_waits_for_a_full_list_before_trusting_the_node_watch() -> None:
    """kopf delivers its initial node listing one event at a time: a reconcile between the first and the last saw a
    pool with one of its two nodes and waited for room (a CI run's first Event was WaitingForRoom, 2026-12-03)."""
    from tandem.operator.controller import ClusterView

    kube = FakeKube(_job())
    nodes = [make_node("node-0", "ascend-910b"), make_node("node-1", "ascend-910b")]
    kube.list_nodes = lambda: nodes  # type: ignore[method-assign]
    kube.list_device_reports = lambda ns: []  # type: ignore[method-assign]
    view = ClusterView(kube, "kube-system", ttl=3600.0)  # type: ignore[arg-type]
    view.observe_reports([])  # the device-report poll ran first
    view.observe_node(None, nodes[0])  # the watch's listing has delivered one node so far
    assert [n["metadata"]["name"] for n in view.refresh().nodes] == ["node-0", "node-1"]
    view.observe_node(None, nodes[1])
    gone = {**nodes[0], "metadata": {**nodes[0]["metadata"], "resourceVersion": "99"}}
    view.observe_node("DELETED", gone)  # once seeded by a list, the watch alone keeps the view
    assert [n["metadata"]["name"] for n in view.refresh().nodes] == ["node-1"]
