"""The local API refuses what a real kube-apiserver refuses, with its texts: names and labels, CEL transition
rules, timestamps, DELETE preconditions and pod-count quotas; driven with the `kubernetes` client and kubectl."""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

GROUP = "strict.example.com"
DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
           "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
           "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")


def _refused(call: Callable[[], Any], status: int = 422) -> dict[str, Any]:
    with pytest.raises(ApiException) as exc:
        call()
    assert exc.value.status == status, exc.value.body
    return json.loads(exc.value.body)


def _causes(body: dict[str, Any]) -> list[str]:
    return [c["field"] for c in body["details"].get("causes", [])]


# --- names and labels ----------------------------------------------------------------------------
def test_a_service_name_must_be_a_dns1035_label(core: Any) -> None:
    body = _refused(lambda: core.create_namespaced_service("default", {
        "metadata": {"name": "1bad"}, "spec": {"ports": [{"port": 80}]}}))
    assert body["reason"] == "Invalid"
    assert body["message"] == f'Service "1bad" is invalid: metadata.name: Invalid value: "1bad": {DNS1035}'
    assert _causes(body) == ["metadata.name"]
    long = "s" * 64
    body = _refused(lambda: core.create_namespaced_service("default", {"metadata": {"name": long},
                                                                       "spec": {"ports": [{"port": 80}]}}))
    assert body["message"].endswith(f'metadata.name: Invalid value: "{long}": must be no more than 63 characters')


def test_pod_names_hostnames_and_namespaces(core: Any) -> None:
    pod = {"metadata": {"name": "rank.0"}, "spec": {"hostname": "Rank_0", "subdomain": "job",
                                                   "containers": [{"name": "c", "image": "i"}]}}
    body = _refused(lambda: core.create_namespaced_pod("default", pod))
    assert _causes(body) == ["spec.hostname"]
    assert 'Invalid value: "Rank_0": a lowercase RFC 1123 label' in body["message"]
    body = _refused(lambda: core.create_namespace({"metadata": {"name": "team.a"}}))
    assert _causes(body) == ["metadata.name"]


def test_labels_are_checked_on_create_update_and_patch(core: Any) -> None:
    body = _refused(lambda: core.create_namespaced_config_map("default", {"metadata": {"name": "l", "labels": {
        "tandem.dev/job": "-bad"}}}))
    assert _causes(body) == ["metadata.labels"] and 'Invalid value: "-bad": a valid label must be' in body["message"]
    created = core.create_namespaced_config_map("default", {"metadata": {"name": "labelled", "labels": {"a": "b"}}})
    body = _refused(lambda: core.patch_namespaced_config_map("labelled", "default", {"metadata": {"labels": {
        "a/b/c": "x"}}}))
    assert _causes(body) == ["metadata.labels"] and "a qualified name must consist of" in body["message"]
    created.metadata.labels = {"ok": "x" * 64}
    _refused(lambda: core.replace_namespaced_config_map("labelled", "default", created))
    assert core.read_namespaced_config_map("labelled", "default").metadata.labels == {"a": "b"}


def test_generate_name_gives_valid_names_and_events_keep_their_own_rule(core: Any) -> None:
    for _ in range(3):  # at most 58 characters of the prefix, then 5 generated ones
        name = core.create_namespaced_config_map("default", {"metadata": {"generateName": "c" * 70}}).metadata.name
        assert len(name) == 63 and name.startswith("c" * 58) and re.fullmatch(r"[a-z0-9]+", name)
        name = core.create_namespaced_service("default", {"metadata": {"generateName": "job-"},
                                                          "spec": {"clusterIP": "None"}}).metadata.name
        assert re.fullmatch(r"job-[a-z0-9]{5}", name)
    body = _refused(lambda: core.create_namespaced_service("default", {"metadata": {"generateName": "s" * 64},
                                                                       "spec": {"ports": [{"port": 80}]}}))
    assert _causes(body) == ["metadata.generateName"]  # a Service's prefix is a DNS-1035 label on its own
    event = {"involvedObject": {"kind": "Pod", "name": "x", "namespace": "default"}, "reason": "Test", "message": "m"}
    assert core.create_namespaced_event("default", {**event, "metadata": {"name": "job.17a2b3c"}}).metadata.name
    body = _refused(lambda: core.create_namespaced_event("default", {**event, "metadata": {"name": "job%1"}}))
    assert body["message"].endswith("metadata.name: Invalid value: \"job%1\": may not contain '%'")


