"""Nodes and the device plugins' fault reports, read once and shared by the reconciles of a moment."""

from __future__ import annotations

import threading
import time

from tandem.operator.device_reports import DeviceFault, faults_by_node, is_device_plugin_report
from tandem.operator.kube import Kube, Obj


class ClusterView:
    """Nodes and the device plugins' fault reports, shared by every reconcile for a moment: listing
    them per pod event would cost O(nodes) each time. A resync, or a new fault to confirm, reads again."""

    def __init__(self, kube: Kube, device_info_namespace: str, ttl: float = 1.0) -> None:
        self.kube, self.namespace, self.ttl = kube, device_info_namespace, ttl
        self._lock = threading.Lock()
        self._read_at = -1e9
        self.nodes: list[Obj] = []
        self.device_faults: dict[str, list[DeviceFault]] = {}

    def invalidate(self) -> None:
        with self._lock:
            self._read_at = -1e9

    def fresh(self) -> bool:
        """Read within this very reconcile (well under the TTL)."""
        return time.monotonic() - self._read_at < 0.05

    def device_reports(self) -> list[Obj]:
        return [cm for cm in self.kube.list_device_reports(self.namespace) if is_device_plugin_report(cm)]

    def refresh(self) -> ClusterView:
        with self._lock:
            if time.monotonic() - self._read_at > self.ttl:
                self.nodes = self.kube.list_nodes()
                self.device_faults = faults_by_node(self.nodes, self.device_reports())
                self._read_at = time.monotonic()
        return self
