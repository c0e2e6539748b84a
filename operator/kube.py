"""The Kubernetes API calls the operator makes, and nothing else: a thin shell over the official
client that speaks plain JSON dicts (the core's language) and makes the calls idempotent:
creating what exists (409) and deleting what is gone (404) are not errors."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from tandem.operator.api import GROUP, VERSION, AcceleratorPool, TrainingJob
from tandem.operator.podspec import JOB_LABEL
from tandem.operator.reconcile import Event

Obj = dict[str, Any]
COMPONENT = "tandem-operator"
# kopf's peering objects (the chart's crds/): one ClusterKopfPeering, or a KopfPeering per namespace.
PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"


class Conflict(Exception):
    """Our view was stale (409 on a write guarded by resourceVersion): observe again."""


def load_client() -> kubernetes.client.ApiClient:
    try:
        kubernetes.config.load_incluster_config()
    except kubernetes.config.ConfigException:
        kubernetes.config.load_kube_config()
    configuration = kubernetes.client.Configuration.get_default_copy()
    configuration.connection_pool_maxsize = 32  # kopf runs handlers on a thread pool
    return kubernetes.client.ApiClient(configuration)


def _json(response: Any) -> Any:
    return json.loads(response.data)


def _unless(status: int, call: Callable[[], Any]) -> Any | None:
    """The call's response; None when the API answered `status`, an expected outcome (the object is
    not there, or is there already)."""
    try:
        return call()
    except ApiException as exc:
        if exc.status == status:
            return None
        raise


def _found(call: Callable[[], Any]) -> Obj | None:
    """The object the GET returned; None when it does not exist (404)."""
    response = _unless(404, call)
    return None if response is None else dict(_json(response))


class Kube:
    def __init__(self, api_client: kubernetes.client.ApiClient) -> None:
        self.core = kubernetes.client.CoreV1Api(api_client)
        self.custom = kubernetes.client.CustomObjectsApi(api_client)

    # --- reads -----------------------------------------------------------------------------
    def get_job(self, namespace: str, name: str) -> Obj | None:
        return _found(lambda: self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, TrainingJob.PLURAL, name, _preload_content=False))

    def list_jobs(self, namespaces: list[str] | None = None) -> list[Obj]:
        """Every namespace, or only those the operator serves (its RBAC may allow no more)."""
        if not namespaces:
            return _json(self.custom.list_cluster_custom_object(
                GROUP, VERSION, TrainingJob.PLURAL, _preload_content=False))["items"]
        return [job for namespace in namespaces for job in _json(self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, TrainingJob.PLURAL, _preload_content=False))["items"]]

    def list_pools(self) -> list[Obj]:
        return _json(self.custom.list_cluster_custom_object(
            GROUP, VERSION, AcceleratorPool.PLURAL, _preload_content=False))["items"]

    def list_nodes(self) -> list[Obj]:
        return _json(self.core.list_node(_preload_content=False))["items"]

    def list_config_maps(self, namespace: str) -> list[Obj]:
        return _json(self.core.list_namespaced_config_map(namespace, _preload_content=False))["items"]

    def list_job_pods(self, namespace: str, job: str) -> list[Obj]:
        return _json(self.core.list_namespaced_pod(
            namespace, label_selector=f"{JOB_LABEL}={job}", _preload_content=False))["items"]

    def service_exists(self, namespace: str, name: str) -> bool:
        return _unless(404, lambda: self.core.read_namespaced_service(
            name, namespace, _preload_content=False)) is not None

    def get_peering(self, name: str, namespace: str | None) -> Obj | None:
        """The peering object's status (its replicas' records); None when the object does not exist."""
        if namespace is None:
            obj = _found(lambda: self.custom.get_cluster_custom_object(
                PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings", name, _preload_content=False))
        else:
            obj = _found(lambda: self.custom.get_namespaced_custom_object(
                PEERING_GROUP, PEERING_VERSION, namespace, "kopfpeerings", name, _preload_content=False))
        return None if obj is None else dict(obj.get("status") or {})

    # --- writes ----------------------------------------------------------------------------
    def patch_job_status(self, namespace: str, name: str, resource_version: str, status: Obj) -> None:
        """The whole status, guarded by the resourceVersion the decision was made on."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        try:
            self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, TrainingJob.PLURAL, name, body, _preload_content=False)
        except ApiException as exc:
            if exc.status in (404, 409):
                raise Conflict(f"{namespace}/{name}: {exc.reason}") from exc
            raise

    def patch_pool_status(self, name: str, status: Obj) -> None:
        self.custom.patch_cluster_custom_object_status(
            GROUP, VERSION, AcceleratorPool.PLURAL, name, {"status": status}, _preload_content=False)

    def create(self, manifest: Obj) -> bool:
        """Create a pod or a Service; False when it exists already (a replayed decision)."""
        namespace = manifest["metadata"]["namespace"]
        create = self.core.create_namespaced_pod if manifest["kind"] == "Pod" else self.core.create_namespaced_service
        return _unless(409, lambda: create(namespace, manifest, _preload_content=False)) is not None

    def delete_pod(self, namespace: str, name: str, force: bool = False) -> bool:
        """`force` removes the object at once (grace 0): for pods on a node no kubelet answers for."""
        return _unless(404, lambda: self.core.delete_namespaced_pod(
            name, namespace, grace_period_seconds=0 if force else None, _preload_content=False)) is not None

    def post_event(self, involved: Obj, event: Event, now: datetime) -> None:
        meta = involved["metadata"]
        stamp = now.strftime("%Y-%m-%dT%H:%M:%SZ")
        self.core.create_namespaced_event(meta.get("namespace", "default"), {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta.get("namespace", "default")},
            "involvedObject": {"apiVersion": involved["apiVersion"], "kind": involved["kind"], "name": meta["name"],
                               "namespace": meta.get("namespace"), "uid": meta["uid"],
                               "resourceVersion": meta.get("resourceVersion")},
            "type": event.type,
            "reason": event.reason,
            "message": event.message[:1024],
            "source": {"component": COMPONENT},
            "reportingComponent": COMPONENT,
            "reportingInstance": COMPONENT,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }, _preload_content=False)
