"""What a DELETE checks and decides before anything is removed, as the API server's registries
do: the DeleteOptions preconditions (uid, resourceVersion) and a pod's grace period."""

from __future__ import annotations

from typing import Any

from tandem.localcluster import errors
from tandem.localcluster.resources import ResourceType
from tandem.localcluster.store import Obj


def check_preconditions(rt: ResourceType, current: Obj, preconditions: dict[str, Any]) -> None:
    """DeleteOptions.preconditions, with the texts of the registry that checks them: the namespace
    and CRD registries their own, every other one rest.BeforeDelete's (409 Conflict either way)."""
    meta = current["metadata"]
    checks = (("UID", preconditions.get("uid"), meta["uid"], "deleted and then recreated"),
              ("ResourceVersion", preconditions.get("resourceVersion"), meta["resourceVersion"], "modified"))
    for label, wanted, actual, meaning in checks:
        if wanted is None or wanted == actual:
            continue
        if rt.kind in ("Namespace", "CustomResourceDefinition"):
            why = f"Precondition failed: {label} in precondition: {wanted}, {label} in object meta: {actual}"
            raise errors.conflict(rt.plural, meta["name"], rt.group, why)
        why = (f"the {label} in the precondition ({wanted}) does not match the {label} in record ({actual}). "
               f"The object might have been {meaning}")
        raise errors.conflict(rt.kind, meta["name"], rt.group, why)


def pod_deletion_grace(pod: Obj, requested: Any) -> int:
    """The grace period a pod deletion gets, as the pod registry's CheckGracefulDelete decides: the
    request's `gracePeriodSeconds` (query parameter or DeleteOptions), else the pod's
    terminationGracePeriodSeconds (30); 0 (delete at once) for a pod never scheduled or finished."""
    spec, phase = pod.get("spec") or {}, (pod.get("status") or {}).get("phase")
    if not spec.get("nodeName") or phase in ("Succeeded", "Failed"):
        return 0
    try:
        seconds = int(requested if requested is not None else spec.get("terminationGracePeriodSeconds", 30))
    except (TypeError, ValueError) as exc:
        raise errors.bad_request(f"gracePeriodSeconds must be an integer, not {requested!r}") from exc
    return max(seconds, 0)
