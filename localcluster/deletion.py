"""What a DELETE checks and decides before anything is removed, as the API server's registries
do: the DeleteOptions (propagation policy, dry run, grace period; validated as ValidateDeleteOptions
does), its preconditions (uid, resourceVersion), the namespaces that may never be deleted, and a
pod's grace period."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tandem.localcluster import errors
from tandem.localcluster.garbage import BACKGROUND, ORPHAN, POLICIES
from tandem.localcluster.resources import ResourceType
from tandem.localcluster.store import Obj

# The NamespaceLifecycle admission plugin's immortal namespaces (kube-node-lease is not one).
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


@dataclass(frozen=True)
class DeleteOptions:
    policy: str = BACKGROUND
    grace: Any = None
    dry_run: bool = False
    preconditions: dict[str, Any] = field(default_factory=dict)
    # Legacy orphanDependents=false: the one case the handler answers 202 Accepted to a deletion
    # that is not finished (handlers/delete.go).
    accepted: bool = False


def _as_bool(value: Any) -> bool | None:
    return value if value is None or isinstance(value, bool) else str(value).lower() == "true"


def delete_options(body: Any, params: dict[str, str]) -> DeleteOptions:
    """DeleteOptions from the query, then the body (the handler decodes both, the body last)."""
    sent: dict[str, Any] = {k: params[k] for k in ("propagationPolicy", "gracePeriodSeconds", "orphanDependents",
                                                    "dryRun") if k in params}
    if "dryRun" in sent:
        sent["dryRun"] = [sent["dryRun"]]
    sent.update({k: v for k, v in (body if isinstance(body, dict) else {}).items() if v is not None})
    policy, orphan, dry_run = sent.get("propagationPolicy"), _as_bool(sent.get("orphanDependents")), \
        list(sent.get("dryRun") or [])
    causes = []
    if orphan is not None and policy is not None:
        causes.append({"field": "propagationPolicy", "reason": "FieldValueInvalid",
                       "message": f'Invalid value: "{policy}": orphanDependents and deletionPropagation cannot be '
                                  "both set"})
    if policy is not None and policy not in POLICIES:
        causes.append({"field": "propagationPolicy", "reason": "FieldValueNotSupported",
                       "message": f'Unsupported value: "{policy}": supported values: "Foreground", "Background", '
                                  '"Orphan", "nil"'})
    if any(value != "All" for value in dry_run):
        listed = ", ".join(f'"{value}"' for value in dry_run)
        causes.append({"field": "dryRun", "reason": "FieldValueNotSupported",
                       "message": f'Unsupported value: []string{{{listed}}}: supported values: "All"'})
    if causes:
        raise errors.invalid("DeleteOptions", "", causes, "meta.k8s.io")
    return DeleteOptions(policy=policy or (ORPHAN if orphan else BACKGROUND), grace=sent.get("gracePeriodSeconds"),
                         dry_run=bool(dry_run), preconditions=dict(sent.get("preconditions") or {}),
                         accepted=orphan is False)


def refuse_immortal(rt: ResourceType, name: str) -> None:
    """NamespaceLifecycle refuses to delete default, kube-system and kube-public (dry runs too)."""
    if rt.kind == "Namespace" and not rt.group and name in IMMORTAL_NAMESPACES:
        raise errors.forbidden(rt.plural, name, "this namespace may not be deleted")


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
