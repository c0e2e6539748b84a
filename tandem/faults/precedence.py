"""Which evidence decides why a pod failed (docs/design.md#fault-classes), in one table: the sources in the order
the operator reads them (the first that decides wins; a weak result stands only when no later source decides),
and how much each proves when the ranks of an attempt disagree (a lower weight is stronger evidence)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class EvidenceSource:
    name: str
    weight: int  # across ranks: the runtime's own report beats what Kubernetes saw, which beats a log
    decides: str  # what it decides on its own (and what it only suggests)


SOURCES: tuple[EvidenceSource, ...] = (
    EvidenceSource("termination-message", 0,
                   "the runtime's JSON report (tandem-train, tandem-run): any class it names but unknown"),
    EvidenceSource("container-state", 1,
                   "OOMKilled, ContainerStatusUnknown, the runtime's exit codes 3-7 only when Tandem's launcher set "
                   "them, a container that cannot start for the user's reason; a signal or exit code 1 only suggests"),
    EvidenceSource("pod-condition", 1, "Evicted, NodeLost, node shutdown, a DisruptionTarget condition"),
    EvidenceSource("node", 1, "the pod's node NotReady or unreachable, tainted out-of-service, network down, deleted"),
    EvidenceSource("device-report", 1,
                   "accelerator fault reports for the node: Ascend device plugin / NodeD ConfigMaps, NVIDIA Xid "
                   "node conditions"),
    EvidenceSource("log-tail", 2,
                   "the container's log (the tail FallbackToLogsOnError keeps, or the whole log) read with the "
                   "signature table: tandem.faults.reading"),
)
ORDER: tuple[str, ...] = tuple(source.name for source in SOURCES)
WEIGHT: dict[str, int] = {source.name: source.weight for source in SOURCES}
