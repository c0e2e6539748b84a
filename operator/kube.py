"""The Kubernetes API calls the operator makes, and nothing else: a thin shell over the official
client that speaks plain JSON dicts (the core's language) and makes the calls idempotent:
creating what exists (409) and deleting what is gone (404) are not errors."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import kubernetes
from kubernetes.client.exceptions import ApiException

from tandem.operator.api import GROUP, VERSION, AcceleratorPool, PendingEvent, TrainingJob
from tandem.operator.podspec import ATTEMPT_LABEL, JOB_LABEL, POOL_LABEL, owned_by

Obj = dict[str, Any]
COMPONENT = "tandem-operator"
# Every call gives up: a hung API server must not hang the reconcile of every job behind it.
REQUEST_TIMEOUT = (5.0, 30.0)  # (connect, read) seconds
CALL: dict[str, Any] = {"_preload_content": False, "_request_timeout": REQUEST_TIMEOUT}  # raw JSON, bounded
# The Ascend device plugin and NodeD label their fault reports so; nothing else of the namespace is read.
DEVICE_REPORT_SELECTOR = "mx-consumer-cim=true"
# kopf's peering objects (the chart's crds/): one ClusterKopfPeering, or a KopfPeering per namespace.
PEERING_GROUP, PEERING_VERSION = "kopf.dev", "v1"


class Conflict(Exception):
    """Our view was stale (409 on a write guarded by resourceVersion or a precondition): observe again."""


class Refused(Exception):
    """The API server refused to create an object (400, 403 from a quota or Pod Security, 422): retrying
    the same request cannot help until something changes; the job must say why."""

    def __init__(self, kind: str, name: str, status: int, message: str) -> None:
        super().__init__(f"{kind} {name}: {status} {message}")
        self.kind, self.name, self.status, self.message = kind, name, status, message


class Foreign(Exception):
    """An object of the name we need exists and belongs to someone else (an earlier job of the same name)."""


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


def _message(exc: ApiException) -> str:
    """The server's own words (the Status message), else the HTTP reason."""
    try:
        return str(json.loads(exc.body or "{}").get("message") or exc.reason)
    except (ValueError, AttributeError):
        return str(exc.reason)


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
            GROUP, VERSION, namespace, TrainingJob.PLURAL, name, **CALL))

    def list_jobs(self, namespaces: list[str] | None = None) -> list[Obj]:
        """Every namespace, or only those the operator serves (its RBAC may allow no more)."""
        if not namespaces:
            return _json(self.custom.list_cluster_custom_object(
                GROUP, VERSION, TrainingJob.PLURAL, **CALL))["items"]
        return [job for namespace in namespaces for job in _json(self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, TrainingJob.PLURAL, **CALL))["items"]]

    def list_pools(self) -> list[Obj]:
        return _json(self.custom.list_cluster_custom_object(
            GROUP, VERSION, AcceleratorPool.PLURAL, **CALL))["items"]

    def list_nodes(self) -> list[Obj]:
        return _json(self.core.list_node(**CALL))["items"]

    def list_device_reports(self, namespace: str) -> list[Obj]:
        return _json(self.core.list_namespaced_config_map(
            namespace, label_selector=DEVICE_REPORT_SELECTOR, **CALL))["items"]

    def list_job_pods(self, namespace: str, job: str, uid: str) -> list[Obj]:
        """The pods this job owns: a job deleted and created again under the same name never sees the old
        one's pods (they carry its name, but another uid in their ownerReference)."""
        pods = _json(self.core.list_namespaced_pod(
            namespace, label_selector=f"{JOB_LABEL}={job}", **CALL))["items"]
        return [pod for pod in pods if owned_by(pod, uid)]

    def list_pool_pods(self, namespaces: list[str] | None = None) -> list[Obj]:
        """Every pod that runs (or waits to run) on a pool, in the namespaces the operator serves: what the
        other jobs hold when a new attempt asks for room."""
        if not namespaces:
            return _json(self.core.list_pod_for_all_namespaces(label_selector=POOL_LABEL, **CALL))["items"]
        return [pod for namespace in namespaces for pod in _json(self.core.list_namespaced_pod(
            namespace, label_selector=POOL_LABEL, **CALL))["items"]]

    def read_log_tail(self, namespace: str, pod: str, lines: int = 1000) -> str:
        """The last lines of the pod's training container log ("" when the pod is gone)."""
        response = _unless(404, lambda: self.core.read_namespaced_pod_log(
            pod, namespace, tail_lines=lines, **CALL))
        return "" if response is None else response.data.decode("utf-8", "replace")

    def get_service(self, namespace: str, name: str) -> Obj | None:
        return _found(lambda: self.core.read_namespaced_service(
            name, namespace, **CALL))

    def get_peering(self, name: str, namespace: str | None) -> Obj | None:
        """The peering object's status (its replicas' records); None when the object does not exist."""
        if namespace is None:
            obj = _found(lambda: self.custom.get_cluster_custom_object(
                PEERING_GROUP, PEERING_VERSION, "clusterkopfpeerings", name, **CALL))
        else:
            obj = _found(lambda: self.custom.get_namespaced_custom_object(
                PEERING_GROUP, PEERING_VERSION, namespace, "kopfpeerings", name, **CALL))
        return None if obj is None else dict(obj.get("status") or {})

    # --- writes ----------------------------------------------------------------------------
    def patch_job_status(self, namespace: str, name: str, resource_version: str, status: Obj) -> str:
        """The whole status, guarded by the resourceVersion the decision was made on (a JSON merge patch:
        a null clears a field). Returns the job's new resourceVersion."""
        body = {"metadata": {"resourceVersion": resource_version}, "status": status}
        try:
            response = self.custom.patch_namespaced_custom_object_status(
                GROUP, VERSION, namespace, TrainingJob.PLURAL, name, body, **CALL)
        except ApiException as exc:
            if exc.status in (404, 409):
                raise Conflict(f"{namespace}/{name}: {exc.reason}") from exc
            raise
        return str(_json(response)["metadata"]["resourceVersion"])

    def patch_pool_status(self, name: str, status: Obj) -> None:
        self.custom.patch_cluster_custom_object_status(
            GROUP, VERSION, AcceleratorPool.PLURAL, name, {"status": status}, **CALL)

    def create(self, manifest: Obj) -> bool:
        """Create a pod or a Service; False when ours exists already (a replayed decision). Raises Foreign
        when the name is taken by another owner, Refused when the server refuses the object itself."""
        meta = manifest["metadata"]
        namespace, kind = meta["namespace"], manifest["kind"]
        pod = kind == "Pod"
        try:
            if pod:
                self.core.create_namespaced_pod(namespace, manifest, **CALL)
            else:
                self.core.create_namespaced_service(namespace, manifest, **CALL)
            return True
        except ApiException as exc:
            if exc.status == 409:
                existing = (_found(lambda: self.core.read_namespaced_pod(meta["name"], namespace, **CALL)) if pod
                            else self.get_service(namespace, meta["name"]))
                owner = meta["ownerReferences"][0]["uid"]
                if existing is not None and not owned_by(existing, owner):
                    raise Foreign(f"{kind} {meta['name']} exists and belongs to another owner") from exc
                return False
            if exc.status in (400, 403, 422):
                raise Refused(kind, meta["name"], exc.status, _message(exc)) from exc
            raise

    def delete_pod(self, namespace: str, name: str, uid: str | None = None, force: bool = False,
                   resource_version: str | None = None) -> bool:
        """`uid` (and `resource_version`): delete only the pod we observed (preconditions the API server checks),
        never one that took its name since (or changed since: moved to a newer attempt in place). `force` removes
        the object at once (grace 0): for pods on a node no kubelet answers for."""
        preconditions = {k: v for k, v in (("uid", uid), ("resourceVersion", resource_version)) if v}
        body = {"preconditions": preconditions} if preconditions else None
        try:
            return _unless(404, lambda: self.core.delete_namespaced_pod(
                name, namespace, grace_period_seconds=0 if force else None, body=body, **CALL)) is not None
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"pod {namespace}/{name}: {_message(exc)}") from exc
            raise

    def label_pod_attempt(self, namespace: str, name: str, attempt: int, uid: str | None = None,
                          resource_version: str | None = None) -> bool:
        """Move a pod to another attempt (an in-place restart: its supervisor reads the label). The uid (and the
        resourceVersion) in the patch are preconditions the API server checks: never a pod that took the name, or
        changed, since. False: the pod is gone."""
        meta: Obj = {"labels": {ATTEMPT_LABEL: str(attempt)}}
        if uid:
            meta["uid"] = uid
        if resource_version:
            meta["resourceVersion"] = resource_version
        try:
            return _unless(404, lambda: self.core.patch_namespaced_pod(name, namespace, {"metadata": meta},
                                                                       **CALL)) is not None
        except ApiException as exc:
            if exc.status == 409:
                raise Conflict(f"pod {namespace}/{name}: {_message(exc)}") from exc
            raise

    def post_event(self, involved: Obj, event: PendingEvent) -> None:
        """Posted under a name derived from the event itself: a replay after a crash (or a retried call)
        answers 409 and posts nothing twice."""
        meta = involved["metadata"]
        stamp = event.time.strftime("%Y-%m-%dT%H:%M:%SZ")
        digest = hashlib.sha256(f"{meta['uid']}|{event.time.isoformat()}|{event.reason}|{event.message}".encode())
        _unless(409, lambda: self.core.create_namespaced_event(meta.get("namespace", "default"), {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"{meta['name']}.{digest.hexdigest()[:16]}",
                         "namespace": meta.get("namespace", "default")},
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
        }, **CALL))
