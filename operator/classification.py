"""The result of classifying a fault (docs/design.md#fault-classes): what broke, why, from which source, and
how far the evidence goes. Shared by the classifier's modules and the core."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from tandem.operator.api_types import FaultClass
from tandem.operator.logtail import short

Obj = dict[str, Any]
Source = Literal["termination-message", "container-state", "pod-condition", "node", "device-report", "log-tail",
                 "none"]

# What a rank says *because* another rank failed first (its peer vanished, a collective waited for a rank that
# never came, its launcher stopped it): never the root cause when another rank shows one, and no evidence
# against the rank's own node.
SYMPTOM_REASONS = frozenset({
    "PeerConnectionLost", "CollectiveHang", "CollectiveTimeout", "HcclSocketTimeout", "HcclExecTimeout",
    "NcclRemoteError", "WorkerStopped",
})  # fmt: skip
# The classes that blame the node the fault was seen on.
NODE_CLASSES = frozenset({FaultClass.INTERCONNECT, FaultClass.DEVICE, FaultClass.NODE})


@dataclass(frozen=True)
class Classification:
    fault_class: FaultClass
    reason: str
    message: str
    source: Source
    step: int | None = None
    checkpoint_step: int | None = None
    resumed_from: int | None = None
    node: str | None = None
    # False when only a log tail names the hardware and no line of it was printed by the collective library,
    # the runtime or the driver (a user's own print can say "CUDA error" too): the class stands, the node is
    # not blamed.
    confident: bool = True

    @property
    def symptom(self) -> bool:
        return self.reason in SYMPTOM_REASONS

    @property
    def excludes_node(self) -> bool:
        """Strong enough evidence against the node it was seen on to keep the job's next attempts off it."""
        return self.confident and self.fault_class in NODE_CLASSES and not self.symptom

    def to_json(self) -> dict[str, str]:
        return {"class": self.fault_class.value, "reason": self.reason, "message": self.message}


def as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


__all__ = ["NODE_CLASSES", "SYMPTOM_REASONS", "Classification", "Obj", "Source", "as_dict", "as_list", "short"]
