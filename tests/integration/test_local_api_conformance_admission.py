"""The local API refuses the writes kube-apiserver 1.32 refuses, with its status, reason and the
fields its causes name: immutable fields of pods, Services and immutable ConfigMaps on update and
patch, objects that cannot be valid (a Service without ports, a pod without containers, broken
ownerReferences, bad annotation and ConfigMap keys), and CRDs it could not serve (wrong name,
non-structural schema, CEL that does not compile). One table row per rule, driven with the
`kubernetes` client, and kubectl where a user meets the rule; the changes that are allowed still are."""

from __future__ import annotations

import copy
import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

NS = "default"
GROUP = "conformance.example.com"
MERGE = "application/merge-patch+json"
Body = dict[str, Any]
WaitFor = Callable[..., Any]


# --- objects ----------------------------------------------------------------------------------------------
def pod(name: str, **spec: Any) -> Body:
    """A pod no scheduler picks up (nothing runs), unless `spec` says otherwise."""
    return {"metadata": {"name": name}, "spec": {
        "schedulerName": "nobody", "containers": [{"name": "c", "image": "busybox", "command": ["sleep", "60"]}],
        **spec}}


def service(name: str, **spec: Any) -> Body:
    return {"metadata": {"name": name}, "spec": {"selector": {"app": name}, **spec}}


def config_map(name: str, **fields: Any) -> Body:
    return {"metadata": {"name": name}, **fields}


def owner(name: str, **ref: Any) -> Body:
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": name, "uid": f"uid-{name}", **ref}


def owned(name: str, *refs: Body) -> Body:
    return {"metadata": {"name": name, "ownerReferences": list(refs)}}


def crd(plural: str, spec_schema: Body, name: str | None = None) -> Body:
    kind = plural[:-1].capitalize()
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": name or f"{plural}.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": plural[:-1], "kind": kind, "listKind": f"{kind}List"},
                     "versions": [{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                         "type": "object", "properties": {"spec": spec_schema}}}}]}}


def widget(name: str, **meta: Any) -> Body:
    return {"apiVersion": f"{GROUP}/v1", "kind": "Widget", "metadata": {"name": name, **meta}, "spec": {"size": 1}}


OBJECT_SPEC = {"type": "object", "properties": {"size": {"type": "integer"}}}
SCHEMA_PATH = "spec.versions[0].schema.openAPIV3Schema"


