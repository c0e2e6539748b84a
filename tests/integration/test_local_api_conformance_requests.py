"""Request semantics the local API shares with kube-apiserver 1.32, as a table: one row per rule, each a request
sent with the `kubernetes` client, the status code, Status reason and cause field a real server answers, and the
state it leaves (the object kept, gone, or its ownerReferences removed); then the rules kubectl shows, run through
the real kubectl. The rules: dry-run deletions, the patch types of custom resources, PUT without resourceVersion,
finalizers (no new one during a deletion; strategic merge of metadata.finalizers), propagation policies,
namespace and CRD termination, immortal namespaces, DeleteOptions validation and the media types of bodies."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import kubernetes
import pytest
import yaml
from kubernetes.client.exceptions import ApiException

GROUP, VERSION, PLURAL, KIND = "conformance.example.com", "v1", "things", "Thing"
NS = "conformance"
HOLD = "example.com/hold"


@dataclass
class Ctx:
    core: Any
    custom: Any
    crds: Any
    url: str


@dataclass(frozen=True)
class Row:
    id: str
    setup: Callable[[Ctx], Any]
    request: Callable[[Ctx], Any]  # returns the urllib3 response (the calls pass _preload_content=False)
    status: int
    reason: str | None = None  # the Status reason of a refusal
    field: str | None = None  # the one cause field a refusal names
    after: Callable[[Ctx], None] = lambda ctx: None  # asserts the state the request left
    message: str | None = None  # the refusal's message, where the row pins it


@dataclass(frozen=True)
class Raw:
    status: int
    data: bytes


def _crd(name: str, plural: str, kind: str) -> dict[str, Any]:
    return {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
            "metadata": {"name": f"{plural}.{GROUP}"},
            "spec": {"group": GROUP, "scope": "Namespaced",
                     "names": {"plural": plural, "singular": name, "kind": kind, "listKind": f"{kind}List"},
                     "versions": [{"name": VERSION, "served": True, "storage": True, "subresources": {"status": {}},
                                   "schema": {"openAPIV3Schema": {"type": "object",
                                                                  "x-kubernetes-preserve-unknown-fields": True}}}]}}


@pytest.fixture(scope="module")
def ctx(api_client: Any, cluster: Any) -> Ctx:
    core = kubernetes.client.CoreV1Api(api_client)
    crds = kubernetes.client.ApiextensionsV1Api(api_client)
    crds.create_custom_resource_definition(_crd("thing", PLURAL, KIND))
    core.create_namespace({"metadata": {"name": NS}})
    return Ctx(core=core, custom=kubernetes.client.CustomObjectsApi(api_client), crds=crds, url=cluster.url)


# --- helpers the rows are written with --------------------------------------------------------------------------
RAW = {"_preload_content": False}


def _cm(ctx: Ctx, name: str, namespace: str = NS, finalizers: tuple[str, ...] = (),
        owners: tuple[Any, ...] = (), labels: dict[str, str] | None = None) -> Any:
    meta: dict[str, Any] = {"name": name, "finalizers": list(finalizers), "labels": labels or {}}
    if owners:
        meta["ownerReferences"] = [{"apiVersion": "v1", "kind": "ConfigMap", "name": o.metadata.name,
                                    "uid": o.metadata.uid, "blockOwnerDeletion": block} for o, block in owners]
    return ctx.core.create_namespaced_config_map(namespace, {"metadata": meta})


def _read_cm(ctx: Ctx, name: str, namespace: str = NS) -> Any:
    try:
        return ctx.core.read_namespaced_config_map(name, namespace)
    except ApiException as exc:
        assert exc.status == 404, exc.body
        return None


def _release(ctx: Ctx, name: str, namespace: str = NS) -> None:
    """Remove every finalizer of a ConfigMap (a JSON merge patch: null clears the list)."""
    ctx.core.patch_namespaced_config_map(name, namespace, {"metadata": {"finalizers": None}},
                                         _content_type="application/merge-patch+json")


def _thing(ctx: Ctx, name: str, finalizers: tuple[str, ...] = (), plural: str = PLURAL, kind: str = KIND) -> Any:
    return ctx.custom.create_namespaced_custom_object(GROUP, VERSION, NS, plural, {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": kind,
        "metadata": {"name": name, "finalizers": list(finalizers)}, "spec": {"size": 1}})


def _read_thing(ctx: Ctx, name: str, plural: str = PLURAL) -> Any:
    try:
        return ctx.custom.get_namespaced_custom_object(GROUP, VERSION, NS, plural, name)
    except ApiException as exc:
        assert exc.status == 404, exc.body
        return None


def _ns(ctx: Ctx, name: str) -> Any:
    try:
        return ctx.core.read_namespace(name)
    except ApiException as exc:
        assert exc.status == 404, exc.body
        return None


def _raw(ctx: Ctx, path: str, body: bytes | None, content_type: str, method: str = "POST") -> Raw:
    """A request the typed client cannot send (another encoding, a verb it lacks)."""
    request = urllib.request.Request(f"{ctx.url}{path}", data=body, method=method,
                                     headers={"Content-Type": content_type})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return Raw(response.status, response.read())
    except urllib.error.HTTPError as exc:
        return Raw(exc.code, exc.read())


def _all(*checks: Callable[[Ctx], Any]) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        for each in checks:
            each(ctx)
    return check


def _holds(predicate: Callable[[Ctx], bool]) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        assert predicate(ctx)
    return check


def _options(**kwargs: Any) -> kubernetes.client.V1DeleteOptions:
    return kubernetes.client.V1DeleteOptions(**kwargs)


# --- the checks of the state a request left ---------------------------------------------------------------------
def _still_there(name: str) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        found = _read_cm(ctx, name)
        assert found is not None and found.metadata.deletion_timestamp is None
    return check


def _thing_unchanged(name: str) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        assert _read_thing(ctx, name)["spec"] == {"size": 1}
    return check


def _dry_collection_kept(ctx: Ctx) -> None:
    items = ctx.core.list_namespaced_config_map(NS, label_selector="row=dry-collection").items
    assert sorted(i.metadata.name for i in items) == ["dry-c1", "dry-c2"]
    assert all(i.metadata.deletion_timestamp is None for i in items)


def _smp_merged(ctx: Ctx) -> None:
    assert _read_cm(ctx, "smp-fin").metadata.finalizers == ["example.com/a", "example.com/b"]
    _release(ctx, "smp-fin")


def _smp_deleted_one(ctx: Ctx) -> None:
    assert _read_cm(ctx, "smp-del").metadata.finalizers == ["example.com/b"]
    _release(ctx, "smp-del")


def _no_new_finalizer(ctx: Ctx) -> None:
    held = _read_cm(ctx, "fin-deleting")
    assert held.metadata.deletion_timestamp is not None and held.metadata.finalizers == [HOLD]
    _release(ctx, "fin-deleting")
    assert _read_cm(ctx, "fin-deleting") is None


def _foreground_waits(ctx: Ctx) -> None:
    owner = _read_cm(ctx, "fg-owner")
    assert owner.metadata.deletion_timestamp is not None and "foregroundDeletion" in owner.metadata.finalizers
    assert _read_cm(ctx, "fg-plain") is None  # deleted meanwhile, and blocked nothing
    assert _read_cm(ctx, "fg-blocker").metadata.deletion_timestamp is not None
    _release(ctx, "fg-blocker")  # the blocking dependent goes: the owner goes with it, in the same request
    assert _read_cm(ctx, "fg-blocker") is None and _read_cm(ctx, "fg-owner") is None


def _foreground_unblocked(ctx: Ctx) -> None:
    assert _read_cm(ctx, "fg3-owner").metadata.deletion_timestamp is not None
    blocker = _read_cm(ctx, "fg3-blocker")
    refs = [{**ref.to_dict(), "block_owner_deletion": False} for ref in blocker.metadata.owner_references]
    ctx.core.patch_namespaced_config_map("fg3-blocker", NS, {"metadata": {"ownerReferences": [
        kubernetes.client.V1OwnerReference(**ref) for ref in refs]}})  # a dependent that stops blocking
    assert _read_cm(ctx, "fg3-owner") is None and _read_cm(ctx, "fg3-blocker") is not None
    _release(ctx, "fg3-blocker")


def _foreground_done(ctx: Ctx) -> None:
    assert [_read_cm(ctx, n) for n in ("fg2-owner", "fg2-dep")] == [None, None]


def _orphaned(ctx: Ctx) -> None:
    assert _read_cm(ctx, "orphan-owner") is None
    dependent = _read_cm(ctx, "orphan-dep")
    assert dependent is not None and dependent.metadata.owner_references is None


def _background_collected(ctx: Ctx) -> None:
    assert _read_cm(ctx, "bg-owner") is None and _read_cm(ctx, "bg-dep") is None
    shared = _read_cm(ctx, "bg-shared")  # another owner is alive: it only loses the reference to the gone one
    assert [ref.name for ref in shared.metadata.owner_references] == ["bg-other"]


def _namespace_terminating(ctx: Ctx) -> None:
    namespace = _ns(ctx, "doomed-ns")
    assert namespace.status.phase == "Terminating" and namespace.metadata.deletion_timestamp is not None
    assert _read_cm(ctx, "plain", "doomed-ns") is None
    assert _read_cm(ctx, "held", "doomed-ns").metadata.deletion_timestamp is not None
    _release(ctx, "held", "doomed-ns")
    assert _ns(ctx, "doomed-ns") is None


def _namespace_still_terminating(ctx: Ctx) -> None:
    assert _ns(ctx, "closing-ns").status.phase == "Terminating"
    assert _read_cm(ctx, "late", "closing-ns") is None
    _release(ctx, "held", "closing-ns")
    assert _ns(ctx, "closing-ns") is None


def _immortal(name: str) -> Callable[[Ctx], None]:
    def check(ctx: Ctx) -> None:
        namespace = _ns(ctx, name)
        assert namespace.status.phase == "Active" and namespace.metadata.deletion_timestamp is None
    return check


def _crd_terminating(ctx: Ctx) -> None:
    crd = ctx.crds.read_custom_resource_definition(f"doomeds.{GROUP}")
    assert "customresourcecleanup.apiextensions.k8s.io" in crd.metadata.finalizers
    assert any(c.type == "Terminating" and c.status == "True" for c in crd.status.conditions)
    assert _read_thing(ctx, "plain-doomed", "doomeds") is None
    assert _read_thing(ctx, "held-doomed", "doomeds")["metadata"]["deletionTimestamp"]
    with pytest.raises(ApiException) as refused:  # no new object of a terminating CRD
        _thing(ctx, "late-doomed", plural="doomeds", kind="Doomed")
    assert refused.value.status == 405
    ctx.custom.patch_namespaced_custom_object(GROUP, VERSION, NS, "doomeds", "held-doomed",
                                              {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as gone:
        ctx.crds.read_custom_resource_definition(f"doomeds.{GROUP}")
    assert gone.value.status == 404
    with pytest.raises(ApiException) as unserved:
        ctx.custom.list_namespaced_custom_object(GROUP, VERSION, NS, "doomeds")
    assert unserved.value.status == 404


def _namespace_finalizer_set(ctx: Ctx) -> None:
    assert _ns(ctx, "fresh-ns").spec.finalizers == ["kubernetes"]


def _pb(number: int, value: bytes | str | int) -> bytes:
    """One protobuf field: a varint for an int, else length-delimited."""
    def varint(n: int) -> bytes:
        out = b""
        while True:
            out += bytes([(n & 0x7F) | (0x80 if n > 0x7F else 0)])
            n >>= 7
            if not n:
                return out
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def _protobuf_pod() -> bytes:
    """A Pod as client-go's typed clientset encodes it (k8s.io/api core/v1 generated.proto field numbers), with
    the zero values gogo-protobuf writes for plain fields and a pointer set to zero."""
    container = _pb(1, "c") + _pb(2, "busybox") + _pb(3, "sleep") + _pb(3, "1") + _pb(5, "") + \
        _pb(6, _pb(3, 8080) + _pb(4, "TCP"))
    spec = _pb(2, container) + _pb(4, 0) + _pb(11, 0) + _pb(19, "nobody") + _pb(21, 0)
    meta = _pb(1, "pb-pod") + _pb(2, "") + _pb(7, 0) + _pb(11, _pb(1, "via") + _pb(2, "protobuf"))
    envelope = _pb(1, _pb(1, "v1") + _pb(2, "Pod")) + _pb(2, _pb(1, meta) + _pb(2, spec)) + _pb(3, "") + _pb(4, "")
    return b"k8s\x00" + envelope


def _protobuf_pod_stored(ctx: Ctx) -> None:
    pod = ctx.core.read_namespaced_pod("pb-pod", NS, _preload_content=False)
    spec, meta = json.loads(pod.data)["spec"], json.loads(pod.data)["metadata"]
    assert meta["labels"] == {"via": "protobuf"} and "generateName" not in meta
    assert spec["containers"][0]["command"] == ["sleep", "1"] and "workingDir" not in spec["containers"][0]
    assert spec["containers"][0]["ports"] == [{"containerPort": 8080, "protocol": "TCP"}]
    # Pointers sent as zero stay; a plain zero under omitempty is what encoding/json leaves out.
    assert spec["terminationGracePeriodSeconds"] == 0 and spec["automountServiceAccountToken"] is False
    assert "hostNetwork" not in spec


# --- setups ---------------------------------------------------------------------------------------------------
def _being_deleted(ctx: Ctx) -> None:
    _cm(ctx, "fin-deleting", finalizers=(HOLD,))
    ctx.core.delete_namespaced_config_map("fin-deleting", NS)


def _foreground_setup(ctx: Ctx) -> None:
    owner = _cm(ctx, "fg-owner")
    _cm(ctx, "fg-blocker", finalizers=(HOLD,), owners=((owner, True),))
    _cm(ctx, "fg-plain", owners=((owner, False),))


def _background_setup(ctx: Ctx) -> None:
    owner, other = _cm(ctx, "bg-owner"), _cm(ctx, "bg-other")
    _cm(ctx, "bg-dep", owners=((owner, False),))
    _cm(ctx, "bg-shared", owners=((owner, False), (other, False)))


def _namespace_setup(name: str) -> Callable[[Ctx], None]:
    def setup(ctx: Ctx) -> None:
        ctx.core.create_namespace({"metadata": {"name": name}})
        _cm(ctx, "held", name, finalizers=(HOLD,))
        _cm(ctx, "plain", name)
    return setup


def _closing_setup(ctx: Ctx) -> None:
    _namespace_setup("closing-ns")(ctx)
    ctx.core.delete_namespace("closing-ns")


def _crd_setup(ctx: Ctx) -> None:
    ctx.crds.create_custom_resource_definition(_crd("doomed", "doomeds", "Doomed"))
    _thing(ctx, "held-doomed", (HOLD,), plural="doomeds", kind="Doomed")
    _thing(ctx, "plain-doomed", plural="doomeds", kind="Doomed")


def _without_rv(ctx: Ctx, name: str) -> dict[str, Any]:
    current = _read_thing(ctx, name)
    return {**current, "metadata": {k: v for k, v in current["metadata"].items() if k != "resourceVersion"},
            "spec": {"size": 2}}


def _stale(ctx: Ctx, name: str) -> dict[str, Any]:
    current = _read_thing(ctx, name)
    ctx.custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, name, {"metadata": {"labels": {"x": "1"}}})
    return {**current, "spec": {"size": 2}}


def _configmap_without_rv(ctx: Ctx) -> Any:
    return ctx.core.replace_namespaced_config_map("put-cm", NS, {"metadata": {"name": "put-cm"}, "data": {"a": "b"}},
                                                  **RAW)


ROWS = [
    # 1. dryRun=All deletes nothing (https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run).
    Row("dry-run-delete", lambda c: _cm(c, "dry-one"),
        lambda c: c.core.delete_namespaced_config_map("dry-one", NS, dry_run="All", **RAW), 200,
        after=_still_there("dry-one")),
    Row("dry-run-delete-with-finalizer", lambda c: _cm(c, "dry-held", finalizers=(HOLD,)),
        lambda c: c.core.delete_namespaced_config_map("dry-held", NS, body=_options(dry_run=["All"]), **RAW), 200,
        after=_all(_still_there("dry-held"), lambda c: _release(c, "dry-held"))),
    Row("dry-run-delete-collection",
        lambda c: [_cm(c, n, labels={"row": "dry-collection"}) for n in ("dry-c1", "dry-c2")],
        lambda c: c.core.delete_collection_namespaced_config_map(NS, label_selector="row=dry-collection",
                                                                 dry_run="All", **RAW), 200,
        after=_dry_collection_kept),
    Row("dry-run-delete-checks-preconditions", lambda c: _cm(c, "dry-guarded"),
        lambda c: c.core.delete_namespaced_config_map("dry-guarded", NS, body=_options(
            dry_run=["All"], preconditions=kubernetes.client.V1Preconditions(uid="0")), **RAW),
        409, "Conflict", after=_still_there("dry-guarded")),
    Row("dry-run-foreground-keeps-dependents", lambda c: _cm(c, "dry-dep", owners=((_cm(c, "dry-owner"), True),)),
        lambda c: c.core.delete_namespaced_config_map("dry-owner", NS, dry_run="All",
                                                      propagation_policy="Foreground", **RAW), 200,
        after=_all(_still_there("dry-owner"), _still_there("dry-dep"))),
    # 2. Custom resources take no strategic merge patch; server-side apply is refused, never mis-applied.
    Row("strategic-merge-patch-on-a-custom-resource", lambda c: _thing(c, "smp-thing"),
        lambda c: c.custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "smp-thing", {"spec": {
            "size": 5}}, _content_type="application/strategic-merge-patch+json", **RAW),
        415, "UnsupportedMediaType", after=_thing_unchanged("smp-thing"),
        message="the body of the request was in an unknown format - accepted media types include: "
                "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"),
    Row("server-side-apply-is-refused", lambda c: _thing(c, "ssa-thing"),
        lambda c: c.custom.patch_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "ssa-thing", {
            "apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": "ssa-thing"}, "spec": {"size": 5}},
            _content_type="application/apply-patch+yaml", field_manager="t", **RAW),
        415, "UnsupportedMediaType", after=_thing_unchanged("ssa-thing")),
    Row("patch-as-plain-json-is-refused", lambda c: _cm(c, "json-patch-cm"),
        lambda c: c.core.patch_namespaced_config_map("json-patch-cm", NS, {"data": {"a": "b"}},
                                                     _content_type="application/json", **RAW),
        415, "UnsupportedMediaType", after=_holds(lambda c: _read_cm(c, "json-patch-cm").data is None)),
    # 3. PUT of a custom resource needs metadata.resourceVersion; a stale one stays 409; built-ins allow neither rule.
    Row("put-custom-resource-without-resource-version", lambda c: _thing(c, "put-thing"),
        lambda c: c.custom.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "put-thing",
                                                            _without_rv(c, "put-thing"), **RAW),
        422, "Invalid", "metadata.resourceVersion", after=_thing_unchanged("put-thing"),
        message=f'things.{GROUP} "put-thing" is invalid: metadata.resourceVersion: Invalid value: 0x0: must be '
                "specified for an update"),
    Row("put-custom-resource-with-stale-resource-version", lambda c: _thing(c, "stale-thing"),
        lambda c: c.custom.replace_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "stale-thing",
                                                            _stale(c, "stale-thing"), **RAW),
        409, "Conflict", after=_thing_unchanged("stale-thing")),
    Row("put-built-in-without-resource-version", lambda c: _cm(c, "put-cm"), _configmap_without_rv, 200,
        after=_holds(lambda c: _read_cm(c, "put-cm").data == {"a": "b"})),
    # 4. Finalizers: none added during a deletion; a strategic merge patch merges metadata.finalizers.
    Row("no-new-finalizer-while-deleting", _being_deleted,
        lambda c: c.core.patch_namespaced_config_map("fin-deleting", NS, {"metadata": {
            "finalizers": [HOLD, "example.com/new"]}}, **RAW),
        422, "Invalid", "metadata.finalizers", after=_no_new_finalizer,
        message='ConfigMap "fin-deleting" is invalid: metadata.finalizers: Forbidden: no new finalizers can be added '
                'if the object is being deleted, found new finalizers []string{"example.com/new"}'),
    Row("strategic-merge-patch-merges-finalizers", lambda c: _cm(c, "smp-fin", finalizers=("example.com/a",)),
        lambda c: c.core.patch_namespaced_config_map("smp-fin", NS, {"metadata": {
            "finalizers": ["example.com/b"]}}, **RAW), 200, after=_smp_merged),
    Row("strategic-merge-patch-deletes-a-finalizer",
        lambda c: _cm(c, "smp-del", finalizers=("example.com/a", "example.com/b")),
        lambda c: c.core.patch_namespaced_config_map("smp-del", NS, {"metadata": {
            "$deleteFromPrimitiveList/finalizers": ["example.com/a"]}}, **RAW), 200, after=_smp_deleted_one),
    # 5. Propagation policies (https://kubernetes.io/docs/concepts/architecture/garbage-collection/).
    Row("foreground-waits-for-blocking-dependents", _foreground_setup,
        lambda c: c.core.delete_namespaced_config_map("fg-owner", NS, propagation_policy="Foreground", **RAW), 200,
        after=_foreground_waits),
    Row("foreground-owner-goes-when-no-dependent-blocks",
        lambda c: _cm(c, "fg3-blocker", finalizers=(HOLD,), owners=((_cm(c, "fg3-owner"), True),)),
        lambda c: c.core.delete_namespaced_config_map("fg3-owner", NS, propagation_policy="Foreground", **RAW), 200,
        after=_foreground_unblocked),
    Row("foreground-without-blockers-finishes-at-once",
        lambda c: _cm(c, "fg2-dep", owners=((_cm(c, "fg2-owner"), True),)),
        lambda c: c.core.delete_namespaced_config_map("fg2-owner", NS, body=_options(
            propagation_policy="Foreground"), **RAW), 200, after=_foreground_done),
    Row("orphan-removes-owner-references",
        lambda c: _cm(c, "orphan-dep", owners=((_cm(c, "orphan-owner"), True),)),
        lambda c: c.core.delete_namespaced_config_map("orphan-owner", NS, propagation_policy="Orphan", **RAW), 200,
        after=_orphaned),
    Row("background-collects-dependents", _background_setup,
        lambda c: c.core.delete_namespaced_config_map("bg-owner", NS, **RAW), 200, after=_background_collected),
    Row("unknown-propagation-policy", lambda c: _cm(c, "bad-policy"),
        lambda c: c.core.delete_namespaced_config_map("bad-policy", NS, propagation_policy="Sideways", **RAW),
        422, "Invalid", "propagationPolicy", after=_still_there("bad-policy"),
        message='DeleteOptions.meta.k8s.io "" is invalid: propagationPolicy: Unsupported value: "Sideways": '
                'supported values: "Foreground", "Background", "Orphan", "nil"'),
    # 5. Namespaces: created with spec.finalizers [kubernetes]; Terminating while contents go; immortal ones.
    Row("namespace-gets-the-kubernetes-finalizer", lambda c: None,
        lambda c: c.core.create_namespace({"metadata": {"name": "fresh-ns"}}, **RAW), 201,
        after=_namespace_finalizer_set),
    Row("namespace-terminates-until-its-contents-are-gone", _namespace_setup("doomed-ns"),
        lambda c: c.core.delete_namespace("doomed-ns", **RAW), 200, after=_namespace_terminating),
    Row("no-create-in-a-terminating-namespace", _closing_setup,
        lambda c: c.core.create_namespaced_config_map("closing-ns", {"metadata": {"name": "late"}}, **RAW),
        403, "Forbidden", "metadata.namespace", after=_namespace_still_terminating,
        message='configmaps "late" is forbidden: unable to create new content in namespace closing-ns because it '
                "is being terminated"),
    *[Row(f"{name}-may-not-be-deleted", lambda c: None,
          lambda c, n=name: c.core.delete_namespace(n, **RAW), 403, "Forbidden", after=_immortal(name),
          message=f'namespaces "{name}" is forbidden: this namespace may not be deleted')
      for name in ("kube-system", "default", "kube-public")],
    Row("immortal-even-in-a-dry-run", lambda c: None,
        lambda c: c.core.delete_namespace("kube-system", dry_run="All", **RAW), 403, "Forbidden",
        after=_immortal("kube-system")),
    # 5. A CRD's deletion removes its custom objects first; one held by a finalizer keeps the CRD Terminating.
    Row("crd-terminates-until-its-objects-are-gone", _crd_setup,
        lambda c: c.crds.delete_custom_resource_definition(f"doomeds.{GROUP}", **RAW), 200, after=_crd_terminating),
    # 6. Bodies: an encoding the server cannot read is 415, not a 400 about JSON.
    Row("cbor-body-is-415", lambda c: None,
        lambda c: _raw(c, f"/api/v1/namespaces/{NS}/configmaps", b"\xa0", "application/cbor"),
        415, "UnsupportedMediaType", after=_holds(lambda c: _read_cm(c, "cbor") is None)),
    Row("protobuf-body-is-read", lambda c: None,
        lambda c: _raw(c, f"/api/v1/namespaces/{NS}/pods", _protobuf_pod(), "application/vnd.kubernetes.protobuf"),
        201, after=_protobuf_pod_stored),
    Row("namespaces-have-no-delete-collection", lambda c: None,
        lambda c: _raw(c, "/api/v1/namespaces", None, "application/json", "DELETE"), 405, "MethodNotAllowed",
        after=_immortal("kube-system")),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_request_semantics(ctx: Ctx, row: Row) -> None:
    row.setup(ctx)
    try:
        response = row.request(ctx)
        status, body = response.status, json.loads(response.data)
    except ApiException as exc:
        status, body = exc.status, json.loads(exc.body)
    assert status == row.status, body
    if row.reason is not None:
        assert body["reason"] == row.reason, body
        causes = [c.get("field") for c in (body.get("details") or {}).get("causes") or []]
        assert causes == ([row.field] if row.field else []), body
    if row.message is not None:
        assert body["message"] == row.message
    row.after(ctx)


# --- kubectl: what its users see of these rules -------------------------------------------------------------------
@dataclass(frozen=True)
class KubectlRow:
    id: str
    setup: Callable[[Ctx, Any], Any]
    args: tuple[str, ...]
    ok: bool  # kubectl's exit status is 0
    output: str  # a line it prints (stdout or stderr)
    after: Callable[[Ctx], None] = lambda ctx: None


def _pod_created(ctx: Ctx) -> None:
    pod = ctx.core.read_namespaced_pod("kubectl-run", NS)
    assert pod.spec.containers[0].image == "busybox" and pod.spec.containers[0].args == ["sleep", "1"]
    assert pod.metadata.labels == {"run": "kubectl-run"}


def _service_created(ctx: Ctx) -> None:
    service = ctx.core.read_namespaced_service("kubectl-svc", NS)
    port = service.spec.ports[0]
    assert (service.spec.type, port.port, port.target_port, port.protocol) == ("ClusterIP", 80, 8080, "TCP")


def _thing_for_kubectl(ctx: Ctx, kubectl: Any) -> None:
    _thing(ctx, "kubectl-thing")


KUBECTL_ROWS = [
    KubectlRow("delete-dry-run-server", lambda c, k: _cm(c, "kubectl-dry"),
               ("delete", "configmap", "kubectl-dry", "-n", NS, "--dry-run=server"), True,
               'configmap "kubectl-dry" deleted (server dry run)', _still_there("kubectl-dry")),
    # client-go's typed clientset sends protobuf for built-ins (kubectl create and run): the server reads it.
    KubectlRow("create-configmap", lambda c, k: None,
               ("create", "configmap", "kubectl-cm", "-n", NS, "--from-literal=a=b", "--from-literal=c=d"), True,
               "configmap/kubectl-cm created",
               _holds(lambda c: _read_cm(c, "kubectl-cm").data == {"a": "b", "c": "d"})),
    KubectlRow("create-namespace", lambda c, k: None, ("create", "namespace", "kubectl-ns"), True,
               "namespace/kubectl-ns created",
               _holds(lambda c: _ns(c, "kubectl-ns").spec.finalizers == ["kubernetes"])),
    KubectlRow("create-service-clusterip", lambda c, k: None,
               ("create", "service", "clusterip", "kubectl-svc", "-n", NS, "--tcp=80:8080"), True,
               "service/kubectl-svc created", _service_created),
    KubectlRow("run", lambda c, k: None, ("run", "kubectl-run", "-n", NS, "--image=busybox", "--", "sleep", "1"), True,
               "pod/kubectl-run created", _pod_created),
    KubectlRow("delete-kube-system", lambda c, k: None, ("delete", "namespace", "kube-system"), False,
               'Error from server (Forbidden): namespaces "kube-system" is forbidden: this namespace may not be '
               "deleted", _immortal("kube-system")),
    # kubectl patch defaults to a strategic merge patch, which a custom resource refuses (--type=merge works).
    KubectlRow("patch-custom-resource-strategic", _thing_for_kubectl,
               ("patch", "thing", "kubectl-thing", "-n", NS, "-p", '{"spec": {"size": 5}}'), False,
               "the body of the request was in an unknown format - accepted media types include: "
               "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml",
               _thing_unchanged("kubectl-thing")),
    KubectlRow("apply-server-side-refused", lambda c, k: None,
               ("apply", "--server-side", "-f", "-"), False, "Server-side apply not available on the server",
               _holds(lambda c: _read_thing(c, "kubectl-ssa") is None)),
]
SSA_MANIFEST = {"apiVersion": f"{GROUP}/{VERSION}", "kind": KIND, "metadata": {"name": "kubectl-ssa", "namespace": NS},
                "spec": {"size": 1}}


@pytest.mark.parametrize("row", KUBECTL_ROWS, ids=[row.id for row in KUBECTL_ROWS])
def test_kubectl_sees_the_same(ctx: Ctx, kubectl: Any, row: KubectlRow) -> None:
    row.setup(ctx, kubectl)
    stdin = yaml.safe_dump(SSA_MANIFEST) if "-" in row.args else None
    result = kubectl(*row.args, stdin=stdin, check=False)
    assert (result.returncode == 0) == row.ok, result.stderr
    assert row.output in result.stdout + result.stderr, (result.stdout, result.stderr)
    row.after(ctx)
