"""Which replica works when several run (the chart's replicaCount >= 2, kopf peering).

kopf pauses its own watch streams on a replica that a live peer outranks, but the operator also acts from
threads of its own (requeue timers for backoffs and pending timeouts, the debounced resync after node or
device-report changes). Those must stand by with kopf, so they read the same peering object and apply
kopf's rule to it: a replica works only while no other live peer has a priority as high as its own
(kopf pauses every replica that sees a peer of equal priority).

The object's status is kopf's protocol: `{identity: {priority, lifetime, lastseen}}`, one entry per
replica, refreshed by each replica's keep-alive and dropped when it exits."""

from __future__ import annotations

import getpass
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import structlog

log = structlog.get_logger("tandem.operator")


@dataclass(frozen=True)
class Peering:
    """This replica's place in a kopf peering: the object's name, where it lives (the watched namespaces
    for a namespaced operator, each with its own KopfPeering; none for the ClusterKopfPeering)."""

    name: str
    identity: str
    priority: int
    namespaces: tuple[str, ...] = ()


def own_identity() -> str:
    """kopf's identity convention: the pod's name when POD_ID says it, else user@host/started/random."""
    if pod := os.environ.get("POD_ID"):
        return pod
    started = datetime.now(UTC).strftime("%Y%m%d%H%M%S")
    suffix = "".join(random.choices("abcdefhijklmnopqrstuvwxyz0123456789", k=3))
    return f"{getpass.getuser()}@{socket.gethostname()}/{started}/{suffix}"


def random_priority() -> int:
    return random.SystemRandom().randint(1, 2**31 - 1)


def outranking_peers(status: dict[str, Any], identity: str, priority: int, now: datetime) -> list[str]:
    """The live peers (lastseen + lifetime still ahead) other than us whose priority is not below ours."""
    outranking = []
    for peer, info in status.items():
        if peer == identity or not isinstance(info, dict):
            continue
        try:
            lastseen = datetime.fromisoformat(str(info["lastseen"]))
            lifetime = timedelta(seconds=int(info.get("lifetime", 60)))
            peer_priority = int(info.get("priority", 0))
        except (KeyError, TypeError, ValueError):
            continue  # not a record kopf would act on either
        if lastseen.tzinfo is None:
            lastseen = lastseen.replace(tzinfo=UTC)
        if lastseen + lifetime > now and peer_priority >= priority:
            outranking.append(peer)
    return sorted(outranking)


class PeeringReader(Protocol):
    def get_peering(self, name: str, namespace: str | None) -> dict[str, Any] | None: ...


class PeeringGate:
    """Answers "may this replica act now?" for the operator's own threads, from a verdict at most
    `ttl` seconds old. Standalone (no peering): always."""

    def __init__(self, kube: PeeringReader, peering: Peering | None, ttl: float = 2.0,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], datetime] = lambda: datetime.now(UTC)
                 ) -> None:
        self.kube, self.peering, self.ttl, self.clock, self.now = kube, peering, ttl, clock, now
        self._lock = threading.Lock()
        self._verdict: tuple[float, bool] | None = None

    def active(self) -> bool:
        if self.peering is None:
            return True
        with self._lock:
            if self._verdict is not None and self.clock() - self._verdict[0] < self.ttl:
                return self._verdict[1]
            previous = self._verdict[1] if self._verdict else None
            try:
                verdict = self._decide(self.peering)
            except Exception as exc:  # the API away: keep the last verdict (stand by if there is none)
                log.warning("peering_unreadable", peering=self.peering.name, error=str(exc)[:300])
                verdict = bool(previous)
            self._verdict = (self.clock(), verdict)
        if verdict != previous:
            log.info("peering_verdict", peering=self.peering.name, identity=self.peering.identity,
                     priority=self.peering.priority, active=verdict)
        return verdict

    def _decide(self, peering: Peering) -> bool:
        for namespace in peering.namespaces or (None,):
            status = self.kube.get_peering(peering.name, namespace)
            if status is None:
                return False  # kopf, told to peer, stays paused while its peering object is missing
            if outranking_peers(status, peering.identity, peering.priority, self.now()):
                return False
        return True
