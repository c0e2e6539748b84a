"""Nodes and the device plugins' fault reports, as every reconcile of a moment sees them."""

from __future__ import annotations

import threading
import time

from tandem.operator.device_reports import DeviceFault, faults_by_node, is_device_plugin_report
from tandem.operator.kube import Kube, Obj
from tandem.operator.watched import Watched


class ClusterView:
    """Nodes and the device plugins' fault reports, shared by every reconcile: listing them per pod event would
    cost O(nodes) API work each time. Once the node watch feeds the view (`observe_node`), one full list has seeded
    it and the device-report poll has run (`observe_reports`), a reconcile reads neither; before that (and in tests
    without a watch) they are listed at most every `ttl` seconds. `invalidate` makes the next refresh list both from
    the API (a resync, or a new fault that must not rest on a view a node event is about to correct)."""

    def __init__(self, kube: Kube, device_info_namespace: str, ttl: float = 1.0) -> None:
        self.kube, self.namespace, self.ttl = kube, device_info_namespace, ttl
        self._lock = threading.Lock()
        self._read_at = -1e9
        self._watched: Watched | None = None  # the node watch's nodes, once it feeds the view
        self._reports: list[Obj] | None = None  # the poll's last list
        self._changed = True  # nodes or reports changed since device_faults was derived
        self._invalid = False
        self.nodes: list[Obj] = []
        self.device_faults: dict[str, list[DeviceFault]] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._read_at, self._invalid = -1e9, True

    def fresh(self) -> bool:
        """Read from the API within this very reconcile (well under the TTL)."""
        return time.monotonic() - self._read_at < 0.05

    def observe_node(self, event: str | None, node: Obj) -> None:
        with self._lock:
            if self._watched is None:
                self._watched = Watched()
            self._watched.observe(event, node)
            self._changed = True

    def observe_reports(self, reports: list[Obj]) -> None:
        with self._lock:
            self._reports, self._changed = reports, True

    def device_reports(self) -> list[Obj]:
        return [cm for cm in self.kube.list_device_reports(self.namespace) if is_device_plugin_report(cm)]

    def refresh(self) -> ClusterView:
        with self._lock:
            # The watch alone keeps the view only once a full list seeded it: kopf delivers its initial listing one
            # node at a time, and a view built from the first few would show a pool short of nodes.
            watched = self._watched
            if watched is not None and watched.seeded and self._reports is not None and not self._invalid:
                if self._changed:  # derived once per change, not per reconcile
                    self.nodes = watched.values()
                    self.device_faults = faults_by_node(self.nodes, self._reports)
                    self._changed = False
            elif time.monotonic() - self._read_at > self.ttl:
                if self._watched is not None:
                    self._watched.listing()
                self.nodes = self.kube.list_nodes()
                reports = self.device_reports()
                self.device_faults = faults_by_node(self.nodes, reports)
                self._read_at, self._invalid = time.monotonic(), False
                if self._watched is not None:  # the list corrects what a missed watch event left
                    self._watched.seed(self.nodes)
                    self._reports = reports
        return self
