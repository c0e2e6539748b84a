"""ResourceQuota for the pod count, as the API server's ResourceQuota admission plugin and the
quota controller enforce and report it.

A pod create in a namespace whose quota sets `spec.hard.pods` or `spec.hard["count/pods"]` is
refused with 403 Forbidden and the plugin's message when one more pod would exceed it:
`pods "x" is forbidden: exceeded quota: q, requested: pods=1, used: pods=2, limited: pods=2`.
Pods that have finished (Succeeded, Failed) do not count, as the pod evaluator's `QuotaV1Pod`.
The controller's half writes `status.hard` and `status.used` (for the counts emulated here), so
`kubectl describe quota` shows them.

Not emulated: every other resource (cpu, memory, storage, extended resources, object counts other
than pods) is stored in the quota and ignored; scopes and scope selectors; the "status unknown"
refusal before the controller has caught up (the count is taken live from the store)."""

from __future__ import annotations

from fractions import Fraction
from typing import TYPE_CHECKING

from tandem.localcluster import errors
from tandem.localcluster.quantities import QuantityError, parse_quantity
from tandem.localcluster.resources import GroupResource
from tandem.localcluster.store import Obj, Store

if TYPE_CHECKING:
    from tandem.localcluster.api import LocalAPI

PODS, QUOTAS = GroupResource("", "pods"), GroupResource("", "resourcequotas")
POD_COUNTS = ("count/pods", "pods")  # the two names a quota may give the pod count
FINISHED = ("Succeeded", "Failed")


def counts(pod: Obj) -> bool:
    return (pod.get("status") or {}).get("phase") not in FINISHED


def pods_in_use(store: Store, namespace: str) -> int:
    return sum(1 for (resource, ns, _), pod in store.objects.items()
               if resource == PODS and ns == namespace and counts(pod))


def quotas(store: Store, namespace: str) -> list[Obj]:
    found = [q for q in store.of_resource(QUOTAS) if q["metadata"].get("namespace") == namespace]
    return sorted(found, key=lambda q: q["metadata"]["name"])


def _limits(quota: Obj) -> dict[str, Fraction]:
    hard = (quota.get("spec") or {}).get("hard") or {}
    limits = {}
    for name in POD_COUNTS:
        if name in hard:
            try:
                limits[name] = parse_quantity(hard[name])
            except QuantityError:
                continue  # validation is kubernetes-validate's; an unparsable limit limits nothing here
    return limits


def _shown(amount: Fraction | int) -> str:
    return str(int(amount)) if Fraction(amount).denominator == 1 else str(float(amount))


def _listed(values: dict[str, Fraction | int]) -> str:
    """prettyPrint: `name=value` pairs sorted by name, joined by commas."""
    return ",".join(f"{name}={_shown(values[name])}" for name in sorted(values))


def admit_pod(store: Store, namespace: str, pod: Obj) -> None:
    """Refuse a pod create that one of the namespace's quotas does not leave room for."""
    limited = quotas(store, namespace)
    if not limited or not counts(pod):
        return
    used = pods_in_use(store, namespace)
    for quota in limited:
        exceeded = {name: limit for name, limit in _limits(quota).items() if used + 1 > limit}
        if exceeded:
            why = (f"exceeded quota: {quota['metadata']['name']}, requested: {_listed(dict.fromkeys(exceeded, 1))}, "
                   f"used: {_listed(dict.fromkeys(exceeded, used))}, limited: {_listed(exceeded)}")
            raise errors.forbidden("pods", pod["metadata"]["name"], why)


def quota_status(quota: Obj, used: int) -> Obj:
    """What the quota controller reports: every hard limit, and the usage of the counts emulated."""
    hard = dict((quota.get("spec") or {}).get("hard") or {})
    return {**(quota.get("status") or {}), "hard": hard,
            "used": {name: str(used) for name in POD_COUNTS if name in hard}}


def sync_namespace(api: LocalAPI, namespace: str) -> None:
    used = pods_in_use(api.store, namespace)
    quota_type = api.types[("", "v1", "resourcequotas")]
    for quota in quotas(api.store, namespace):
        status = quota_status(quota, used)
        if status != quota.get("status"):
            api.store.update(quota_type, quota, {**quota, "status": status}, "status")


async def run_quota_controller(api: LocalAPI) -> None:
    queue = api.store.subscribe()
    # Namespaces that have a quota: only their pod changes are worth a recount.
    watched = {ns for (resource, ns, _) in api.store.objects if resource == QUOTAS and ns}
    try:
        for namespace in watched:
            sync_namespace(api, namespace)
        while True:
            change = await queue.get()
            namespace = str(change.obj["metadata"].get("namespace") or "")
            if change.resource == QUOTAS:
                watched = (watched | {namespace}) if quotas(api.store, namespace) else (watched - {namespace})
            if change.resource in (PODS, QUOTAS) and namespace in watched:
                sync_namespace(api, namespace)
    finally:
        api.store.unsubscribe(queue)
