"""Every pool pod the operator serves, kept from its pod watch: what a new attempt's admission counts as the room
other jobs hold, without listing every pod of the cluster each time (O(pods) per admission at a thousand nodes).

Fed by the kopf pod handler (every event of a pod with the job label), seeded by one list at start-up, and told of
the pods the operator has just created before the watch brings them back (the "expectations" of Kubernetes'
controllers): an admission never counts fewer pods than exist, so two jobs never both take the same free nodes. A
pod deleted while its DELETED event is on the way still counts for that moment: an admission may wait, never
over-commit. The list is read again at most every RESEED_SECONDS (by the next admission after that): it drops
what a missed event (a pod deleted before the watch started) would otherwise keep for ever."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

Obj = dict[str, Any]
RESEED_SECONDS = 60.0


def _key(pod: Obj) -> tuple[str, str]:
    meta = pod.get("metadata") or {}
    return str(meta.get("namespace") or "default"), str(meta.get("name") or "")


def _version(pod: Obj) -> int:
    value = str((pod.get("metadata") or {}).get("resourceVersion") or "")
    return int(value) if value.isdigit() else -1


class PodIndex:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pods: dict[tuple[str, str], Obj] = {}  # by (namespace, name): the newest version seen
        self._seeded_at: float | None = None

    def due(self) -> bool:
        """Never listed, or listed more than RESEED_SECONDS ago."""
        return self._seeded_at is None or time.monotonic() - self._seeded_at > RESEED_SECONDS

    def seed(self, pods: Iterable[Obj]) -> None:
        """A full list: it replaces what the index holds, except the pods just created that it may not show yet."""
        listed: dict[tuple[str, str], Obj] = {}
        for pod in pods:
            listed[_key(pod)] = pod
        with self._lock:
            expected = {k: p for k, p in self._pods.items() if not (p.get("metadata") or {}).get("uid")}
            self._pods = {**expected, **listed}
            self._seeded_at = time.monotonic()

    def observe(self, event: str | None, pod: Obj) -> None:
        """A watch event of a pool pod (kopf's: None for the initial listing)."""
        with self._lock:
            if event == "DELETED":
                known = self._pods.get(_key(pod))
                if known is None or (known.get("metadata") or {}).get("uid") in (None, pod["metadata"].get("uid")):
                    self._pods.pop(_key(pod), None)
            else:
                self._keep(pod)

    def expect(self, manifest: Obj) -> None:
        """A pod the operator has just created: counted until the watch brings the API's version of it."""
        with self._lock:
            self._pods.setdefault(_key(manifest), manifest)

    def pods(self, namespaces: Sequence[str]) -> list[Obj]:
        """The pods of `namespaces` (every namespace when empty)."""
        with self._lock:
            return [p for (ns, _), p in self._pods.items() if not namespaces or ns in namespaces]

    def _keep(self, pod: Obj) -> None:
        key = _key(pod)
        known = self._pods.get(key)
        same = known is not None and (known.get("metadata") or {}).get("uid") == pod["metadata"].get("uid")
        if known is None or not same or _version(pod) >= _version(known):
            self._pods[key] = pod
