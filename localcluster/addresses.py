"""Pod addresses for the simulated kubelet: every pod runs on this machine, so each gets its own
loopback address (127.0.0.N) as its podIP, a pod's DNS name through a headless Service resolves to
the address of the pod with that hostname and subdomain, and MASTER_PORT becomes a free port
shared by every pod naming the same MASTER_ADDR (torch's TCPStore listens on every address, so
two jobs on one machine would otherwise collide on 29500)."""

from __future__ import annotations

import socket
from collections.abc import Callable, Mapping

from tandem.localcluster.resources import GroupResource
from tandem.localcluster.store import Key, Obj

PODS = GroupResource("", "pods")


class PodAddresses:
    def __init__(self, objects: Callable[[], Mapping[Key, Obj]]) -> None:
        self._objects = objects  # the store's objects, read when a name is resolved
        self._ips: dict[str, str] = {}  # pod uid -> loopback address
        self._next_ip = 2
        self._ports: dict[tuple[str, str], str] = {}

    def ip(self, uid: str) -> str:
        if uid not in self._ips:
            while self._next_ip % 256 in (0, 255):
                self._next_ip += 1
            self._ips[uid] = f"127.0.{self._next_ip // 256}.{self._next_ip % 256}"
            self._next_ip += 1
        return self._ips[uid]

    def resolve(self, namespace: str, subdomain: str, hostname: str) -> str | None:
        found = [o for (r, ns, _), o in self._objects().items()
                 if r == PODS and ns == namespace and (o.get("spec") or {}).get("hostname") == hostname
                 and o["spec"].get("subdomain") == subdomain]
        if not found:
            return None
        # A live pod wins over one being deleted or finished (a rank 0 that already exited still
        # answers, so a late rank starts and meets whatever a real process would meet there).
        best = max(found, key=lambda o: (not o["metadata"].get("deletionTimestamp"),
                                         (o.get("status") or {}).get("phase") not in ("Succeeded", "Failed"),
                                         o["metadata"].get("creationTimestamp", ""), o["metadata"]["name"]))
        return self.ip(best["metadata"]["uid"])

    def master_port(self, address: str, port: str) -> str:
        if (address, port) not in self._ports:
            taken = set(self._ports.values())
            while True:
                with socket.socket() as probe:
                    probe.bind(("", 0))
                    free = str(probe.getsockname()[1])
                if free not in taken:
                    break
            self._ports[(address, port)] = free
        return self._ports[(address, port)]
