"""Install the chart into the local cluster as far as it goes without a kubelet for the operator: the
CRDs from helm/tandem/crds, the rendered custom objects (pools, kopf peering), then the operator
processes started with the rendered Deployment's command, arguments and environment. Every request
they send is recorded through the local API's `on_request` hook."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import kubernetes
import yaml
from helm_support import CHART, PEERING_PLURALS, REPO, Call, Obj, Rendered, call_from_request, render
from processes import free_port
from waiting import wait_for

from tandem.localcluster.cluster import LocalCluster

TEST_AGENT = "tandem-helm-test"
# The operator's two clients: kopf's aiohttp session and the kubernetes client of operator/kube.py.
OPERATOR_AGENTS = ("kopf/", "OpenAPI-Generator/")
GROUP, VERSION = "tandem.dev", "v1alpha1"


def http_status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)


def http_text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def entrypoint() -> list[str]:
    """The image's ENTRYPOINT, with `tandem` resolved to this environment's console script."""
    text = (REPO / "operator" / "Dockerfile").read_text()
    command = json.loads(next(line for line in text.splitlines() if line.startswith("ENTRYPOINT "))[11:])
    return [str(Path(sys.executable).with_name(command[0])), *command[1:]]


@dataclass
class Replica:
    rendered: Rendered
    log: Path
    process: subprocess.Popen[bytes]

    def port(self, name: str) -> int:
        return next(p["containerPort"] for p in self.rendered.container()["ports"] if p["name"] == name)

    def probe(self, kind: str) -> int:
        get = self.rendered.container()[kind]["httpGet"]
        return http_status(f"http://127.0.0.1:{self.port(get['port'])}{get['path']}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)

    def logs(self) -> str:
        return self.log.read_text(errors="replace")


@dataclass
class ChartRun:
    cluster: LocalCluster
    client: kubernetes.client.ApiClient
    replicas: list[Replica] = field(default_factory=list)
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)

    @property
    def custom(self) -> kubernetes.client.CustomObjectsApi:
        return kubernetes.client.CustomObjectsApi(self.client)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(self.client)

    def record(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> None:
        agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), "")
        self.requests.append((method, path, query, agent))

    def operator_calls(self) -> list[Call]:
        calls = [call_from_request(method, path, query) for method, path, query, agent in list(self.requests)
                 if agent.startswith(OPERATOR_AGENTS)]
        return [c for c in calls if c is not None]

    def agents(self) -> set[str]:
        return {agent.split("/")[0] for *_, agent in list(self.requests)}

    # --- installing ------------------------------------------------------------------------------
    def install(self, rendered: Rendered, extra: list[Obj]) -> None:
        """What `helm install` creates that the local API serves: CRDs first, then custom objects."""
        crds = kubernetes.client.ApiextensionsV1Api(self.client)
        for path in sorted((CHART / "crds").glob("*.yaml")):
            for crd in filter(None, yaml.safe_load_all(path.read_text())):
                crds.create_custom_resource_definition(crd)
        for obj in rendered.objects + extra:
            self.create(obj)

    def create(self, obj: Obj) -> None:
        group, _, version = obj["apiVersion"].rpartition("/")
        plural = {"AcceleratorPool": "acceleratorpools", **PEERING_PLURALS}.get(obj["kind"])
        if plural is None:
            return  # built-in kinds (Deployment, RBAC, Service, ...): no local controller runs them
        namespace = obj["metadata"].get("namespace")
        if namespace:
            self.ensure_namespace(namespace)
            self.custom.create_namespaced_custom_object(group, version, namespace, plural, obj)
        else:
            self.custom.create_cluster_custom_object(group, version, plural, obj)

    def ensure_namespace(self, name: str) -> None:
        if name not in {n.metadata.name for n in self.core.list_namespace().items}:
            self.core.create_namespace({"metadata": {"name": name}})

    # --- the operator ----------------------------------------------------------------------------
    def start_operators(self, values: Obj, count: int, log_dir: Path) -> list[Replica]:
        """`count` replicas of the rendered Deployment, started together; each renders `values` with its own
        free ports (they share one host here), and is ready when its readiness probe answers 200."""
        started = []
        for _ in range(count):
            ports = {"metrics": {**values.get("metrics", {}), "port": free_port()}, "health": {"port": free_port()}}
            rendered = render({**values, **ports})
            container = rendered.container()
            env = {e["name"]: e["value"] for e in container["env"]}  # the chart sets plain values only
            log = log_dir / f"operator-{len(self.replicas)}.log"
            process = subprocess.Popen(
                [*entrypoint(), *container["args"]],
                env={**os.environ, **env, "KUBECONFIG": str(self.cluster.kubeconfig_path)},
                stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
            self.replicas.append(Replica(rendered, log, process))
            started.append(self.replicas[-1])
        for replica in started:
            wait_for(lambda r=replica: r.process.poll() is not None or r.probe("readinessProbe") == 200, timeout=60,
                     interval=0.1, what="the readiness probe")
            assert replica.process.poll() is None, replica.logs()
        if count > 1:
            # kopf's peering is eventual: until every replica has written its record into the peering
            # object (and the others have seen it), more than one may act. Like a rollout, wait for it.
            peering = next(o for o in started[0].rendered.objects if o["kind"] in ("ClusterKopfPeering", "KopfPeering"))
            wait_for(lambda: len(self._peering_status(peering)) >= count, timeout=60, interval=0.1,
                     what="every replica in the peering object")
        return started

    def _peering_status(self, peering: Obj) -> Obj:
        name, namespace = peering["metadata"]["name"], peering["metadata"].get("namespace")
        if namespace:
            obj = self.custom.get_namespaced_custom_object("kopf.dev", "v1", namespace, "kopfpeerings", name)
        else:
            obj = self.custom.get_cluster_custom_object("kopf.dev", "v1", "clusterkopfpeerings", name)
        return obj.get("status") or {}

    def submit(self, namespace: str, name: str, code: str, nodes: int = 2, launcher: list[str] | None = None) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
            # A team's own code the way issue 16 lets them write it (the command per accelerator, a scratch volume,
            # shm, labels): the RBAC tests then cover what the operator does for such a job.
            "spec": {"nodes": nodes, "pools": ["ascend-910b", "h20"],
                     "container": {"byAccelerator": {kind: {"command": [*(launcher or []), sys.executable, "-P",
                                                                        "-c", code]}
                                                     for kind in ("npu", "gpu")},
                                   "volumeMounts": [{"name": "scratch", "mountPath": "/scratch"}],
                                   "shmSize": "64Mi"},
                     "podTemplate": {"metadata": {"labels": {"team": "chart-test"}},
                                     "spec": {"volumes": [{"name": "scratch", "emptyDir": {}}]}},
                     "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "ckpt"}}}}})

    def phase(self, namespace: str, name: str) -> str | None:
        job = self.custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", name)
        return (job.get("status") or {}).get("phase")

    def wait_phase(self, namespace: str, name: str, phase: str, timeout: float = 60) -> None:
        wait_for(lambda: self.phase(namespace, name) == phase, timeout=timeout, interval=0.1,
                 what=f"{namespace}/{name} to be {phase}")

    def pods(self, namespace: str, job: str) -> list[str]:
        return sorted(p.metadata.name for p in self.core.list_namespaced_pod(
            namespace, label_selector=f"tandem.dev/job={job}").items)


@contextmanager
def chart_run(tmp: Path) -> Iterator[ChartRun]:
    with LocalCluster(install_crds=False) as cluster:
        cluster.kubeconfig_path = cluster.write_kubeconfig(tmp / "kubeconfig")  # type: ignore[attr-defined]
        configuration = kubernetes.client.Configuration()
        configuration.host = cluster.url
        with kubernetes.client.ApiClient(configuration) as client:
            client.user_agent = TEST_AGENT
            run = ChartRun(cluster, client)
            assert cluster.api is not None
            cluster.api.on_request = run.record
            try:
                yield run
            finally:
                for replica in run.replicas:
                    replica.stop()
