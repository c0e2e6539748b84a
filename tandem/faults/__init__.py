"""One fault taxonomy for the operator and the runtime (docs/design.md#fault-classes): the classes and their
rules (taxonomy), the signature table (signatures.yaml, read by signatures), the Ascend error-code table
(codes.yaml, read by codes), the line model of a log (logtext),
the reading of a log (reading), the Xid numbers (xid) and the precedence of evidence sources (precedence).
Torch-free and Kubernetes-client-free: both images import it."""

from tandem.faults.reading import Match, Reading, read_log
from tandem.faults.taxonomy import (
    EXIT_CODES,
    MESSAGE_LIMIT,
    NODE_CLASSES,
    SYMPTOM_REASONS,
    FaultClass,
    short,
    symptom_tier,
)

__all__ = ["EXIT_CODES", "MESSAGE_LIMIT", "NODE_CLASSES", "SYMPTOM_REASONS", "FaultClass", "Match", "Reading",
           "read_log", "short", "symptom_tier"]
