"""Names, labels and the file-like fields of built-in objects, refused with the API server's own texts."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tandem.localcluster import errors
from tandem.localcluster.names import generate_name, meta_causes
from tandem.localcluster.specs import builtin_causes

DNS1035 = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic "
           "character, and end with an alphanumeric character (e.g. 'my-name',  or 'abc-123', regex used for "
           "validation is '[a-z]([-a-z0-9]*[a-z0-9])?')")
LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and "
         "end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is "
         "'[a-z0-9]([-a-z0-9]*[a-z0-9])?')")
SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
             "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
             r"'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")
QUALIFIED = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric "
             "character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
             "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")


def _obj(kind: str = "ConfigMap", api_version: str = "v1", **meta: Any) -> dict[str, Any]:
    return {"apiVersion": api_version, "kind": kind, "metadata": meta}


def _messages(kind: str, creating: bool = True, api_version: str = "v1", **meta: Any) -> list[str]:
    return [f"{c['field']}: {c['message']}" for c in meta_causes(kind, _obj(kind, api_version, **meta), creating)]


def test_a_service_name_is_a_dns1035_label_with_the_api_servers_message() -> None:
    causes = meta_causes("Service", _obj("Service", name="1bad"), creating=True)
    error = errors.invalid("Service", "1bad", causes)
    assert error.status == 422 and error.reason == "Invalid"
    assert error.message == f'Service "1bad" is invalid: metadata.name: Invalid value: "1bad": {DNS1035}'
    assert causes == [{"field": "metadata.name", "reason": "FieldValueInvalid",
                       "message": f'Invalid value: "1bad": {DNS1035}'}]
    long = "s" * 64
    assert _messages("Service", name=long) == [
        f'metadata.name: Invalid value: "{long}": must be no more than 63 characters']


@pytest.mark.parametrize(("kind", "name", "valid"), [
    ("Pod", "job.a1-0", True), ("Pod", "Job", False), ("Pod", "p" * 253, True), ("Pod", "p" * 254, False),
    ("ConfigMap", "a.b", True), ("Node", "node-0.example", True), ("Namespace", "ml", True),
    ("Namespace", "a.b", False), ("Service", "my-svc", True), ("Service", "a.b", False),
    ("Widget", "w.1", True), ("Widget", "W", False),  # custom objects: subdomains
])
def test_names_follow_each_kinds_rule(kind: str, name: str, valid: bool) -> None:
    assert (_messages(kind, name=name) == []) is valid


def test_a_namespace_name_is_a_label() -> None:
    assert _messages("Namespace", name="a.b") == [f'metadata.name: Invalid value: "a.b": {LABEL}']
    assert _messages("Pod", name="Bad") == [f'metadata.name: Invalid value: "Bad": {SUBDOMAIN}']


def test_core_v1_events_only_get_the_path_segment_rule() -> None:
    # ValidateEventCreate skips ObjectMeta for core/v1 (backwards compatibility); the generic
    # registry still refuses names that cannot be a URL path segment.
    assert _messages("Event", name="job.17a2b3c") == []
    assert _messages("Event", name="Job_1.17A") == []
    assert _messages("Event", name="a/b") == ["metadata.name: Invalid value: \"a/b\": may not contain '/'"]
    assert _messages("Event", name="..") == ["metadata.name: Invalid value: \"..\": may not be '..'"]
    assert _messages("Event", generateName="job.", name="job.x7k2p") == []
    assert _messages("Event", name="ok", labels={"a b": "x"}) != []  # labels are checked all the same


def test_generate_name_is_checked_as_a_prefix_and_produces_valid_names() -> None:
    assert _messages("Pod", generateName="job-") == ["metadata.name: Required value: name or generateName is required"]
    assert _messages("Pod", generateName="Job-", name="Job-abcde")[0].startswith(
        'metadata.generateName: Invalid value: "Job-": a lowercase RFC 1123 subdomain')
    for base in ("job-", "j" * 70):
        name = generate_name(base)
        assert len(name) <= 63 and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", name), name
        assert name.startswith(base[:58])
    assert _messages("Service", name=generate_name("s" * 70)) == []


def test_label_keys_and_values() -> None:
    ok = {"tandem.dev/job": "x", "app": "", "a.b_c-d": "V.1_2-3", "example.com/" + "n" * 63: "v" * 63}
    assert _messages("Pod", name="p", labels=ok) == []
    assert _messages("Pod", name="p", labels={"a b": "x"}) == [
        f'metadata.labels: Invalid value: "a b": name part {QUALIFIED}']
    assert _messages("Pod", name="p", labels={"a/b/c": "x"}) == [
        f'metadata.labels: Invalid value: "a/b/c": a qualified name {QUALIFIED} with an optional DNS subdomain '
        "prefix and '/' (e.g. 'example.com/MyName')"]
    assert _messages("Pod", name="p", labels={"/x": "1"}) == [
        'metadata.labels: Invalid value: "/x": prefix part must be non-empty']
    assert _messages("Pod", name="p", labels={"Bad_Prefix/x": "1"}) == [
        f'metadata.labels: Invalid value: "Bad_Prefix/x": prefix part {SUBDOMAIN}']
    assert _messages("Pod", name="p", labels={"x/": "1"})[0] == (
        'metadata.labels: Invalid value: "x/": name part must be non-empty')
    value = "v" * 64
    assert _messages("Pod", name="p", labels={"k": value}) == [
        f'metadata.labels: Invalid value: "{value}": must be no more than 63 characters']
    assert _messages("Pod", name="p", labels={"k": "-v"})[0].startswith(
        'metadata.labels: Invalid value: "-v": a valid label must be an empty string or consist of')


def test_labels_are_checked_on_updates_and_names_only_on_create() -> None:
    assert _messages("Pod", creating=False, name="Bad", labels={"ok": "v"}) == []
    assert _messages("Pod", creating=False, name="p", labels={"k": "-v"}) != []
    assert _messages("Pod", creating=False, name="p", annotations={"Example.com/Key": "anything at all"}) == []
    assert _messages("Pod", creating=False, name="p", annotations={"a b": "v"}) != []


def test_a_crd_is_named_after_its_plural_and_group() -> None:
    crd = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": "w.x.io"},
           "spec": {"group": "example.com", "names": {"plural": "widgets"}}}
    causes = meta_causes("CustomResourceDefinition", crd, creating=True)
    assert [c["message"] for c in causes] == ['Invalid value: "w.x.io": must be spec.names.plural+"."+spec.group']


def _pod(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ml"},
            "spec": {"containers": [{"name": "c", "image": "i"}], **spec}}


def test_pod_volumes_mounts_hostname_and_subdomain() -> None:
    pod = _pod(hostname="Rank_0", subdomain="job.x", volumes=[
        {"name": "ckpt", "persistentVolumeClaim": {"claimName": ""}},
        {"name": "host", "hostPath": {"path": "/data/../etc"}},
        {"name": "Scratch", "emptyDir": {}}, {"name": "host", "emptyDir": {}}])
    pod["spec"]["containers"][0]["volumeMounts"] = [
        {"name": "ckpt", "mountPath": "/a", "subPath": "/abs/../x"}, {"name": "missing", "mountPath": "/b"}]
    found = [(c["field"], c["message"]) for c in builtin_causes("Pod", pod)]
    assert found == [
        ("spec.volumes[0].persistentVolumeClaim.claimName", "Required value"),
        ("spec.volumes[1].hostPath.path", "Invalid value: \"/data/../etc\": must not contain '..'"),
        ("spec.volumes[2].name", f'Invalid value: "Scratch": {LABEL}'),
        ("spec.volumes[3].name", 'Duplicate value: "host"'),
        ("spec.containers[0].volumeMounts.subPath", 'Invalid value: "/abs/../x": must be a relative path'),
        ("spec.containers[0].volumeMounts.subPath", "Invalid value: \"/abs/../x\": must not contain '..'"),
        ("spec.containers[0].volumeMounts[1].name", 'Not found: "missing"'),
        ("spec.hostname", f'Invalid value: "Rank_0": {LABEL}'),
        ("spec.subdomain", f'Invalid value: "job.x": {LABEL}'),
    ]
    # A claim name is not validated by the API server: "../x" is accepted (and never exists).
    assert builtin_causes("Pod", _pod(volumes=[{"name": "c", "persistentVolumeClaim": {"claimName": "../x"}}])) == []


def test_config_map_keys_are_file_names() -> None:
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"},
                  "data": {"ok.yaml": "", "..": "", "..x": "", "a/b": ""}}
    assert [(c["field"], c["message"]) for c in builtin_causes("ConfigMap", config_map)] == [
        ("data[..]", "Invalid value: \"..\": must not be '..'"),
        ("data[..x]", "Invalid value: \"..x\": must not start with '..'"),
        ("data[a/b]", "Invalid value: \"a/b\": a valid config key must consist of alphanumeric characters, '-', '_' "
                      "or '.' (e.g. 'key.name',  or 'KEY_NAME',  or 'key-name', regex used for validation is "
                      "'[-._a-zA-Z0-9]+')"),
    ]


def _event(**fields: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e", "namespace": "ml"},
            "involvedObject": {"kind": "Pod", "name": "p", "namespace": "ml"}, "reason": "R", **fields}


def test_core_v1_event_legacy_rules() -> None:
    assert builtin_causes("Event", _event()) == []
    moved = _event(involvedObject={"kind": "Pod", "name": "p", "namespace": "other"})
    assert [c["message"] for c in builtin_causes("Event", moved)] == [
        'Invalid value: "other": does not match event.namespace']
    # kopf's events carry eventTime, so they must name the reporting component, instance and action.
    new = _event(eventTime="2026-12-02T10:00:00.000000Z")
    assert [(c["field"], c["message"]) for c in builtin_causes("Event", new)] == [
        ("reportingComponent", "Required value"),
        ("reportingComponent", 'Invalid value: "": name part must be non-empty'),
        ("reportingComponent", f'Invalid value: "": name part {QUALIFIED}'),
        ("reportingInstance", "Required value"), ("action", "Required value")]
    kopf_like = _event(eventTime="2026-12-02T10:00:00.000000Z", reportingComponent="kopf",
                       reportingInstance="dev", action="Action?")
    assert builtin_causes("Event", kopf_like) == []
