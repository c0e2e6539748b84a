"""`tandem operator` as a subprocess against a local cluster, the way a user runs it: it can be
killed (SIGKILL, like a crashed pod) and started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from processes import free_port


class OperatorProcess:
    def __init__(self, kubeconfig: Path, log_dir: Path, env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.extra_env = env or {}
        self.log_dir = log_dir
        self.metrics_port = free_port()
        self.health_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def log_path(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self) -> OperatorProcess:
        self.starts += 1
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig), "TANDEM_LOG_LEVEL": "INFO", **self.extra_env}
        tandem = str(Path(sys.executable).with_name("tandem"))
        self.process = subprocess.Popen(
            [tandem, "operator", "--metrics-port", str(self.metrics_port), "--health-port", str(self.health_port)],
            env=env, stdout=self.log_path.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
        return self

    def kill(self) -> None:
        """SIGKILL: no clean-up handlers run, as when a node dies under the operator."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in sorted(self.log_dir.glob("operator-*.log")))
