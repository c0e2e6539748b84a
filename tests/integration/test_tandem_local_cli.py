"""`tandem local --kubeconfig PATH`, started as a user starts it, then used with kubectl."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import yaml

TANDEM = str(Path(sys.executable).with_name("tandem"))  # the console script of this environment


def test_tandem_local_serves_until_stopped(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kc"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(tmp_path / "cache")}
    server = subprocess.Popen([TANDEM, "local", "--kubeconfig", str(kubeconfig)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        assert "Kubernetes API at http://127.0.0.1:" in banner
        server_url = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
        assert server_url in banner
        nodes = subprocess.run(["/usr/bin/kubectl", "get", "nodes", "-o", "name"], env=env, capture_output=True,
                               text=True, timeout=60, check=True).stdout.split()
        assert "node/ascend-910b-node-0" in nodes and "node/h20-node-0" in nodes
    finally:
        server.send_signal(signal.SIGTERM)
        assert server.wait(timeout=30) == 0
