"""Looking at a simulated pod's process from the host."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def pod_pid(pod: dict[str, Any]) -> int:
    """The local kubelet's containerID ends with the process id."""
    return int(pod["status"]["containerStatuses"][0]["containerID"].rsplit("/", 1)[1])


def process_alive(pid: int) -> bool:
    """Running, not a zombie waiting for whatever init this machine has to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")
