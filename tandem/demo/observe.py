"""The demo's eyes (the shell around `model.py`): watches on the job, its pods and the Events, and
the pods' log files as the simulated kubelet writes them. Everything lands in one `Story` under a lock."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import kubernetes

from tandem.demo.logparse import parse_lines
from tandem.demo.model import Story, observe_event, observe_job, observe_logs, observe_pod
from tandem.localcluster.cluster import LocalCluster
from tandem.operator.api_types import GROUP, VERSION
from tandem.operator.podspec import JOB_LABEL
from tandem.runtime.ckpt_layout import step_dir

OnEvent = Callable[[str, dict[str, Any], float], None]


class Watcher(threading.Thread):
    """One watch, resumed from its last resourceVersion whenever the server ends it; a replayed object
    is harmless because every observation keeps its first sighting."""

    def __init__(self, name: str, list_fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 on_event: OnEvent, stop: threading.Event) -> None:
        super().__init__(name=f"demo-watch-{name}", daemon=True)
        self.list_fn, self.args, self.kwargs = list_fn, args, kwargs
        self.on_event, self.stop = on_event, stop

    def run(self) -> None:
        version: str | None = None
        while not self.stop.is_set():
            watch = kubernetes.watch.Watch()
            try:
                for event in watch.stream(self.list_fn, *self.args, resource_version=version, timeout_seconds=5,
                                          **self.kwargs):
                    at = time.time()  # the receipt time is the timestamp: the API's own have 1 s resolution
                    obj = event.get("raw_object") or {}
                    version = (obj.get("metadata") or {}).get("resourceVersion", version)
                    self.on_event(str(event.get("type")), obj, at)
                    if self.stop.is_set():
                        watch.stop()
            except kubernetes.client.ApiException as exc:
                version = None if exc.status == 410 else version
                time.sleep(0.2)
            except Exception:  # a dropped connection while the cluster stops: try again, or end
                time.sleep(0.2)


class Observer:
    def __init__(self, cluster: LocalCluster, client: kubernetes.client.ApiClient, namespace: str, job: str,
                 claim: str | None, started: float) -> None:
        self.cluster, self.namespace, self.job = cluster, namespace, job
        self.claim_dir = cluster.kubelet.claim_dir(namespace, claim) if cluster.kubelet and claim else None
        self.story = Story(started=started)
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._offsets: dict[str, int] = {}
        self.new_events: list[Any] = []  # Events not shown yet (the view takes them)
        core, custom = kubernetes.client.CoreV1Api(client), kubernetes.client.CustomObjectsApi(client)
        self.watchers = [
            Watcher("pods", core.list_namespaced_pod, (namespace,), {"label_selector": f"{JOB_LABEL}={job}"},
                    self._on_pod, self._stop),
            Watcher("events", core.list_namespaced_event, (namespace,), {}, self._on_event, self._stop),
            Watcher("job", custom.list_namespaced_custom_object, (GROUP, VERSION, namespace, "trainingjobs"),
                    {"field_selector": f"metadata.name={job}"}, self._on_job, self._stop),
        ]

    def start(self) -> Observer:
        for watcher in self.watchers:
            watcher.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for watcher in self.watchers:
            watcher.join(timeout=10)

    def _on_pod(self, kind: str, pod: dict[str, Any], at: float) -> None:
        with self.lock:
            observe_pod(self.story, kind, pod, at)

    def _on_event(self, kind: str, event: dict[str, Any], at: float) -> None:
        if kind == "DELETED":
            return
        with self.lock:
            seen = observe_event(self.story, event, at)
            if seen is not None:
                self.new_events.append(seen)

    def _on_job(self, kind: str, job: dict[str, Any], at: float) -> None:
        if kind != "DELETED":
            with self.lock:
                observe_job(self.story, job.get("status") or {}, at)

    def read_logs(self) -> None:
        """Read what the pods wrote since the last call (whole lines only)."""
        kubelet = self.cluster.kubelet
        if kubelet is None:
            return
        with self.lock:
            names = list(self.story.pods)
        for name in names:
            path = kubelet.log_path(self.namespace, name)
            if path is None or not path.exists():
                continue
            offset = self._offsets.get(name, 0)
            with path.open("rb") as handle:
                handle.seek(offset)
                chunk = handle.read()
            end = chunk.rfind(b"\n") + 1
            if end == 0:
                continue
            self._offsets[name] = offset + end
            records = parse_lines(chunk[:end].decode(errors="replace"))
            with self.lock:
                observe_logs(self.story, name, records)
                self._note_load_start(name, records)

    def _note_load_start(self, pod: str, records: list[Any]) -> None:
        """When an attempt first says `resumed`, the access time of its checkpoint's `.metadata` (read first
        by the load, never by the launcher; relatime updates it on that first read) marks the load's start."""
        seen = self.story.pods.get(pod)
        if seen is None or self.claim_dir is None:
            return
        new = {id(r) for r in records}
        for attempt in seen.attempts:
            mine = self.story.attempt_logs.get((pod, attempt), [])
            resumed = [r for r in mine if id(r) in new and r.event == "resumed" and r.step is not None]
            if resumed and attempt not in self.story.load_started:
                self._load_started(attempt, resumed[0])

    def _load_started(self, attempt: int, resumed: Any) -> None:
        try:
            atime = (step_dir(self.claim_dir, resumed.step) / ".metadata").stat().st_atime
        except OSError:
            return
        # The attempt began when its last pod was bound, or (in place) when the last pod that stayed was moved.
        began = [p.moved.get(attempt) or p.scheduled for p in self.story.attempt_pods(attempt)]
        began = [t for t in began if t]
        # An access time older than the attempt (noatime, or no read since it was written) marks nothing.
        if began and max(began) <= atime <= resumed.time:
            self.story.load_started[attempt] = atime

    def take_events(self) -> list[Any]:
        with self.lock:
            events, self.new_events = self.new_events, []
        return events