# --- custom objects and CEL transition rules ------------------------------------------------------------
SPEC = {"type": "object", "properties": {
    "replicas": {"type": "integer", "x-kubernetes-validations": [
        {"rule": "self == oldSelf", "message": "replicas is immutable"}]},
    "size": {"type": "integer", "x-kubernetes-validations": [
        {"rule": "self >= oldSelf", "messageExpression": "'size may not shrink below ' + string(oldSelf)"}]},
    "mode": {"type": "string", "x-kubernetes-validations": [
        {"rule": "self == oldSelf", "message": "mode is set once"}]},
}}
SCHEMA = {"type": "object", "properties": {"spec": SPEC, "status": {"type": "object", "properties": {
    "phase": {"type": "string"}}}},
    "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('g-')", "message": "names start with g-"}]}


@pytest.fixture(scope="module")
def gadgets(api_client: Any) -> Any:
    """A CRD made for these tests, at run time (Tandem's own CRDs are not needed)."""
    kubernetes.client.ApiextensionsV1Api(api_client).create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": f"gadgets.{GROUP}"},
        "spec": {"group": GROUP, "scope": "Namespaced",
                 "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget", "listKind": "GadgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True, "subresources": {"status": {}},
                               "schema": {"openAPIV3Schema": SCHEMA}}]}})
    return kubernetes.client.CustomObjectsApi(api_client)


def _gadget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Gadget", "metadata": {"name": name},
            "spec": {"replicas": 1, "size": 2, **spec}}


def _patch(gadgets: Any, name: str, spec: dict[str, Any]) -> Any:
    return gadgets.patch_namespaced_custom_object(GROUP, "v1", "default", "gadgets", name, {"spec": spec})


def test_custom_object_names_and_root_rules_see_metadata_name(gadgets: Any) -> None:
    body = _refused(lambda: gadgets.create_namespaced_custom_object(GROUP, "v1", "default", "gadgets",
                                                                    _gadget("g-Bad_Name")))
    assert _causes(body) == ["metadata.name"]
    body = _refused(lambda: gadgets.create_namespaced_custom_object(GROUP, "v1", "default", "gadgets", _gadget("x-1")))
    assert body["message"] == f'Gadget.{GROUP} "x-1" is invalid: <nil>: Invalid value: "object": names start with g-'


def test_transition_rules_refuse_updates_and_patches_and_keep_the_object(gadgets: Any) -> None:
    gadgets.create_namespaced_custom_object(GROUP, "v1", "default", "gadgets", _gadget("g-1"))  # no oldSelf yet
    before = gadgets.get_namespaced_custom_object(GROUP, "v1", "default", "gadgets", "g-1")
    body = _refused(lambda: _patch(gadgets, "g-1", {"replicas": 2}))
    assert body["message"] == (f'Gadget.{GROUP} "g-1" is invalid: spec.replicas: Invalid value: "integer": '
                               "replicas is immutable")
    assert _causes(body) == ["spec.replicas"]
    body = _refused(lambda: gadgets.replace_namespaced_custom_object(
        GROUP, "v1", "default", "gadgets", "g-1", {**before, "spec": {**before["spec"], "size": 1}}))
    assert body["details"]["causes"][0]["message"] == 'Invalid value: "integer": size may not shrink below 2'
    assert gadgets.get_namespaced_custom_object(GROUP, "v1", "default", "gadgets", "g-1") == before
    _patch(gadgets, "g-1", {"size": 3, "mode": "fast"})  # mode did not exist before: nothing to compare
    _refused(lambda: _patch(gadgets, "g-1", {"mode": "slow"}))
    _patch(gadgets, "g-1", {"mode": None})  # removed: nothing to compare either


