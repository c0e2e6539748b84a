"""What one tenant's job must not do to itself or to the others, with the real operator on the local cluster:
gangs that deadlock, recreated jobs that adopt old pods, refusals that loop in silence."""

from __future__ import annotations

import json
import sys
from functools import partial
from itertools import pairwise
from pathlib import Path
from typing import Any

import clusters
import operator_jobs
import pytest
import yaml
from kubernetes.client.exceptions import ApiException
from operator_jobs import event_reasons

from tandem.operator.api import TrainingJob

GROUP, VERSION, PLURAL = "tandem.dev", "v1alpha1", "trainingjobs"
NS = "default"
wait_phase = partial(operator_jobs.wait_phase, timeout=90)


# Three Ascend nodes of 8 devices; the pools take all 8 per pod, so each node holds one pod.
cluster = pytest.fixture(scope="module", name="cluster")(clusters.three_ascend_nodes)


def job(name: str, code: str, nodes: int = 2, pools: list[str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
        "spec": {"nodes": nodes, "pools": pools or ["ascend-910b"],
                 "container": {"command": [sys.executable, "-P", "-c", code]},
                 "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "ckpt"}}},
                 "faultPolicy": {"backoffSeconds": 0, "maxBackoffSeconds": 0}},
    }


def test_three_two_node_gangs_on_three_nodes_run_one_after_another(custom: Any, core: Any, wait_for: Any) -> None:
    """Each job used to take one node and wait for a second one for ever."""
    names = ["gang-a", "gang-b", "gang-c"]
    for name in names:
        custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job(name, "import time; time.sleep(3)"))
    try:
        for name in names:
            done = wait_phase(custom, wait_for, name, "Succeeded")
            assert (done["status"]["attempt"], done["status"]["restarts"], done["status"]["faults"]) == (1, 0, [])
        waited = [name for name in names if "WaitingForRoom" in event_reasons(core, name)]
        # The first ran at once; the others waited for room, without pods (usually both; one only if the first
        # finished before the third was first looked at). Without admission none ever waits.
        assert 1 <= len(waited) <= 2, waited
        for name in names:  # one pod per node: ranks never pack onto one node
            pods = core.list_namespaced_pod(NS, label_selector=f"tandem.dev/job={name}").items
            assert len({p.spec.node_name for p in pods}) == 2
    finally:
        for name in names:
            custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name)


def test_a_job_created_again_under_the_same_name_never_adopts_the_old_pods(
    custom: Any, core: Any, wait_for: Any
) -> None:
    """Used to: 409 on create taken as "mine", so the new job followed the old job's pod (a spurious fault, a
    healthy node excluded, the old lastCheckpoint). Here garbage collection of the old pods is held up (a
    finalizer, as a slow kubelet or a volume detach would) while the job is applied again."""
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job("again", "import time; time.sleep(300)"))
    wait_phase(custom, wait_for, "again", "Running")
    core.patch_namespaced_pod("again-a1-0", NS, {"metadata": {"finalizers": ["example.org/hold"]}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "again")
    wait_for(lambda: not [j for j in custom.list_namespaced_custom_object(GROUP, VERSION, NS, PLURAL)["items"]
                          if j["metadata"]["name"] == "again"], what="the first job to be gone")
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job("again", "pass"))
    try:
        wait_for(lambda: "NameTaken" in event_reasons(core, "again"), timeout=30,
                 what="the new job to say the pod name is still taken")
        assert custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "again")["status"]["faults"] == []
        core.patch_namespaced_pod("again-a1-0", NS, {"metadata": {"finalizers": None}})  # the GC can finish
        done = wait_phase(custom, wait_for, "again", "Succeeded")["status"]
        assert (done["attempt"], done["faults"], done["excludedNodes"], done["restarts"]) == (1, [], [], 0)
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "again")


def _refusal(call: Any) -> dict[str, Any]:
    with pytest.raises(ApiException) as refused:
        call()
    assert refused.value.status == 422, refused.value.body
    return dict(json.loads(refused.value.body))


