"""`LocalCluster`: the local API served on 127.0.0.1 from a background thread, with simulated
nodes and (by default) Tandem's CRDs installed, plus a kubeconfig for kopf, the `kubernetes`
client and kubectl. Tests, `tandem local` and `tandem demo` all start it the same way."""

from __future__ import annotations

import asyncio
import concurrent.futures
import json
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self, TypeVar

import kmock
import yaml

from tandem.localcluster.api import LocalAPI
from tandem.localcluster.kubelet import Kubelet
from tandem.localcluster.node_lifecycle import run_node_lifecycle
from tandem.localcluster.nodes import DEFAULT_CLUSTER, ClusterConfig, node_manifests
from tandem.localcluster.quota import run_quota_controller
from tandem.localcluster.scheduling import run_scheduler

T = TypeVar("T")


def tandem_crds() -> list[dict[str, Any]]:
    # The CRDs are generated from the operator's pydantic models (pure; no kopf, no torch).
    from tandem.operator.crdgen import crd_documents

    return crd_documents()


class LocalCluster:
    def __init__(self, config: ClusterConfig | None = None, *, install_crds: bool = True,
                 host: str = "127.0.0.1", port: int = 0, kubelet: bool = True,
                 state_dir: str | Path | None = None) -> None:
        self.config = config or DEFAULT_CLUSTER
        self.install_crds = install_crds
        self.host, self.port = host, port
        self.api: LocalAPI | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stop: asyncio.Event | None = None
        self._started = concurrent.futures.Future[None]()
        # Pod logs, termination files and volume folders; a folder of our own is removed on stop.
        self._own_state_dir = state_dir is None
        self.state_dir = Path(tempfile.mkdtemp(prefix="tandem-local-")) if state_dir is None else Path(state_dir)
        self.kubelet = Kubelet(self.state_dir) if kubelet else None
        # Coroutines started beside the API: the control plane's controllers, then the kubelet.
        self.services: list[Callable[[LocalAPI], Any]] = [run_scheduler, run_node_lifecycle, run_quota_controller]
        if self.kubelet is not None:
            self.services.append(self.kubelet.run)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._run, name="tandem-local-api", daemon=True)
        self._thread.start()
        self._started.result(timeout=30)
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=30)
        if self.kubelet is not None:
            self.kubelet.kill_all()  # no pod process outlives the cluster, even if the loop died
        if self._own_state_dir:
            shutil.rmtree(self.state_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:
            if not self._started.done():
                self._started.set_exception(exc)
            raise

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        api = LocalAPI()
        async with api, kmock.Server(api, host=self.host, port=self.port or None, user_agent="") as server:
            self.port = server.port
            api.server_address = f"{self.host}:{self.port}"
            self.api = api
            self._bootstrap(api)
            tasks = [asyncio.create_task(service(api)) for service in self.services]
            self._started.set_result(None)
            await self._stop.wait()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def _bootstrap(self, api: LocalAPI) -> None:
        nodes = api.types[("", "v1", "nodes")]
        for manifest in node_manifests(self.config):
            api.store.create(nodes, None, manifest)
        if self.install_crds:
            crd_type = api.types[("apiextensions.k8s.io", "v1", "customresourcedefinitions")]
            for crd in tandem_crds():
                # As if `kubectl apply -f crds/` had run, so that applying them again is quiet.
                applied = json.dumps(crd, separators=(",", ":"), sort_keys=True)
                crd = {**crd, "metadata": {**crd["metadata"], "annotations": {
                    "kubectl.kubernetes.io/last-applied-configuration": applied}}}
                admitted, _ = api.admission.admit(crd_type, crd, "Strict", creating=True)
                api._sync_crd(api.store.create(crd_type, None, admitted), None)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn(*args)` on the API's loop (the store is not thread-safe) and return its result."""
        assert self._loop is not None

        async def run() -> T:
            return fn(*args)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=30)

    def kubeconfig(self, namespace: str = "default") -> dict[str, Any]:
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "tandem-local", "cluster": {"server": self.url}}],
            "users": [{"name": "tandem-local", "user": {}}],
            "contexts": [{"name": "tandem-local",
                          "context": {"cluster": "tandem-local", "user": "tandem-local", "namespace": namespace}}],
            "current-context": "tandem-local",
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.kubeconfig(), sort_keys=False))
        return path
