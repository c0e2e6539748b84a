"""The local API driven with the official `kubernetes` client, as the operator will drive it."""

import json
import threading
import urllib.error
import urllib.request
from typing import Any

import kubernetes
import pytest
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "tandem.dev", "v1alpha1"


def _job(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
            "spec": {"nodes": 1, "pools": ["ascend-910b"], "checkpoint": {"volume": {"emptyDir": {}}}, **spec}}


def test_discovery_serves_core_groups_and_the_crds(api_client: Any) -> None:
    dynamic = kubernetes.dynamic.DynamicClient(api_client)
    jobs = dynamic.resources.get(api_version=f"{GROUP}/{VERSION}", kind="TrainingJob")
    assert jobs.namespaced and "tj" in jobs.short_names
    pools = dynamic.resources.get(api_version=f"{GROUP}/{VERSION}", kind="AcceleratorPool")
    assert not pools.namespaced
    pods = dynamic.resources.get(api_version="v1", kind="Pod")
    assert pods.name == "pods"
    assert kubernetes.client.VersionApi(api_client).get_code().major == "1"


def test_nodes_are_simulated_with_accelerator_capacity(api_client: Any) -> None:
    nodes = kubernetes.client.CoreV1Api(api_client).list_node(label_selector="tandem.dev/pool=ascend-910b").items
    assert len(nodes) == 2
    assert nodes[0].status.allocatable["huawei.com/Ascend910"] == "8"
    assert nodes[0].status.conditions[0].type == "Ready"


def test_create_get_list_with_label_selectors(api_client: Any) -> None:
    core = kubernetes.client.CoreV1Api(api_client)
    for name, job in (("sel-a1-0", "sel"), ("sel-a1-1", "sel"), ("other-a1-0", "other")):
        core.create_namespaced_config_map("default", {"metadata": {"name": name, "labels": {"tandem.dev/job": job}}})
    selected = core.list_namespaced_config_map("default", label_selector="tandem.dev/job=sel").items
    assert sorted(c.metadata.name for c in selected) == ["sel-a1-0", "sel-a1-1"]
    by_field = core.list_namespaced_config_map("default", field_selector="metadata.name=other-a1-0").items
    assert [c.metadata.name for c in by_field] == ["other-a1-0"]
    assert core.read_namespaced_config_map("sel-a1-0", "default").metadata.uid


def test_custom_object_status_subresource_and_merge_patch(api_client: Any) -> None:
    custom = kubernetes.client.CustomObjectsApi(api_client)
    created = custom.create_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", _job("status-job"))
    assert created["spec"]["faultPolicy"]["backoffSeconds"] == 10  # CRD defaults applied
    custom.patch_namespaced_custom_object_status(GROUP, VERSION, "default", "trainingjobs", "status-job",
                                                 {"status": {"phase": "Running", "attempt": 1}})
    # A write to the object ignores status; a write to /status ignores the rest.
    custom.patch_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", "status-job",
                                          {"spec": {"faultPolicy": {"maxRestarts": 3}}, "status": {"phase": "Failed"}})
    job = custom.get_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", "status-job")
    assert job["status"]["phase"] == "Running" and job["spec"]["faultPolicy"]["maxRestarts"] == 3
    assert job["metadata"]["generation"] == 2


def test_stale_update_gets_409(api_client: Any) -> None:
    custom = kubernetes.client.CustomObjectsApi(api_client)
    first = custom.create_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", _job("stale-job"))
    custom.patch_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", "stale-job",
                                          {"spec": {"faultPolicy": {"maxRestarts": 3}}})
    first["spec"]["faultPolicy"]["maxRestarts"] = 4
    with pytest.raises(ApiException) as exc:
        custom.replace_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", "stale-job", first)
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "Conflict"
    with pytest.raises(ApiException) as exc:
        custom.create_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", _job("stale-job"))
    assert exc.value.status == 409 and json.loads(exc.value.body)["reason"] == "AlreadyExists"


def test_invalid_job_is_422_naming_the_field_and_changes_nothing(api_client: Any) -> None:
    custom = kubernetes.client.CustomObjectsApi(api_client)
    custom.create_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", _job("kept-job"))
    before = custom.get_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", "kept-job")
    with pytest.raises(ApiException) as exc:
        custom.patch_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", "kept-job",
                                              {"spec": {"nodes": 0}})
    status = json.loads(exc.value.body)
    assert exc.value.status == 422 and status["reason"] == "Invalid"
    assert status["details"]["causes"][0]["field"] == "spec.nodes"
    after = custom.get_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", "kept-job")
    assert after == before


def test_malformed_body_is_400_and_the_server_keeps_serving(cluster: Any) -> None:
    for body in (b"{not json", b"[1, 2]", b'"text"'):
        code, status = _post(cluster, "/api/v1/namespaces/default/configmaps", body)
        assert code == 400 and status["kind"] == "Status"
    with urllib.request.urlopen(f"{cluster.url}/version", timeout=10) as response:
        assert response.status == 200


