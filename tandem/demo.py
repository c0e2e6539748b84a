"""`tandem demo`: the local cluster, the operator and a real training job, followed to the end.

It starts `tandem local`'s cluster in this process (simulated Ascend and NVIDIA nodes, see
examples/demo/cluster.yaml), the operator as a subprocess (as it runs in a cluster), applies
examples/demo/, and prints a status line whenever the job changes, until it Succeeds or Fails.
While it runs, the same cluster answers `kubectl` through the kubeconfig it prints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes
import yaml

from tandem.localcluster.cluster import LocalCluster
from tandem.localcluster.nodes import ClusterConfig

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "demo"
GROUP, VERSION = "tandem.dev", "v1alpha1"


@dataclass
class JobView:
    phase: str
    attempt: int
    pool: str
    pods: str
    checkpoint: int

    def line(self, elapsed: float) -> str:
        return (f"[{elapsed:6.1f}s] phase={self.phase:<10} attempt={self.attempt} pool={self.pool:<12} "
                f"checkpoint={self.checkpoint:<4} pods: {self.pods}")


def _view(job: dict[str, Any], pods: list[Any]) -> JobView:
    status = job.get("status", {})
    phases = [f"{p.metadata.name}={p.status.phase}" for p in sorted(pods, key=lambda p: p.metadata.name)
              if p.metadata.labels.get("tandem.dev/attempt") == str(status.get("attempt", 0))]
    return JobView(phase=status.get("phase", "-"), attempt=status.get("attempt", 0), pool=status.get("pool") or "-",
                   pods=" ".join(phases) or "-", checkpoint=status.get("lastCheckpoint", {}).get("step", 0))


def _apply(client: kubernetes.client.ApiClient, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for doc in docs:
        kubernetes.utils.create_from_dict(client, doc) if doc["apiVersion"] == "v1" else _create_custom(client, doc)
    return docs


def _create_custom(client: kubernetes.client.ApiClient, doc: dict[str, Any]) -> None:
    custom = kubernetes.client.CustomObjectsApi(client)
    plural = {"AcceleratorPool": "acceleratorpools", "TrainingJob": "trainingjobs"}[doc["kind"]]
    if doc["kind"] == "AcceleratorPool":
        custom.create_cluster_custom_object(GROUP, VERSION, plural, doc)
    else:
        custom.create_namespaced_custom_object(GROUP, VERSION, doc["metadata"].get("namespace", "default"), plural, doc)


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def demo_job(fast: bool) -> dict[str, Any]:
    """The demo's TrainingJob; `fast` trains fewer steps (the same story, shorter, for the tests)."""
    job = _load(EXAMPLES / "trainingjob.yaml")[0]
    if fast:
        job["spec"]["training"]["steps"] = 20
    return job


def run_demo(report: Path, fast: bool = False, timeout: float = 600.0) -> int:
    report.mkdir(parents=True, exist_ok=True)
    config = ClusterConfig.load(EXAMPLES / "cluster.yaml")
    print("tandem demo: a local cluster with simulated Ascend and NVIDIA nodes, the operator, a real job")
    with LocalCluster(config) as cluster:
        kubeconfig = cluster.write_kubeconfig(report / "kubeconfig")
        print(f"  API {cluster.url}; try, while it runs:")
        print(f"    export KUBECONFIG={kubeconfig}")
        print("    kubectl get tj,pods -o wide; kubectl describe tj llama-demo; kubectl get ap")
        operator_log = (report / "operator.log").open("wb")
        operator = subprocess.Popen(
            [str(Path(sys.executable).with_name("tandem")), "operator", "--metrics-port", "0", "--health-port", "0"],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=operator_log, stderr=subprocess.STDOUT,
            start_new_session=True)
        try:
            return _follow(cluster, report, demo_job(fast), timeout)
        finally:
            os.killpg(operator.pid, signal.SIGTERM)
            operator.wait(timeout=60)
            operator_log.close()


def _follow(cluster: LocalCluster, report: Path, job: dict[str, Any], timeout: float) -> int:
    configuration = kubernetes.client.Configuration()
    configuration.host = cluster.url
    client = kubernetes.client.ApiClient(configuration)
    _apply(client, _load(EXAMPLES / "pools.yaml"))
    _apply(client, [job])
    name, namespace = job["metadata"]["name"], job["metadata"].get("namespace", "default")
    custom, core = kubernetes.client.CustomObjectsApi(client), kubernetes.client.CoreV1Api(client)
    started, last = time.monotonic(), ""
    while time.monotonic() - started < timeout:
        current = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", name)
        pods = core.list_namespaced_pod(namespace, label_selector=f"tandem.dev/job={name}").items
        line = _view(current, pods).line(time.monotonic() - started)
        if line.split("]", 1)[1] != last:
            print(line, flush=True)
            last = line.split("]", 1)[1]
        phase = current.get("status", {}).get("phase")
        if phase in ("Succeeded", "Failed"):
            (report / "trainingjob.yaml").write_text(yaml.safe_dump(current, sort_keys=False))
            print(f"llama-demo {phase}: {current['status'].get('message', '')}")
            return 0 if phase == "Succeeded" else 1
        time.sleep(0.5)
    print(f"llama-demo did not finish within {timeout:.0f}s", file=sys.stderr)
    return 1
