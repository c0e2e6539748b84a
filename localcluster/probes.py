"""Readiness probes for the simulated kubelet: an `exec` probe runs its command in the container's environment
every periodSeconds (its paths rewritten like the container's), and successThreshold / failureThreshold results
in a row flip the container's `ready` and the pod's Ready and ContainersReady conditions. httpGet, tcpSocket and
grpc probes are not emulated: a container with one is reported ready, as before this module."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from tandem.localcluster.containers import rewrite_path

Obj = dict[str, Any]


def exec_probe(container: Obj) -> Obj | None:
    probe = container.get("readinessProbe") or {}
    return probe if isinstance((probe.get("exec") or {}).get("command"), list) else None


async def _passes(command: list[str], env: Mapping[str, str], cwd: Path, timeout: float) -> bool:
    try:
        process = await asyncio.create_subprocess_exec(
            *command, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL, env=dict(env), cwd=cwd, start_new_session=True)
    except OSError:
        return False  # as the kubelet: a probe whose command cannot run fails
    try:
        return await asyncio.wait_for(process.wait(), timeout) == 0
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        await process.wait()
        return False


async def follow_readiness(probe: Obj, table: list[tuple[str, Path]], env: Mapping[str, str], cwd: Path,
                           alive: Callable[[], bool], report: Callable[[bool], None]) -> None:
    """Probe while the container runs; `report(ready)` on every change (the container starts not ready)."""
    command = [rewrite_path(str(part), table) for part in probe["exec"]["command"]]
    period = max(float(probe.get("periodSeconds") or 10), 1.0)
    timeout = max(float(probe.get("timeoutSeconds") or 1), 1.0)
    needed = {True: max(int(probe.get("successThreshold") or 1), 1),
              False: max(int(probe.get("failureThreshold") or 3), 1)}
    await asyncio.sleep(max(float(probe.get("initialDelaySeconds") or 0), 0.0))
    ready, streak, last = False, 0, None
    while alive():
        result = await _passes(command, env, cwd, timeout)
        streak = streak + 1 if result == last else 1
        last = result
        if result != ready and streak >= needed[result] and alive():
            ready = result
            report(ready)
        await asyncio.sleep(period)
