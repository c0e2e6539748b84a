"""What the API server does to a pod besides validating it (Kubernetes 1.32): the defaults of
k8s.io/kubernetes pkg/apis/core/v1/defaults.go the local cluster relies on, applied on every
write as decoding applies them (so an update that leaves a defaulted field out does not look
like a change of it), and the status a created pod starts with (pkg/registry/core/pod/strategy.go
PrepareForCreate: whatever status the request carried is dropped, the phase is Pending and the
QoS class is computed, pkg/apis/core/helper/qos ComputePodQOS)."""

from __future__ import annotations

from fractions import Fraction
from typing import Any

from tandem.localcluster.quantities import QuantityError, parse_quantity

QOS_RESOURCES = ("cpu", "memory")  # isSupportedQoSComputeResource


def default_spec(pod: dict[str, Any]) -> dict[str, Any]:
    """The pod with its spec's defaults filled in (in place, as the caller's own copy)."""
    spec = pod.setdefault("spec", {})
    if not isinstance(spec, dict):
        return pod
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    for container in spec.get("containers") or []:
        if isinstance(container, dict):
            container.setdefault("terminationMessagePath", "/dev/termination-log")
            container.setdefault("terminationMessagePolicy", "File")
    return pod


def _positive(amounts: dict[str, Any]) -> dict[str, Fraction]:
    found: dict[str, Fraction] = {}
    for name in QOS_RESOURCES:
        try:
            amount = parse_quantity(amounts[name]) if name in amounts else Fraction(0)
        except (QuantityError, TypeError):
            continue  # validation refuses it; the QoS class does not matter then
        if amount > 0:
            found[name] = amount
    return found


def qos_class(pod: dict[str, Any]) -> str:
    """ComputePodQOS over the containers and init containers: BestEffort without any cpu or memory
    request or limit, Guaranteed when every container limits both and requests equal the limits
    (a missing request defaults to its limit), Burstable otherwise."""
    spec = pod.get("spec") or {}
    requests: dict[str, Fraction] = {}
    limits: dict[str, Fraction] = {}
    guaranteed = True
    for container in [*(spec.get("containers") or []), *(spec.get("initContainers") or [])]:
        resources = (container or {}).get("resources") or {}
        container_limits = _positive(resources.get("limits") or {})
        container_requests = _positive({**(resources.get("limits") or {}), **(resources.get("requests") or {})})
        for name, amount in container_requests.items():
            requests[name] = requests.get(name, Fraction(0)) + amount
        for name, amount in container_limits.items():
            limits[name] = limits.get(name, Fraction(0)) + amount
        guaranteed = guaranteed and set(container_limits) == set(QOS_RESOURCES)
    if not requests and not limits:
        return "BestEffort"
    if guaranteed and requests == limits:
        return "Guaranteed"
    return "Burstable"


def created_status(pod: dict[str, Any]) -> dict[str, Any]:
    return {"phase": "Pending", "qosClass": qos_class(pod)}
