"""`tandem local --kubeconfig PATH`: serve the local cluster until Ctrl-C."""

from __future__ import annotations

import signal
import threading

from tandem.localcluster.cluster import LocalCluster
from tandem.localcluster.nodes import ClusterConfig


def serve(kubeconfig: str, port: int = 0, cluster_config: str | None = None, install_crds: bool = True) -> int:
    cluster = LocalCluster(ClusterConfig.load(cluster_config), install_crds=install_crds, port=port)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with cluster:
        path = cluster.write_kubeconfig(kubeconfig)
        nodes = sum(p.nodes for p in cluster.config.pools)
        print(f"tandem local: Kubernetes API at {cluster.url}  ({nodes} simulated nodes)", flush=True)
        print(f"  export KUBECONFIG={path}", flush=True)
        print("  kubectl get nodes; kubectl apply -f examples/local/; kubectl get tj", flush=True)
        print("Serving until Ctrl-C.", flush=True)
        try:
            while not stopped.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    return 0
