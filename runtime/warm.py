"""Warm workers for in-place restarts (`tandem-train`): once a generation of workers has passed its first step, the
launcher starts one standby process per local rank that imports torch and the trainer and then waits. The next
generation's worker of that rank is the standby, told its arguments and environment on its stdin: the import
(seconds on a cold page cache, more with torch_npu) is already paid. A standby costs the memory of an imported
torch per local rank (a few hundred MB of host memory) while it waits.

Not the device runtime: CUDA and ACL contexts do not survive a fork and bind a device, so each worker still
initialises its device and process group itself."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Mapping

WORKER = [sys.executable, "-m", "tandem.runtime.worker"]
# What torch imports lazily on a worker's first fully_shard and first checkpoint load (found by comparing
# sys.modules before and after a worker's start-up): about 1 s of a 1.3 s start-up once torch is imported. Private
# names of torch 2.13: one that a later torch lacks is skipped.
WARM_MODULES = ("torch._dynamo", "torch.distributed.checkpoint._fsspec_filesystem", "torch.utils.serialization",
                "numpy.random")


class WarmPool:
    """Standby workers by local rank; the launcher owns it and closes it when it exits."""

    def __init__(self) -> None:
        self._standby: dict[int, subprocess.Popen[bytes]] = {}

    def prepare(self, local_ranks: range, env_of: Callable[[int], Mapping[str, str]]) -> None:
        """A standby for each local rank that has none (one that died meanwhile is replaced)."""
        for local in local_ranks:
            proc = self._standby.get(local)
            if proc is None or proc.poll() is not None:
                self._standby[local] = subprocess.Popen([*WORKER, "--standby"], stdin=subprocess.PIPE,
                                                        env=dict(env_of(local)))

    def start(self, local: int, args: list[str], env: Mapping[str, str]) -> subprocess.Popen[bytes] | None:
        """The standby of `local`, now running the worker with `args` and `env`; None when there is none (the
        caller starts a cold one)."""
        proc = self._standby.pop(local, None)
        if proc is None or proc.poll() is not None or proc.stdin is None:
            return None
        try:
            proc.stdin.write((json.dumps({"argv": args, "env": dict(env)}) + "\n").encode())
            proc.stdin.close()
        except OSError:  # it died between the check and the write
            return None
        return proc

    def close(self) -> None:
        for proc in self._standby.values():
            if proc.poll() is None:
                proc.kill()
        self._standby.clear()


def warm_up() -> None:
    """In a standby: import what the worker will need, the lazily imported parts of torch included."""
    import importlib

    import tandem.runtime.config
    import tandem.runtime.train  # noqa: F401  (torch, the model, the kernels)

    for name in WARM_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            continue


def wait_for_orders() -> tuple[list[str], dict[str, str]] | None:
    """In a standby: block until the launcher hands over the worker's arguments and environment; None at EOF (the
    launcher exited or gave up on it)."""
    line = sys.stdin.readline()
    if not line.strip():
        return None
    order = json.loads(line)
    return [str(a) for a in order["argv"]], {str(k): str(v) for k, v in order["env"].items()}