def test_a_status_write_never_trips_a_spec_transition_rule(gadgets: Any) -> None:
    gadgets.create_namespaced_custom_object(GROUP, "v1", "default", "gadgets", _gadget("g-status", mode="a"))
    gadgets.patch_namespaced_custom_object_status(GROUP, "v1", "default", "gadgets", "g-status",
                                                  {"status": {"phase": "Running"}, "spec": {"replicas": 9}})
    stored = gadgets.get_namespaced_custom_object(GROUP, "v1", "default", "gadgets", "g-status")
    assert stored["status"] == {"phase": "Running"} and stored["spec"]["replicas"] == 1
    # A write to the object itself ignores the status before anything validates it, as the API server does.
    both = {"spec": {"size": 4}, "status": {"phase": 5}}
    gadgets.patch_namespaced_custom_object(GROUP, "v1", "default", "gadgets", "g-status", both)
    stored = gadgets.get_namespaced_custom_object(GROUP, "v1", "default", "gadgets", "g-status")
    assert stored["status"] == {"phase": "Running"} and stored["spec"]["size"] == 4


def test_kubectl_apply_meets_the_transition_rule(gadgets: Any, kubectl: Any) -> None:
    manifest = {**_gadget("g-applied"), "metadata": {"name": "g-applied", "namespace": "default"}}
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    changed = {**manifest, "spec": {**manifest["spec"], "replicas": 5}}
    result = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(changed), check=False)
    assert result.returncode != 0
    assert 'spec.replicas: Invalid value: "integer": replicas is immutable' in result.stderr, result.stderr
    shown = json.loads(kubectl("get", "gadget", "g-applied", "-o", "json").stdout)
    assert shown["spec"]["replicas"] == 1


# --- timestamps -----------------------------------------------------------------------------------------
def test_events_with_offsets_and_fractions_are_normalised_and_kubectl_lists_them(core: Any, kubectl: Any) -> None:
    pod = core.create_namespaced_pod("default", {"metadata": {"name": "timed"}, "spec": {
        "schedulerName": "nobody", "containers": [{"name": "c", "image": "i", "command": ["true"]}]}})
    stamp = datetime.datetime(2026, 12, 2, 10, 0, 0, 250000, tzinfo=datetime.timezone(datetime.timedelta(hours=2)))
    event = kubernetes.client.CoreV1Event(
        metadata=kubernetes.client.V1ObjectMeta(generate_name="timed."), reason="Checked", message="offset times",
        involved_object=kubernetes.client.V1ObjectReference(kind="Pod", name="timed", namespace="default",
                                                           uid=pod.metadata.uid),
        first_timestamp=stamp, last_timestamp=stamp.replace(microsecond=0), event_time=stamp, type="Normal",
        action="Check", reporting_component="tester", reporting_instance="here")
    created = core.create_namespaced_event("default", event, _preload_content=False)
    stored = json.loads(created.data)  # the client sent isoformat(): "+02:00" and ".250000"
    assert (stored["firstTimestamp"], stored["lastTimestamp"], stored["eventTime"]) == (
        "2026-12-02T08:00:00Z", "2026-12-02T08:00:00Z", "2026-12-02T08:00:00.250000Z")
    listed = kubectl("get", "events", "--field-selector", "involvedObject.name=timed").stdout
    assert "Checked" in listed and "offset times" in listed
    assert "offset times" in kubectl("describe", "pod", "timed").stdout
    body = _refused(lambda: core.create_namespaced_event("default", {**json.loads(created.data), "metadata": {
        "name": "timed.bad"}, "eventTime": "2026-12-02T10:00:00+00:00"}), status=400)
    assert body["message"] == ('Event in version "v1" cannot be handled as a Event: parsing time '
                               '"2026-12-02T10:00:00+00:00" as "2006-01-02T15:04:05.000000Z07:00": '
                               'cannot parse "+00:00" as ".000000"')


# --- DELETE preconditions -------------------------------------------------------------------------------
def _options(**preconditions: str) -> kubernetes.client.V1DeleteOptions:
    return kubernetes.client.V1DeleteOptions(preconditions=kubernetes.client.V1Preconditions(**preconditions))


