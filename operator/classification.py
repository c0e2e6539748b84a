"""The result of classifying a fault (docs/design.md#fault-classes): what broke, why, from which source, and
how far the evidence goes. Shared by the classifier's modules and the core."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tandem.faults.taxonomy import NODE_CLASSES, SYMPTOM_REASONS, FaultClass, short

Obj = dict[str, Any]
Source = Literal["termination-message", "container-state", "pod-condition", "node", "device-report", "log-tail",
                 "none"]

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
    # For `tandem classify --explain`: what decided and what else was seen (not part of the decision's identity).
    explanation: dict[str, Any] | None = field(default=None, compare=False, repr=False)

    @property
    def symptom(self) -> bool:
        return self.reason in SYMPTOM_REASONS

    @property
    def excludes_node(self) -> bool:
        """Strong enough evidence against the node it was seen on to keep the job's next attempts off it."""
        return self.confident and self.fault_class in NODE_CLASSES and not self.symptom

    def to_json(self, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"class": self.fault_class.value, "reason": self.reason, "message": self.message}
        if explain:
            out["explain"] = {"source": self.source, "confident": self.confident, **(self.explanation or {})}
        return out


def as_dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


__all__ = ["NODE_CLASSES", "SYMPTOM_REASONS", "Classification", "Obj", "Source", "as_dict", "as_list", "short"]
