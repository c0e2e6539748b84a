"""Shared fixtures: a local cluster, a `kubernetes` client for it (and its core and custom-objects APIs), the real
kubectl and the real operator."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from waiting import wait_for

REPO = Path(__file__).resolve().parent.parent
KUBECTL = "/usr/bin/kubectl"


@pytest.fixture(name="wait_for")
def wait_for_fixture() -> Callable[..., Any]:
    return wait_for


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tandem.localcluster.cluster import LocalCluster

    with LocalCluster() as local:
        local.kubeconfig_path = local.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        yield local


@pytest.fixture(scope="module")
def api_client(cluster: Any) -> Iterator[Any]:
    import kubernetes

    configuration = kubernetes.client.Configuration()
    configuration.host = cluster.url
    with kubernetes.client.ApiClient(configuration) as client:
        yield client


@pytest.fixture(scope="module")
def kubectl(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Callable[..., subprocess.CompletedProcess[str]]:
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig_path),
           "KUBECACHEDIR": str(tmp_path_factory.mktemp("kubecache"))}

    def run(*args: str, stdin: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([KUBECTL, *args], input=stdin, env=env, cwd=REPO, capture_output=True, text=True,
                                timeout=60)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    run.env = env  # type: ignore[attr-defined]
    return run


@pytest.fixture(scope="module")
def operator(cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """The real operator, as a subprocess, watching the module's local cluster."""
    from operator_process import OperatorProcess

    process = OperatorProcess(cluster.kubeconfig_path, tmp_path_factory.mktemp("operator")).start()
    yield process
    process.stop()


@pytest.fixture(scope="module")
def core(api_client: Any) -> Any:
    import kubernetes

    return kubernetes.client.CoreV1Api(api_client)


@pytest.fixture(scope="module")
def custom(api_client: Any, operator: Any) -> Any:
    """The custom-objects API, once the module's operator runs and the simulated pools exist (a module that
    overrides `operator`, like tests/integration/test_operator_faults.py, gets its own operator here)."""
    import kubernetes
    from manifests import GROUP, VERSION, simulated_pools

    api = kubernetes.client.CustomObjectsApi(api_client)
    for pool in simulated_pools():
        api.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools", pool)
    return api