def test_delete_preconditions_are_enforced(core: Any) -> None:
    config_map = core.create_namespaced_config_map("default", {"metadata": {"name": "guarded"}})
    uid, rv = config_map.metadata.uid, config_map.metadata.resource_version
    body = _refused(lambda: core.delete_namespaced_config_map("guarded", "default", body=_options(uid="0")), 409)
    assert body["reason"] == "Conflict" and body["message"] == (
        f'Operation cannot be fulfilled on ConfigMap "guarded": the UID in the precondition (0) does not match the '
        f"UID in record ({uid}). The object might have been deleted and then recreated")
    body = _refused(lambda: core.delete_namespaced_config_map("guarded", "default", body=_options(
        uid=uid, resource_version="1")), 409)
    assert body["message"].endswith(f"the ResourceVersion in the precondition (1) does not match the ResourceVersion "
                                    f"in record ({rv}). The object might have been modified")
    assert core.read_namespaced_config_map("guarded", "default").metadata.uid == uid
    core.delete_namespaced_config_map("guarded", "default", body=_options(uid=uid, resource_version=rv))
    _refused(lambda: core.read_namespaced_config_map("guarded", "default"), 404)


def test_pod_deletions_graceful_or_forced_check_preconditions_first(core: Any, wait_for: Callable[..., Any]) -> None:
    core.create_namespaced_pod("default", {"metadata": {"name": "guarded-pod"}, "spec": {
        "terminationGracePeriodSeconds": 5, "containers": [{"name": "c", "image": "i", "command": ["sleep", "60"]}]}})
    pod = wait_for(lambda: (p := core.read_namespaced_pod("guarded-pod", "default")).status.phase == "Running" and p,
                   what="the pod to run")
    for grace in (None, 0):
        _refused(lambda g=grace: core.delete_namespaced_pod("guarded-pod", "default", grace_period_seconds=g,
                                                            body=_options(uid="0")), 409)
    still = core.read_namespaced_pod("guarded-pod", "default")
    assert still.metadata.deletion_timestamp is None and still.metadata.uid == pod.metadata.uid
    core.delete_namespaced_pod("guarded-pod", "default", grace_period_seconds=0,
                               body=_options(uid=pod.metadata.uid))
    _refused(lambda: core.read_namespaced_pod("guarded-pod", "default"), 404)


# --- ResourceQuota -------------------------------------------------------------------------------------
def test_a_pod_count_quota_forbids_the_pod_too_many(core: Any, kubectl: Any, wait_for: Callable[..., Any],
                                                    tmp_path: Path) -> None:
    core.create_namespace({"metadata": {"name": "quota"}})
    # `kubectl create quota` sends protobuf, which the local API does not read; apply sends JSON.
    quota = {"apiVersion": "v1", "kind": "ResourceQuota", "metadata": {"name": "two-pods"},
             "spec": {"hard": {"pods": "2"}}}
    kubectl("apply", "-n", "quota", "-f", "-", stdin=yaml.safe_dump(quota))

    def pod(name: str, command: list[str]) -> dict[str, Any]:
        return {"metadata": {"name": name}, "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                                                     "containers": [{"name": "c", "image": "i", "command": command}]}}

    flag = tmp_path / "finish"  # the pod "done" finishes when the test says so: no race with the third create
    core.create_namespaced_pod("quota", pod("done", ["sh", "-c", f"while [ ! -e {flag} ]; do sleep 0.05; done"]))
    core.create_namespaced_pod("quota", pod("long", ["sleep", "60"]))
    body = _refused(lambda: core.create_namespaced_pod("quota", pod("third", ["true"])), 403)
    assert body["reason"] == "Forbidden" and body["message"] == (
        'pods "third" is forbidden: exceeded quota: two-pods, requested: pods=1, used: pods=2, limited: pods=2')
    flag.touch()
    wait_for(lambda: core.read_namespaced_pod("done", "quota").status.phase == "Succeeded", what="done to finish")
    # A finished pod no longer counts; the third runs on, so the count stays 2 whenever it is read.
    core.create_namespaced_pod("quota", pod("third", ["sleep", "60"]))
    used = wait_for(lambda: (q := core.read_namespaced_resource_quota("two-pods", "quota")).status.used == {
        "pods": "2"} and q, what="the quota's status")
    assert used.status.hard == {"pods": "2"}
    assert "pods" in kubectl("describe", "quota", "two-pods", "-n", "quota").stdout
