"""What the simulated kubelet keeps per pod it has started (or given up on): its folder, its
process and how it is being stopped. `kubelet.py` owns the instances; this is only the record."""

from __future__ import annotations

import asyncio
import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from tandem.localcluster.store import Key


def signal_group(pid: int, sig: int) -> None:
    """Signal a container's whole process group; one that is gone already is no error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


@dataclass
class PodRun:
    key: Key
    uid: str
    dir: Path
    node: str = ""
    process: asyncio.subprocess.Process | None = None
    container_id: str | None = None
    started_at: str | None = None
    stop_grace: int | None = None  # set once the pod is being deleted
    reason: str | None = None  # a termination reason forced by fault injection (e.g. OOMKilled)
    lost: bool = False  # killed with its node: reported ContainerStatusUnknown once the node is back
    folders: dict[str, Path] = field(default_factory=dict)  # volume name -> its folder here (downwardAPI refresh)
    simulation: asyncio.Task[None] | None = None  # a simulated pod's script (simulated.py): no process at all
    done: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def log(self) -> Path:
        return self.dir / "container.log"

    @property
    def termination_file(self) -> Path:
        return self.dir / "termination-log"

    @property
    def alive(self) -> bool:
        return not self.done.is_set()