# --- the table --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One write and what the API server answers. `existing` is created first (an update's
    object); `body` is the create's object, the patch, or for a replace a function of the stored
    object; `fields` are the causes' fields, in order; `says` is in the first cause's message."""

    kind: str  # pod | service | config_map | crd | widget
    verb: str  # create | replace | patch
    body: Any
    existing: Body | None = None
    status: int = 422
    reason: str = "Invalid"
    fields: list[str] = field(default_factory=list)
    says: str = ""
    raw: bool = False  # sent as it is: the typed client refuses a body without the fields it requires


def _replace_spec(change: Callable[[Body], None]) -> Callable[[Body], Body]:
    def replace(stored: Body) -> Body:
        new = copy.deepcopy(stored)
        change(new["spec"])
        return new
    return replace


def _set_command(spec: Body) -> None:
    spec["containers"][0]["command"] = ["sleep", "61"]


def _drop_tolerations(spec: Body) -> None:
    spec["tolerations"] = []


def _add_toleration(spec: Body) -> None:
    spec["tolerations"] = [*(spec.get("tolerations") or []), {"key": "extra", "operator": "Exists"}]


def _drop_cluster_ip(stored: Body) -> Body:
    spec = {k: v for k, v in stored["spec"].items() if k not in ("clusterIP", "clusterIPs")}
    return {**stored, "metadata": {**stored["metadata"], "labels": {"replaced": "yes"}}, "spec": spec}


TOLERATION = {"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}
NOT_OTHER_FIELDS = "Forbidden: pod updates may not change fields other than `spec.containers[*].image`"
IMMUTABLE = "Forbidden: field is immutable when `immutable` is set"

REFUSED = {
    # Pods: the spec is immutable but for images, a lower deadline and added tolerations.
    "pod-command-patch": Row("pod", "patch", {"spec": {"containers": [{"name": "c", "command": ["sleep", "5"]}]}},
                             existing=pod("pod-command-patch"), fields=["spec"], says=NOT_OTHER_FIELDS),
    "pod-command-replace": Row("pod", "replace", _replace_spec(_set_command), existing=pod("pod-command-replace"),
                               fields=["spec"], says="spec.containers[0].command"),
    "pod-node-name": Row("pod", "patch", {"spec": {"nodeName": "node-x"}}, existing=pod("pod-node-name"),
                         fields=["spec"], says="spec.nodeName"),
    "pod-add-container": Row("pod", "replace", _replace_spec(lambda s: s["containers"].append(
        {"name": "d", "image": "busybox"})), existing=pod("pod-add-container"), fields=["spec.containers"],
        says="Forbidden: pod updates may not add or remove containers"),
    "pod-empty-image": Row("pod", "patch", {"spec": {"containers": [{"name": "c", "image": ""}]}},
                           existing=pod("pod-empty-image"), fields=["spec.containers[0].image"], says="Required value"),
    "pod-raise-deadline": Row("pod", "patch", {"spec": {"activeDeadlineSeconds": 200}},
                              existing=pod("pod-raise-deadline", activeDeadlineSeconds=100),
                              fields=["spec.activeDeadlineSeconds"],
                              says="Invalid value: 200: must be less than or equal to previous value"),
    "pod-drop-toleration": Row("pod", "replace", _replace_spec(_drop_tolerations),
                               existing=pod("pod-drop-toleration", tolerations=[TOLERATION]),
                               fields=["spec.tolerations"],
                               says="Forbidden: existing toleration can not be modified except its tolerationSeconds"),
    # Services: the allocated cluster IP stays.
    "service-cluster-ip": Row("service", "patch", {"spec": {"clusterIP": "10.96.250.1"}},
                              existing=service("service-cluster-ip", ports=[{"port": 80}]),
                              fields=["spec.clusterIPs[0]"],
                              says='Invalid value: []string{"10.96.250.1"}: may not change once set'),
    "service-headless-to-ip": Row("service", "patch", {"spec": {"clusterIP": "10.96.250.2"}},
                                  existing=service("service-headless-to-ip", clusterIP="None", ports=[{"port": 80}]),
                                  fields=["spec.clusterIPs[0]"], says="may not change once set"),
    # Immutable ConfigMaps.
    "config-map-immutable-data": Row("config_map", "patch", {"data": {"k": "changed"}},
                                     existing=config_map("config-map-immutable-data", data={"k": "v"}, immutable=True),
                                     fields=["data"], says=IMMUTABLE),
    "config-map-immutable-flag": Row("config_map", "patch", {"immutable": False},
                                     existing=config_map("config-map-immutable-flag", data={"k": "v"}, immutable=True),
                                     fields=["immutable"], says=IMMUTABLE),
    # Objects that cannot be valid.
    "service-without-ports": Row("service", "create", service("service-without-ports"), fields=["spec.ports"],
                                 says="Required value"),
    "load-balancer-without-ports": Row("service", "create", service("load-balancer-without-ports",
                                                                    type="LoadBalancer"), fields=["spec.ports"]),
    "pod-empty-containers": Row("pod", "create", pod("pod-empty-containers", containers=[]),
                                fields=["spec.containers"], says="Required value"),
    "pod-no-containers": Row("pod", "create", {"metadata": {"name": "pod-no-containers"}, "spec": {}},
                             fields=["spec.containers"], says="Required value", raw=True),
    "owner-without-uid": Row("config_map", "create", owned("owner-without-uid", owner("a", uid="")),
                             fields=["metadata.ownerReferences.uid"], says='Invalid value: "": uid must not be empty'),
    "owner-uid-missing": Row("config_map", "create", owned("owner-uid-missing", {
        k: v for k, v in owner("a").items() if k != "uid"}), fields=["metadata.ownerReferences.uid"],
        says='Invalid value: "": uid must not be empty', raw=True),
    "owner-without-names": Row("config_map", "create", owned("owner-without-names", {"uid": "u"}),
                               fields=["metadata.ownerReferences.apiVersion", "metadata.ownerReferences.kind",
                                       "metadata.ownerReferences.name"], says="version must not be empty", raw=True),
    "two-controllers": Row("config_map", "create", owned("two-controllers", owner("a", controller=True),
                                                         owner("b", controller=True)),
                           fields=["metadata.ownerReferences"],
                           says='Only one reference can have Controller set to true. Found "true" in references for '
                                "ConfigMap/a and ConfigMap/b"),
    "custom-owner-without-uid": Row("widget", "create", widget("custom-owner-without-uid", ownerReferences=[
        owner("a", uid="")]), fields=["metadata.ownerReferences.uid"], says="uid must not be empty"),
    "annotation-key": Row("config_map", "create", {"metadata": {"name": "annotation-key", "annotations": {
        "a/b/c": "x"}}}, fields=["metadata.annotations"], says="a qualified name must consist of"),
    "config-map-key": Row("config_map", "create", config_map("config-map-key", data={"../x": "y"}),
                          fields=["data[../x]", "data[../x]"], says="a valid config key must consist of"),
    # CRDs the API server could not serve.
    "crd-name": Row("crd", "create", crd("things", OBJECT_SPEC, name=f"stuff.{GROUP}"), fields=["metadata.name"],
                    says='must be spec.names.plural+"."+spec.group'),
    "crd-property-without-type": Row("crd", "create", crd("untypeds", {"properties": {"size": {"type": "integer"}}}),
                                     fields=[f"{SCHEMA_PATH}.properties[spec].type"],
                                     says="Required value: must not be empty for specified object fields"),
    "crd-array-without-items": Row("crd", "create", crd("itemlesses", {"type": "array"}),
                                   fields=[f"{SCHEMA_PATH}.properties[spec].items"],
                                   says="Required value: must be specified"),
    "crd-rule-does-not-compile": Row("crd", "create", crd("brokenrules", {**OBJECT_SPEC, "x-kubernetes-validations": [
        {"rule": "self.size >"}]}), fields=[f"{SCHEMA_PATH}.properties[spec].x-kubernetes-validations[0].rule"],
        says='Invalid value: apiextensions.ValidationRule{Rule:"self.size >"'),
    "crd-update-to-untyped": Row("crd", "patch", {"spec": {"versions": [{"name": "v1", "served": True, "storage": True,
                                                                         "schema": {"openAPIV3Schema": {
                                                                             "type": "object", "properties": {
                                                                                 "spec": {}}}}}]}},
                                 existing=crd("retypeds", OBJECT_SPEC), fields=[f"{SCHEMA_PATH}.properties[spec].type"],
                                 says="must not be empty for specified object fields"),
}

ALLOWED = {
    "pod-image": Row("pod", "patch", {"spec": {"containers": [{"name": "c", "image": "busybox:2"}]}},
                     existing=pod("pod-image"), status=200),
    "pod-add-toleration": Row("pod", "replace", _replace_spec(_add_toleration),
                              existing=pod("pod-add-toleration", tolerations=[TOLERATION]), status=200),
    "pod-lower-deadline": Row("pod", "patch", {"spec": {"activeDeadlineSeconds": 50}},
                              existing=pod("pod-lower-deadline", activeDeadlineSeconds=100), status=200),
    "pod-labels": Row("pod", "patch", {"metadata": {"labels": {"a": "b"}}}, existing=pod("pod-labels"), status=200),
    "service-replace-without-ip": Row("service", "replace", _drop_cluster_ip,
                                      existing=service("service-replace-without-ip", ports=[{"port": 80}]),
                                      status=200),
    "headless-without-ports": Row("service", "create", service("headless-without-ports", clusterIP="None"),
                                  status=201),
    "immutable-config-map-labels": Row("config_map", "patch", {"metadata": {"labels": {"a": "b"}}},
                                       existing=config_map("immutable-config-map-labels", data={"k": "v"},
                                                           immutable=True), status=200),
    "one-controller": Row("config_map", "create", owned("one-controller", owner("a", controller=True), owner("b")),
                          status=201),
}


# --- the driver -------------------------------------------------------------------------------------------
def _name(row: Row) -> str:
    target = row.existing if row.existing is not None else row.body
    return str(target["metadata"]["name"])


def _send(api_client: Any, row: Row, verb: str, body: Any) -> Body:
    """The write with the `kubernetes` client; the answer as JSON."""
    name = _name(row)
    if row.kind == "crd":
        api: Any = kubernetes.client.ApiextensionsV1Api(api_client)
        calls: dict[str, Callable[[], Any]] = {
            "create": lambda: api.create_custom_resource_definition(body, _preload_content=False),
            "replace": lambda: api.replace_custom_resource_definition(name, body, _preload_content=False),
            "patch": lambda: api.patch_custom_resource_definition(name, body, _preload_content=False,
                                                                  _content_type=MERGE),
            "read": lambda: api.read_custom_resource_definition(name, _preload_content=False)}
    elif row.kind == "widget":
        api = kubernetes.client.CustomObjectsApi(api_client)
        where = (GROUP, "v1", NS, "widgets")
        calls = {"create": lambda: api.create_namespaced_custom_object(*where, body, _preload_content=False),
                 "read": lambda: api.get_namespaced_custom_object(*where, name, _preload_content=False)}
    else:
        api = kubernetes.client.CoreV1Api(api_client)
        calls = {
            "create": lambda: getattr(api, f"create_namespaced_{row.kind}")(NS, body, _preload_content=False),
            "replace": lambda: getattr(api, f"replace_namespaced_{row.kind}")(name, NS, body, _preload_content=False),
            "patch": lambda: getattr(api, f"patch_namespaced_{row.kind}")(name, NS, body, _preload_content=False),
            "read": lambda: getattr(api, f"read_namespaced_{row.kind}")(name, NS, _preload_content=False)}
    return json.loads(calls[verb]().data)


def _post(api_client: Any, row: Row) -> Body:
    """A create sent as it is (only core kinds), for bodies the typed client would refuse to send."""
    plural = {"pod": "pods", "config_map": "configmaps", "service": "services"}[row.kind]
    request = urllib.request.Request(f"{api_client.configuration.host}/api/v1/namespaces/{NS}/{plural}",
                                     data=json.dumps(row.body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # a refusal raises HTTPError
        return json.loads(response.read())


def _write(api_client: Any, row: Row) -> tuple[int, Body, Body | None]:
    """Create the row's existing object, make its write: (status, answer, stored object before)."""
    before = _send(api_client, row, "create", row.existing) if row.existing is not None else None
    body = row.body(before) if callable(row.body) else row.body
    try:
        answer = _post(api_client, row) if row.raw else _send(api_client, row, row.verb, body)
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read()), before
    except ApiException as exc:
        return exc.status, json.loads(exc.body), before
    return 201 if row.verb == "create" else 200, answer, before


