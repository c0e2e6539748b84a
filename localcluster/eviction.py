"""The pods' eviction subresource (POST pods/<name>/eviction, a policy/v1 Eviction), as the pod registry's
EvictionREST does it (pkg/registry/core/pod/storage/eviction.go): the pod gets the `DisruptionTarget`
condition (reason `EvictionByEvictionAPI`, PodDisruptionConditions, on by default since 1.26) and is then
deleted with the Eviction's deleteOptions, gracefully, so the kubelet stops it with SIGTERM and what its
process exits with becomes its phase. `kubectl drain` evicts through it.

PodDisruptionBudgets are not served here (policy/v1 has no other resource in the local API), so no budget can
refuse an eviction; a real cluster answers 429 where one would."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any

from tandem.localcluster import errors
from tandem.localcluster.deletion import check_preconditions, delete_options
from tandem.localcluster.scheduler import with_condition  # UpdatePodCondition's rule, as the scheduler writes it
from tandem.localcluster.store import Obj, now_iso

if TYPE_CHECKING:
    from tandem.localcluster.resources import ResourceType
    from tandem.localcluster.store import Store
    from tandem.localcluster.terminating import Deletions

SUBRESOURCE = "eviction"
GROUP_VERSIONS = ("policy/v1", "policy/v1beta1")  # EvictionREST.AcceptsGroupVersion
# The discovery entry kubectl drain looks for (CheckEvictionSupport: name, kind and a group).
DISCOVERY = {"name": f"pods/{SUBRESOURCE}", "singularName": "", "namespaced": True, "group": "policy",
             "version": "v1", "kind": "Eviction", "verbs": ["create"]}
CONDITION = {"type": "DisruptionTarget", "status": "True", "reason": "EvictionByEvictionAPI",
             "message": "Eviction API: evicting"}
SUCCESS = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


def evict(store: Store, deletions: Deletions, pods: ResourceType, namespace: str, name: str, body: Any,
          params: dict[str, str]) -> Obj:
    """Evict one pod; the Status to answer with (201). Refusals raise, naming what is wrong."""
    if not isinstance(body, dict) or body.get("kind") != "Eviction" or body.get("apiVersion") not in GROUP_VERSIONS:
        kind = body.get("kind") if isinstance(body, dict) else type(body).__name__
        raise errors.bad_request(f"not a Eviction object: {kind}")
    if (body.get("metadata") or {}).get("name") != name:
        raise errors.bad_request("name in URL does not match name in Eviction object")
    # The request's dryRun reaches the Eviction's deleteOptions (propagateDryRun).
    options = delete_options(body.get("deleteOptions"), {k: v for k, v in params.items() if k == "dryRun"})
    pod = store.get(pods, namespace, name)
    check_preconditions(pods, pod, options.preconditions)
    if options.dry_run:
        return SUCCESS
    status = with_condition(pod.get("status") or {}, {**CONDITION, "lastProbeTime": None}, now_iso())
    marked = store.update(pods, pod, {**pod, "status": status}, "status")
    if options.preconditions.get("resourceVersion"):  # it was this pod's: our own write moved it on
        options = replace(options, preconditions={**options.preconditions,
                                                  "resourceVersion": marked["metadata"]["resourceVersion"]})
    deletions.delete(pods, marked, options)
    return SUCCESS
