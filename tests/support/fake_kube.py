"""A fake Kubernetes API for the operator's shell (tandem.operator.controller): it records the calls the controller
makes, in order, and can be told to fail them."""

from __future__ import annotations

from typing import Any

from builders import make_job, make_node, make_pool


class FakeKube:
    """Records the calls the controller makes; `fail` makes the next N status patches raise."""

    def __init__(self, job: dict[str, Any], fail: list[Exception] | None = None) -> None:
        self.job, self.fail = job, list(fail or [])
        self.calls: list[str] = []
        self.deleted: list[str] = []
        self.patches: list[dict[str, Any]] = []
        self.events: list[Any] = []
        self.refuse: list[Exception] = []
        self.pool = make_pool().model_dump(mode="json", by_alias=True)
        self.pods: list[dict[str, Any]] = []  # the job's pods, as list_job_pods answers
        self.service: dict[str, Any] | None = None  # the job's Service, as get_service answers
        self.delete_errors: list[Exception] = []  # the next pod deletes raise these, one each
        self.event_errors: list[Exception] = []  # the next Event posts raise these, one each

    def get_job(self, namespace: str, name: str) -> dict[str, Any]:
        return self.job

    def list_pools(self) -> list[dict[str, Any]]:
        return [self.pool]

    def list_nodes(self) -> list[dict[str, Any]]:
        return [make_node("ascend-0", "ascend-910b"), make_node("ascend-1", "ascend-910b")]

    def list_device_reports(self, namespace: str) -> list[dict[str, Any]]:
        return []

    def list_job_pods(self, namespace: str, job: str, uid: str) -> list[dict[str, Any]]:
        return [p for p in self.pods if p["metadata"]["name"] not in self.deleted]

    def list_pool_pods(self, namespaces: list[str] | None = None) -> list[dict[str, Any]]:
        return []

    def get_service(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.service

    def read_log_tail(self, namespace: str, pod: str, lines: int = 1000) -> str:
        return ""

    def patch_job_status(self, namespace: str, name: str, resource_version: str, status: dict[str, Any]) -> str:
        self.calls.append("status")
        if self.fail:
            raise self.fail.pop(0)
        self.patches.append(status)
        merged = {**(self.job.get("status") or {}), **status}
        version = str(int(self.job["metadata"].get("resourceVersion", "1")) + 1)
        self.job = {**self.job, "metadata": {**self.job["metadata"], "resourceVersion": version},
                    "status": {k: v for k, v in merged.items() if v is not None}}
        return version

    def create(self, manifest: dict[str, Any]) -> bool:
        self.calls.append(f"create {manifest['metadata']['name']}")
        if self.refuse:
            raise self.refuse.pop(0)
        return True

    def delete_pod(self, namespace: str, name: str, uid: str | None = None, force: bool = False,
                   resource_version: str | None = None) -> bool:
        self.calls.append(f"delete {name}")
        if self.delete_errors:
            raise self.delete_errors.pop(0)
        self.deleted.append(name)
        return True

    def post_event(self, involved: dict[str, Any], event: Any) -> None:
        self.calls.append(f"event {event.reason}")
        if self.event_errors:
            raise self.event_errors.pop(0)
        self.events.append(event)


def job_dict() -> dict[str, Any]:
    return make_job().model_dump(mode="json", by_alias=True)