@pytest.fixture(scope="module")
def widgets(api_client: Any) -> None:
    """A CRD of this module's own, for custom objects."""
    widgets = crd("widgets", OBJECT_SPEC)
    _send(api_client, Row("crd", "create", widgets), "create", widgets)


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_the_api_refuses_what_kube_apiserver_refuses(api_client: Any, widgets: None, case: str) -> None:
    row = REFUSED[case]
    status, answer, before = _write(api_client, row)
    assert (status, answer.get("reason")) == (row.status, row.reason), answer
    causes = answer["details"]["causes"]
    assert [c["field"] for c in causes] == row.fields, answer
    assert row.says in causes[0]["message"], causes[0]["message"]
    assert answer["message"].startswith(f'{answer["details"]["kind"]}'), answer["message"]
    listed = "[" if len(causes) > 1 else ""  # several causes are listed in brackets
    assert f'"{_name(row)}" is invalid: {listed}{row.fields[0]}: ' in answer["message"], answer["message"]
    if before is not None:  # a refused update changes nothing
        assert _send(api_client, row, "read", None) == before


@pytest.mark.parametrize("case", sorted(ALLOWED))
def test_the_changes_kube_apiserver_allows_still_pass(api_client: Any, case: str) -> None:
    row = ALLOWED[case]
    status, answer, before = _write(api_client, row)
    assert status == row.status, answer
    if before is not None:
        assert answer["metadata"]["resourceVersion"] != before["metadata"]["resourceVersion"]


