"""kopf, unmodified, runs against the local API: it sees a created TrainingJob and patches its status."""

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes

HANDLERS = Path(__file__).with_name("kopf_smoke_handlers.py")


def test_kopf_sees_a_trainingjob_and_patches_its_status(
    cluster: Any, api_client: Any, wait_for: Any, tmp_path: Path
) -> None:
    custom = kubernetes.client.CustomObjectsApi(api_client)
    job = {"apiVersion": "tandem.dev/v1alpha1", "kind": "TrainingJob", "metadata": {"name": "smoke"},
           "spec": {"nodes": 1, "pools": ["ascend-910b"], "checkpoint": {"volume": {"emptyDir": {}}}}}
    log = (tmp_path / "kopf.log").open("w")
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig_path)}
    kopf = subprocess.Popen([sys.executable, "-P", "-m", "kopf", "run", "--standalone", "--all-namespaces", "--verbose",
                             str(HANDLERS)], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        custom.create_namespaced_custom_object("tandem.dev", "v1alpha1", "default", "trainingjobs", job)

        def patched() -> dict[str, Any] | None:
            found = custom.get_namespaced_custom_object("tandem.dev", "v1alpha1", "default", "trainingjobs", "smoke")
            return found if found.get("status", {}).get("phase") == "Starting" else None

        status = wait_for(patched, timeout=60, what="kopf to patch the TrainingJob's status")
    finally:
        kopf.terminate()
        kopf.wait(timeout=30)
        log.close()
    output = (tmp_path / "kopf.log").read_text()
    assert status["status"]["pool"] == "ascend-910b"
    assert "Handler 'mark_starting' succeeded" in output, output
    assert "Traceback" not in output, output