def test_names_numbers_and_attempt_shaping_fields_are_refused_by_the_api_naming_the_field(
    custom: Any, wait_for: Any
) -> None:
    """A 58-character name, a dot or a leading digit used to leave the job Pending for ever (the pods' and
    the Service's names were refused); 1e12 nodes drove the operator out of memory; nodes 2 -> 3 mid-run
    recorded a spurious fault."""
    for name in ("a" * 53, "llama.v2", "7b-llama"):
        body = _refusal(lambda name=name: custom.create_namespaced_custom_object(
            GROUP, VERSION, NS, PLURAL, job(name, "pass")))
        assert "metadata.name must be a DNS-1035 label of at most 52 characters" in body["message"]
    huge = job("huge", "pass")
    huge["spec"]["nodes"] = 10**12
    assert "spec.nodes" in _refusal(lambda: custom.create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, huge))["message"]
    contract = job("steal", "pass")
    contract["spec"]["container"]["env"] = [{"name": "MASTER_ADDR", "value": "victim-a1-0.victim.default.svc"}]
    assert "env MASTER_ADDR is a pod-contract variable" in _refusal(lambda: custom.create_namespaced_custom_object(
        GROUP, VERSION, NS, PLURAL, contract))["message"]

    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job("shaped", "import time; time.sleep(60)"))
    try:
        before = wait_phase(custom, wait_for, "shaped", "Running")
        for change, field in (({"nodes": 3}, "nodes"), ({"pools": ["h20"]}, "pools"),
                              ({"checkpoint": {"path": "/elsewhere"}}, "checkpoint.path")):
            body = _refusal(lambda change=change: custom.patch_namespaced_custom_object(
                GROUP, VERSION, NS, PLURAL, "shaped", {"spec": change}))
            assert f"{field} is immutable: it shapes every attempt" in body["message"]
        after = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "shaped")
        assert after["spec"] == before["spec"] and after["status"]["faults"] == []
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "shaped")


def test_a_quota_that_refuses_a_pod_is_said_in_the_status_and_retried_with_backoff(
    custom: Any, core: Any, kubectl: Any, wait_for: Any
) -> None:
    """A 403 on create used to be retried every 2 s for ever, the job Pending with no Event."""
    core.create_namespace({"metadata": {"name": "tight"}})
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "one-pod"},
             "spec": {"hard": {"pods": "1"}}}
    kubectl("apply", "-n", "tight", "-f", "-", stdin=yaml.safe_dump(quota))
    squeezed = job("squeezed", "import time; time.sleep(1)")
    custom.create_namespaced_custom_object(GROUP, VERSION, "tight", PLURAL, squeezed)

    def refused() -> dict[str, Any] | None:
        status = custom.get_namespaced_custom_object(GROUP, VERSION, "tight", PLURAL, "squeezed").get("status", {})
        # An earlier reconcile (admission, the first pod) may have said Reconciled=True before the refused create.
        return next((c for c in status.get("conditions", []) if c["type"] == "Reconciled" and c["status"] == "False"),
                    None)

    condition = wait_for(refused, timeout=30, what="the refusal in the job's status")
    assert condition["reason"] == "CreateRefused" and condition["status"] == "False"
    assert 'pods "squeezed-a1-1" is forbidden: exceeded quota: one-pod, requested: pods=1, used: pods=1' \
        in condition["message"]
    def refusals() -> list[Any]:
        events = core.list_namespaced_event("tight", field_selector="involvedObject.name=squeezed").items
        return [e for e in events if e.reason == "CreateRefused"]

    assert wait_for(refusals, timeout=10, what="the Warning Event")[0].type == "Warning"
    # A backoff (10 s, then 20 s), not a retry every 2 s nor one per event that wakes the job (its own status write,
    # its other pod starting): consecutive refusals stand at least ~10 s apart (timestamps have one-second
    # resolution), however late this test looks (a busy machine only spaces them further).
    times = sorted(e.first_timestamp for e in refusals())
    assert all((later - earlier).total_seconds() >= 9 for earlier, later in pairwise(times)), times
    core.delete_namespaced_resource_quota("one-pod", "tight")
    done = wait_for(lambda: (j := custom.get_namespaced_custom_object(GROUP, VERSION, "tight", PLURAL, "squeezed"))
                    ["status"].get("phase") == "Succeeded" and j, timeout=90, what="squeezed to succeed")
    assert done["status"]["restarts"] == 0


