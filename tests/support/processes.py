"""Processes on the host: a free local port for one, and a simulated pod's process seen from the host."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
