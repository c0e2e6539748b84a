"""A trivial kopf operator for the smoke test: it marks every new TrainingJob as Starting."""

from typing import Any

import kopf


@kopf.on.create("tandem.dev", "v1alpha1", "trainingjobs")
def mark_starting(spec: dict[str, Any], patch: kopf.Patch, **_: Any) -> None:
    patch.status["phase"] = "Starting"
    patch.status["pool"] = spec["pools"][0]
