"""A supervised command's whole process tree, for tandem-run to end it (Linux /proc; elsewhere the tree is empty).

torchrun starts each worker in a session of its own, so the command's process group is not its whole tree. When
tandem-run ends a hung command, its SIGTERM reaches torchrun, which asks its workers to stop and waits up to 30 s
for them; tandem-run's SIGKILL after its own grace ends torchrun first. A worker that had not stopped by then (one
that handles SIGTERM, or is stuck in a driver call) was left running, holding its devices and the pod's output,
while tandem-run started the next attempt in the same pod (an in-place restart) on the same devices. tandem-run
therefore notes the tree before it signals anything, and ends what is left of it afterwards."""

from __future__ import annotations

import os
import signal
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")


@dataclass(frozen=True)
class Process:
    pid: int
    started: int  # clock ticks after boot: with the pid, names the process even once the pid is reused


def _stat(pid: int) -> tuple[int, int] | None:
    """(parent pid, start time) of a live process, None when it is gone or a zombie."""
    try:
        text = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # pid (comm) state ppid ... starttime (the 22nd field): comm may hold spaces and parentheses.
    fields = text.rsplit(")", 1)[1].split()
    return None if fields[0] in ("Z", "X") else (int(fields[1]), int(fields[19]))


def tree(root: int) -> list[Process]:
    """The live processes below `root` (not `root` itself), nearest first."""
    if not PROC.is_dir():
        return []
    children: defaultdict[int, list[Process]] = defaultdict(list)
    for entry in os.listdir(PROC):
        if entry.isdigit() and (stat := _stat(int(entry))) is not None:
            children[stat[0]].append(Process(int(entry), stat[1]))
    found: list[Process] = []
    frontier = [root]
    while frontier:
        level = sorted((p for pid in frontier for p in children.get(pid, ())), key=lambda p: p.pid)
        found += level
        frontier = [p.pid for p in level]
    return found


def end(processes: list[Process]) -> list[int]:
    """SIGKILL those of `processes` still running (the same process: its pid and start time); their pids."""
    ended = []
    for process in processes:
        stat = _stat(process.pid)
        if stat is None or stat[1] != process.started:
            continue  # gone, or its pid now names another process
        try:
            os.kill(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
        ended.append(process.pid)
    return ended
