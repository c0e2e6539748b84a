"""kube-scheduler's InterPodAffinity filter, for the one case Tandem relies on: a required pod anti-affinity
on `kubernetes.io/hostname` (one pod of an attempt per node). A node is rejected when a pod already on it, in
the incoming pod's namespace, matches one of the incoming pod's required anti-affinity terms.

Not emulated (kube-scheduler does all of these): pod affinity (attraction), topology keys other than the
hostname, `namespaces`/`namespaceSelector` in a term, `matchLabelKeys`, and the symmetric check of the
existing pods' own anti-affinity against the incoming pod."""

from __future__ import annotations

from collections.abc import Sequence

from tandem.localcluster.store import Obj

REASON_ANTI_AFFINITY = "node(s) didn't match pod anti-affinity rules"
HOSTNAME = "kubernetes.io/hostname"
FINISHED = ("Succeeded", "Failed")


def _requirement_holds(requirement: Obj, labels: dict[str, str]) -> bool:
    key, operator, values = requirement.get("key", ""), requirement.get("operator"), requirement.get("values") or []
    if operator == "In":
        return labels.get(key) in values
    if operator == "NotIn":
        return labels.get(key) not in values
    if operator == "Exists":
        return key in labels
    if operator == "DoesNotExist":
        return key not in labels
    return False


def selects(selector: Obj | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector: an absent selector selects nothing, an empty one everything."""
    if selector is None:
        return False
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items()) and all(
        _requirement_holds(r, labels) for r in selector.get("matchExpressions") or [])


def _terms(pod: Obj) -> list[Obj]:
    anti = (((pod.get("spec") or {}).get("affinity") or {}).get("podAntiAffinity") or {})
    return [t for t in anti.get("requiredDuringSchedulingIgnoredDuringExecution") or []
            if t.get("topologyKey") == HOSTNAME]


def has_anti_affinity(pod: Obj) -> bool:
    """Whether `check_pod_anti_affinity` can refuse any node for this pod."""
    return bool(_terms(pod))


def check_pod_anti_affinity(pod: Obj, pods_on_node: Sequence[Obj]) -> list[str]:
    terms = _terms(pod)
    if not terms:
        return []
    namespace = (pod.get("metadata") or {}).get("namespace")
    for other in pods_on_node:
        meta = other.get("metadata") or {}
        if meta.get("namespace") != namespace or (other.get("status") or {}).get("phase") in FINISHED:
            continue
        if any(selects(term.get("labelSelector"), meta.get("labels") or {}) for term in terms):
            return [REASON_ANTI_AFFINITY]
    return []
