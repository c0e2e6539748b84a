"""Shared fixtures: a local cluster, a `kubernetes` client for it, and the real kubectl."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
KUBECTL = "/usr/bin/kubectl"


def wait_for(condition: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "") -> Any:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = condition()
            if result:
                return result
        except Exception as exc:  # the condition may race with the thing it waits for
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what or condition}; last error: {last_error}")


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