def test_patched_and_replaced_fields_land_and_allocated_ones_stay(core: Any) -> None:
    """What the allowed rows changed is stored, and what they left out is kept."""
    assert core.read_namespaced_pod("pod-image", NS).spec.containers[0].image == "busybox:2"
    assert [t.key for t in core.read_namespaced_pod("pod-add-toleration", NS).spec.tolerations] == ["gpu", "extra"]
    kept = core.read_namespaced_service("service-replace-without-ip", NS).spec
    assert kept.cluster_ip.startswith("10.96.") and kept.cluster_ips == [kept.cluster_ip]


def test_a_created_pod_starts_pending_whatever_status_it_was_sent_with(core: Any) -> None:
    sent = {**pod("sent-status", containers=[{"name": "c", "image": "busybox", "resources": {
        "limits": {"cpu": "1", "memory": "1Gi"}}}]), "status": {"phase": "Running", "podIP": "10.0.0.9"}}
    created = json.loads(core.create_namespaced_pod(NS, sent, _preload_content=False).data)
    assert created["status"] == {"phase": "Pending", "qosClass": "Guaranteed"}
    plain = json.loads(core.create_namespaced_pod(NS, pod("plain-status"), _preload_content=False).data)
    assert plain["status"] == {"phase": "Pending", "qosClass": "BestEffort"}