def test_a_stale_replica_never_deletes_a_newer_attempts_pods(
    custom: Any, core: Any, api_client: Any, wait_for: Any, tmp_path: Path
) -> None:
    """Replica B (the real operator) moved the job to attempt 2; replica A acts on what it read during attempt 1.
    Its status write is guarded by the old resourceVersion, its view of a newer attempt's pods decides nothing,
    and its deletes carry the uid it saw, which the API server checks."""
    from tandem.operator.controller import Controller
    from tandem.operator.kube import Conflict, Kube
    from tandem.operator.reconcile import Decision

    fault = {"class": "interconnect", "reason": "HcclExecTimeout", "message": "EI0002", "rank": 1}
    program = ("import json, os, sys, time\n"
               "if os.environ['TANDEM_ATTEMPT'] == '1' and os.environ['TANDEM_NODE_RANK'] == '1':\n"
               # Fails once the test has read attempt 1 (it slept 3 s, and a slow test read attempt 2 instead).
               f"    while not os.path.exists({str(tmp_path / 'fail-now')!r}): time.sleep(0.05)\n"
               f"    open(os.environ['TANDEM_TERMINATION_LOG'], 'w').write({json.dumps(fault)!r})\n"
               "    sys.exit(3)\n"
               "time.sleep(120)\n")
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job("fenced", program))
    try:
        stale_job = wait_phase(custom, wait_for, "fenced", "Running")
        stale_pods = [core.api_client.sanitize_for_serialization(p) for p in core.list_namespaced_pod(
            NS, label_selector="tandem.dev/job=fenced").items]
        (tmp_path / "fail-now").touch()
        wait_for(lambda: custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "fenced")["status"].get(
            "attempt") == 2 and core.list_namespaced_pod(NS, label_selector="tandem.dev/attempt=2").items,
            timeout=60, what="attempt 2")
        wait_phase(custom, wait_for, "fenced", "Running")
        current = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "fenced")

        class StaleKube(Kube):
            pods: list[Any] = []

            def get_job(self, namespace: str, name: str) -> Any:
                return stale_job

            def list_job_pods(self, namespace: str, job: str, uid: str) -> list[Any]:
                return self.pods

        stale = StaleKube(api_client)
        replica_a = Controller(stale)
        replica_a.requeue.after = lambda *_: None  # type: ignore[method-assign]
        # 1. Its old job, today's pods: pods of a newer attempt than its status knows mean its view is stale.
        stale.pods = [core.api_client.sanitize_for_serialization(p) for p in core.list_namespaced_pod(
            NS, label_selector="tandem.dev/job=fenced").items]
        replica_a.reconcile_job(NS, "fenced")
        # 2. Its old job and old pods, rank 1 failed as it saw it: it decides the attempt-1 fault again, and
        # its status write, guarded by the resourceVersion it read, fails before any delete.
        for pod in stale_pods:
            if pod["metadata"]["labels"]["tandem.dev/rank"] == "1":
                pod["status"] = {"phase": "Failed", "containerStatuses": [{"name": "trainer", "state": {"terminated": {
                    "exitCode": 3, "reason": "Error", "message": json.dumps(fault),
                    "finishedAt": "2026-12-02T00:00:00Z"}}}]}
        stale.pods = stale_pods
        replica_a.reconcile_job(NS, "fenced")
        # 3. A delete of a pod it saw under a uid the pod no longer has: the API server refuses it.
        live = core.read_namespaced_pod("fenced-a2-0", NS)
        seen = {"metadata": {"name": "fenced-a2-0", "uid": "a-uid-from-an-older-view"}}
        old = TrainingJob.model_validate(stale_job)
        with pytest.raises(Conflict):
            replica_a._apply(stale_job, old, Decision(status=old.status, delete=["fenced-a2-0"]), [seen])
        # Replica B may still write (its Events, its progress reads); nothing of replica A's stale decision landed.
        after = custom.get_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "fenced")["status"]
        assert (after["attempt"], after["restarts"], after["faults"]) == (
            2, 1, current["status"]["faults"])
        assert core.read_namespaced_pod("fenced-a2-0", NS).metadata.uid == live.metadata.uid
        pods = core.list_namespaced_pod(NS, label_selector="tandem.dev/job=fenced,tandem.dev/attempt=2").items
        assert sorted(p.metadata.name for p in pods if not p.metadata.deletion_timestamp) == [
            "fenced-a2-0", "fenced-a2-1"]
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "fenced")