def test_watch_resumes_from_a_resource_version(api_client: Any) -> None:
    core = kubernetes.client.CoreV1Api(api_client)
    first = core.create_namespaced_config_map("default", {"metadata": {"name": "w-1", "labels": {"w": "yes"}}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "w-2", "labels": {"w": "yes"}}})
    core.create_namespaced_config_map("default", {"metadata": {"name": "w-3", "labels": {"w": "no"}}})
    core.delete_namespaced_config_map("w-1", "default")
    seen = []
    watch = kubernetes.watch.Watch()
    for event in watch.stream(core.list_namespaced_config_map, "default", label_selector="w=yes",
                              resource_version=first.metadata.resource_version, timeout_seconds=10):
        seen.append((event["type"], event["object"].metadata.name))
        if len(seen) == 2:
            watch.stop()
    assert seen == [("ADDED", "w-2"), ("DELETED", "w-1")]


def test_watch_streams_live_changes(api_client: Any) -> None:
    core = kubernetes.client.CoreV1Api(api_client)
    rv = core.list_namespaced_config_map("default").metadata.resource_version
    seen: list[str] = []
    watch = kubernetes.watch.Watch()

    def follow() -> None:
        for event in watch.stream(core.list_namespaced_config_map, "default", resource_version=rv,
                                  timeout_seconds=20):
            seen.append(f"{event['type']} {event['object'].metadata.name}")
            if len(seen) == 2:
                watch.stop()

    follower = threading.Thread(target=follow)
    follower.start()
    core.create_namespaced_config_map("default", {"metadata": {"name": "live"}})
    core.patch_namespaced_config_map("live", "default", {"data": {"k": "v"}})
    follower.join(timeout=30)
    assert seen == ["ADDED live", "MODIFIED live"]


def test_owner_references_are_garbage_collected(api_client: Any) -> None:
    custom = kubernetes.client.CustomObjectsApi(api_client)
    core = kubernetes.client.CoreV1Api(api_client)
    job = custom.create_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", _job("gc-job"))
    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "name": "gc-job",
             "uid": job["metadata"]["uid"], "controller": True}
    core.create_namespaced_service("default", {"metadata": {"name": "gc-job", "ownerReferences": [owner]},
                                               "spec": {"clusterIP": "None", "selector": {"tandem.dev/job": "gc-job"}}})
    core.create_namespaced_pod("default", {
        "metadata": {"name": "gc-job-a1-0", "labels": {"tandem.dev/job": "gc-job"}, "ownerReferences": [owner]},
        "spec": {"containers": [{"name": "trainer", "image": "runtime"}], "restartPolicy": "Never"}})
    custom.delete_namespaced_custom_object(GROUP, VERSION, "default", "trainingjobs", "gc-job")
    assert core.list_namespaced_pod("default", label_selector="tandem.dev/job=gc-job").items == []
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_service("gc-job", "default")
    assert exc.value.status == 404


def _post(cluster: Any, path: str, body: bytes) -> tuple[int, dict[str, Any]]:
    """A raw request, for bodies the typed client would refuse to send."""
    request = urllib.request.Request(f"{cluster.url}{path}", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_invalid_builtin_object_is_refused(cluster: Any) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "bad"}, "spec": {"containers": "trainer"}}
    code, status = _post(cluster, "/api/v1/namespaces/default/pods", json.dumps(pod).encode())
    assert code == 422 and "spec.containers" in status["message"]


def test_a_crd_created_at_run_time_is_served_and_deleting_it_stops_serving(api_client: Any) -> None:
    extensions = kubernetes.client.ApiextensionsV1Api(api_client)
    custom = kubernetes.client.CustomObjectsApi(api_client)
    schema = {"type": "object", "properties": {"spec": {"type": "object", "properties": {
        "size": {"type": "integer", "minimum": 1}}}}}
    extensions.create_custom_resource_definition({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "widgets.example.com"},
        "spec": {"group": "example.com", "scope": "Namespaced",
                 "names": {"plural": "widgets", "singular": "widget", "kind": "Widget", "listKind": "WidgetList"},
                 "versions": [{"name": "v1", "served": True, "storage": True,
                               "schema": {"openAPIV3Schema": schema}}]}})
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 2}}
    custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget)
    with pytest.raises(ApiException) as exc:
        custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets",
                                               {**widget, "metadata": {"name": "w2"}, "spec": {"size": 0}})
    assert exc.value.status == 422
    extensions.delete_custom_resource_definition("widgets.example.com")
    with pytest.raises(ApiException) as exc:
        custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
    assert exc.value.status == 404


def test_objects_in_a_missing_namespace_are_refused(api_client: Any) -> None:
    core = kubernetes.client.CoreV1Api(api_client)
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("nowhere", {"metadata": {"name": "x"}})
    assert exc.value.status == 404
    core.create_namespace({"metadata": {"name": "ml"}})
    assert core.create_namespaced_config_map("ml", {"metadata": {"name": "x"}}).metadata.namespace == "ml"


def test_generate_name_gives_unique_names(api_client: Any) -> None:
    core = kubernetes.client.CoreV1Api(api_client)
    names = {core.create_namespaced_event("default", {
        "metadata": {"generateName": "kopf-event-"}, "involvedObject": {"kind": "TrainingJob", "name": "x"},
        "reason": "Test", "message": "m"}).metadata.name for _ in range(5)}
    assert len(names) == 5 and all(n.startswith("kopf-event-") for n in names)