def test_status_writes_and_the_kubelet_still_change_a_pods_status(core: Any, wait_for: WaitFor) -> None:
    core.create_namespaced_pod(NS, pod("status-write"))
    patched = core.patch_namespaced_pod_status("status-write", NS, {"status": {"phase": "Running"}})
    assert patched.status.phase == "Running" and patched.spec.scheduler_name == "nobody"
    core.create_namespaced_pod(NS, pod("kubelet-run", schedulerName="default-scheduler", containers=[
        {"name": "c", "image": "busybox", "command": ["sleep", "30"]}]))
    running = wait_for(lambda: (p := core.read_namespaced_pod("kubelet-run", NS)).status.phase == "Running" and p,
                       what="the kubelet to run the pod")
    assert running.spec.node_name and running.status.qos_class == "BestEffort"


# --- kubectl ----------------------------------------------------------------------------------------------
def _manifest(kind: str, body: Body) -> str:
    return yaml.safe_dump({"apiVersion": "v1", "kind": kind, **body})


def test_kubectl_apply_of_a_service_without_ports(kubectl: Any) -> None:
    result = kubectl("apply", "-f", "-", stdin=_manifest("Service", service("no-ports")), check=False)
    assert result.returncode != 0
    assert 'The Service "no-ports" is invalid: spec.ports: Required value' in result.stderr, result.stderr


def test_kubectl_apply_changes_a_pods_image_but_not_its_command(kubectl: Any) -> None:
    manifest = pod("applied")
    kubectl("apply", "-f", "-", stdin=_manifest("Pod", manifest))
    manifest["spec"]["containers"][0]["image"] = "busybox:2"
    assert "configured" in kubectl("apply", "-f", "-", stdin=_manifest("Pod", manifest)).stdout
    manifest["spec"]["containers"][0]["command"] = ["sleep", "61"]
    result = kubectl("apply", "-f", "-", stdin=_manifest("Pod", manifest), check=False)
    assert result.returncode != 0
    assert f'The Pod "applied" is invalid: spec: {NOT_OTHER_FIELDS}' in result.stderr, result.stderr
    assert "spec.containers[0].command" in result.stderr
    shown = json.loads(kubectl("get", "pod", "applied", "-o", "json").stdout)
    assert shown["spec"]["containers"][0]["image"] == "busybox:2"
    assert shown["spec"]["containers"][0]["command"] == ["sleep", "60"]


def test_kubectl_apply_of_an_immutable_config_map(kubectl: Any) -> None:
    manifest = config_map("frozen", data={"k": "v"}, immutable=True)
    kubectl("apply", "-f", "-", stdin=_manifest("ConfigMap", manifest))
    manifest["data"] = {"k": "changed"}
    result = kubectl("apply", "-f", "-", stdin=_manifest("ConfigMap", manifest), check=False)
    assert result.returncode != 0
    assert f'The ConfigMap "frozen" is invalid: data: {IMMUTABLE}' in result.stderr, result.stderr


def test_kubectl_apply_of_a_non_structural_crd(kubectl: Any) -> None:
    manifest = crd("loosethings", {"properties": {"size": {"type": "integer"}}})
    result = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest), check=False)
    assert result.returncode != 0
    assert (f'The CustomResourceDefinition "loosethings.{GROUP}" is invalid: {SCHEMA_PATH}.properties[spec].type: '
            "Required value: must not be empty for specified object fields") in result.stderr, result.stderr
