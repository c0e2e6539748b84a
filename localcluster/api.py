"""The HTTP face of the local cluster: a kmock `KubernetesEmulator` whose request handling is
replaced by the layers of this package (store, admission, selectors, patches, tables,
discovery). kmock still provides the aiohttp server, request parsing and `Status` errors."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import re
import traceback
from collections.abc import Callable
from typing import Any

import aiohttp.web
import attrs
import kmock
import structlog
from kmock._internal import rendering

from tandem.localcluster import bodies, discovery, errors, eviction, names, quota, writes
from tandem.localcluster.admission import Admission
from tandem.localcluster.deletion import delete_options
from tandem.localcluster.deletion import pod_deletion_grace as pod_deletion_grace  # re-exported for tests
from tandem.localcluster.patches import apply_patch
from tandem.localcluster.resources import ResourceType, builtin_types, crd_types
from tandem.localcluster.selectors import parse_field_selector, parse_label_selector
from tandem.localcluster.store import Filter, Key, Obj, Store, as_written
from tandem.localcluster.tables import to_table
from tandem.localcluster.terminating import Deletions

log = structlog.get_logger("tandem.localcluster")
_PATH = re.compile(r"^/(?:api/(?P<core>[^/]+)|apis/(?P<group>[^/]+)/(?P<version>[^/]+))(?P<rest>(?:/[^/]+)*)/?$")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# Called for a pod being deleted; returns True when it takes over (the kubelet stops the
# process and removes the object later), False to delete at once.
PodDeletionHook = Callable[[Key, Obj, int], bool]
# Sees every request as (method, path, query, headers) before it is served: tests derive the
# operator's RBAC from the calls it really makes (tests/helm). None outside those tests.
RequestHook = Callable[[str, str, dict[str, str], dict[str, str]], None]


@attrs.define(kw_only=True)
class Route:
    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


@attrs.define(kw_only=True)
class LocalAPI(kmock.KubernetesEmulator):
    store: Store = attrs.field(factory=Store)
    admission: Admission = attrs.field(factory=Admission)
    types: dict[tuple[str, str, str], ResourceType] = attrs.field(factory=dict)
    pod_deletion_hook: PodDeletionHook | None = None
    log_reader: Callable[[str, str], str] | None = None  # (namespace, pod) -> log text
    on_request: RequestHook | None = None
    server_address: str = "127.0.0.1:0"
    deletions: Deletions = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for rt in builtin_types():
            self.register(rt)
        self.deletions = Deletions(self)
        ns_type = self.types[("", "v1", "namespaces")]
        for name in DEFAULT_NAMESPACES:
            self.store.create(ns_type, None, writes.namespace_on_create(
                {"metadata": {"name": name}, "status": {"phase": "Active"}}))

    # --- resource registry -----------------------------------------------------------------
    def register(self, rt: ResourceType) -> None:
        self.types[(rt.group, rt.version, rt.plural)] = rt

    def _sync_crd(self, crd: Obj | None, previous: Obj | None) -> None:
        """Serve the resources of a created/updated CRD; forget them (and their objects) on deletion."""
        if previous is not None:
            group, plural = previous["spec"]["group"], previous["spec"]["names"]["plural"]
            for key in [k for k in self.types if k[0] == group and k[2] == plural]:
                del self.types[key]
        if crd is not None:
            for rt in crd_types(crd):
                self.register(rt)
        elif previous is not None:
            for key in [k for k in self.store.objects if (k[0].group, k[0].plural) == (group, plural)]:
                self.store.remove(key)

    def served(self) -> list[ResourceType]:
        return list(self.types.values())

    # --- HTTP entry point ------------------------------------------------------------------
    async def __call__(self, raw_request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        # kmock parses every path as a resource URL (which fails on `/api/v1/namespaces`) and keeps
        # every request for assertions; a long-running API routes paths itself and keeps none.
        request = rendering.Request(
            raw_request=raw_request, url=raw_request.url, method=raw_request.method,
            params=dict(raw_request.query), headers=dict(raw_request.headers), body=await raw_request.read(),
        )
        return await self._handle(request)

    async def _handle(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        if self.on_request is not None:
            self.on_request(request.method.value.upper(), request.url.path, dict(request.params),
                            dict(request.headers))
        try:
            return await self._dispatch(request)
        except kmock.KubernetesError as exc:
            return _status_response(exc)
        except Exception as exc:  # a bug here must answer 500, never take the server down
            log.error("request_failed", method=request.method.value, path=request.url.path, error=repr(exc),
                      traceback=traceback.format_exc())
            return _status_response(kmock.KubernetesError(status=500, reason="InternalError", message=repr(exc)))

    async def _dispatch(self, request: rendering.Request) -> aiohttp.web.StreamResponse:
        path, method = request.url.path.rstrip("/") or "/", request.method.value.upper()
        static = self._static(path)
        if static is not None:
            if method != "GET":
                raise kmock.KubernetesError(status=405, reason="MethodNotAllowed", message=f"{method} {path}")
            return aiohttp.web.json_response(static)
        route = self._route(path)
        if route.subresource == eviction.SUBRESOURCE and method != "POST":  # only create is routed there
            raise kmock.KubernetesError(status=405, reason="MethodNotAllowed", details={},
                                        message="the server does not allow this method on the requested resource")
        body = bodies.decode(route.rt, method, request.headers.get("Content-Type", ""), request.body)
        params = request.params
        if route.subresource == eviction.SUBRESOURCE:
            self._check_namespace(route, body if isinstance(body, dict) else {})
            assert route.name is not None
            return aiohttp.web.json_response(eviction.evict(self.store, self.deletions, route.rt, str(route.namespace),
                                                            route.name, body, dict(params)), status=201)
        if method == "GET" and route.subresource == "log":
            return self._pod_log(route)
        if method == "GET" and route.name is None:
            if params.get("watch") in ("true", "1"):
                return await self._watch(request, route)
            return self._list(request, route)
        if method == "GET":
            return self._respond(request, route.rt, self.store.get(route.rt, route.namespace, route.name))
        if method == "POST" and route.name is None:
            return self._create(request, route, body)
        if method in ("PUT", "PATCH") and route.name is not None:
            return self._write(request, route, body, method)
        if method == "DELETE" and route.name is not None:
            return self._delete(route, body, params)
        if method == "DELETE":
            return self._delete_collection(request, route, body, params)
        raise kmock.KubernetesError(status=405, reason="MethodNotAllowed", message=f"{method} is not allowed here")

    def _static(self, path: str) -> Any:
        types = self.served()
        if path == "/":
            return discovery.root_paths(types)
        if path == "/version":
            return discovery.VERSION
        if path in ("/healthz", "/livez", "/readyz"):
            return "ok"
        if path == "/api":
            return discovery.api_versions(self.server_address)
        if path == "/apis":
            return discovery.api_group_list(types)
        if path == "/openapi/v3":
            return discovery.openapi_index(types)
        if path.startswith("/openapi/v3/"):
            gv = path.removeprefix("/openapi/v3/").removeprefix("api/").removeprefix("apis/")
            group, _, version = gv.rpartition("/")
            served = [t for t in types if (t.group, t.version) == (group, version)]
            if not served:
                raise errors.not_found("openapi", gv)
            return discovery.openapi_document(served)
        if m := re.fullmatch(r"/apis/([^/]+)", path):
            found = discovery.api_group(types, m.group(1))
            if found is None:
                raise errors.not_found("group", m.group(1))
            return found
        if m := re.fullmatch(r"/api/([^/]+)|/apis/([^/]+)/([^/]+)", path):
            group, version = (m.group(2) or "", m.group(3)) if m.group(2) else ("", m.group(1))
            found = discovery.resource_list(types, group, version)
            if found is None:
                raise errors.not_found("groupversion", f"{group}/{version}")
            return found
        return None

    def _route(self, path: str) -> Route:
        m = _PATH.match(path)
        if not m:
            raise kmock.KubernetesError(status=404, reason="NotFound", message=f"the server could not find {path}")
        group, version = ("", m["core"]) if m["core"] else (m["group"], m["version"])
        parts = [p for p in m["rest"].split("/") if p]
        namespace = None
        if len(parts) >= 3 and parts[0] == "namespaces" and parts[2] not in ("status", "finalize"):
            namespace, parts = parts[1], parts[2:]
        plural, name, sub = [*parts, None, None, None][:3]
        rt = self.types.get((group, version, str(plural)))
        if rt is None:
            raise kmock.KubernetesError(status=404, reason="NotFound",
                                        message=f"the server could not find the requested resource ({path})")
        if sub is not None and sub not in rt.subresources:
            raise kmock.KubernetesError(status=404, reason="NotFound", message=f"no subresource {sub!r} on {rt.plural}")
        return Route(rt=rt, namespace=namespace if rt.namespaced else None, name=name, subresource=sub)

    # --- verbs -----------------------------------------------------------------------------
    def _filter(self, route: Route, params: dict[str, str]) -> Filter:
        return Filter(namespace=route.namespace, labels=parse_label_selector(params.get("labelSelector")),
                      fields=parse_field_selector(params.get("fieldSelector")))

    def _list(self, request: rendering.Request, route: Route) -> aiohttp.web.Response:
        items = self.store.list(route.rt, self._filter(route, request.params))
        if _wants_table(request):
            table = to_table(route.rt, items, str(self.store.rv), request.params.get("includeObject", ""))
            return aiohttp.web.json_response(table)
        return aiohttp.web.json_response({
            "kind": route.rt.list_kind, "apiVersion": route.rt.api_version,
            "metadata": {"resourceVersion": str(self.store.rv)}, "items": items,
        })

    def _respond(self, request: rendering.Request, rt: ResourceType, obj: Obj, status: int = 200,
                 warnings: list[str] | None = None) -> aiohttp.web.Response:
        payload = to_table(rt, [obj], obj["metadata"]["resourceVersion"], request.params.get("includeObject", "")) \
            if _wants_table(request) else obj
        headers = {"Warning": ", ".join(f'299 - "{_quoted(w)}"' for w in warnings)} if warnings else None
        return aiohttp.web.json_response(payload, status=status, headers=headers)

    def _check_namespace(self, route: Route, body: Obj) -> None:
        if not route.rt.namespaced:
            return
        sent = body.get("metadata", {}).get("namespace")
        if sent and sent != route.namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        if self.store.find(self.types[("", "v1", "namespaces")].group_resource, None, str(route.namespace)) is None:
            raise errors.not_found("namespaces", str(route.namespace))

    def _create(self, request: rendering.Request, route: Route, body: Obj) -> aiohttp.web.Response:
        self._check_namespace(route, body)
        body = {**copy.deepcopy(body), "apiVersion": route.rt.api_version, "kind": route.rt.kind}
        meta = body.setdefault("metadata", {})
        if route.rt.namespaced:  # the request's namespace is the object's before anything checks it
            meta["namespace"] = route.namespace
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._generated_name(route, str(meta["generateName"]))
        self.deletions.refuse_create(route.rt, route.namespace, str(meta.get("name") or ""))
        if route.rt.kind == "Namespace" and not route.rt.group:
            body = writes.namespace_on_create(body)
        admitted, warnings = self.admission.admit(route.rt, body, _field_validation(request), creating=True)
        if route.rt.kind == "Pod":  # validating admission: the ResourceQuota plugin, dry runs included
            quota.admit_pod(self.store, str(route.namespace), admitted)
        if request.params.get("dryRun") == "All":
            return self._respond(request, route.rt, admitted, 201, warnings)
        obj = self.store.create(route.rt, route.namespace, admitted)
        if route.rt.kind == "CustomResourceDefinition":
            self._sync_crd(obj, None)
        return self._respond(request, route.rt, obj, 201, warnings)

    def _generated_name(self, route: Route, prefix: str) -> str:
        """A generated name not taken yet (the API server retries a colliding one, RetryGenerateName)."""
        while True:
            name = names.generate_name(prefix)
            if self.store.find(route.rt.group_resource, route.namespace, name) is None:
                return name

    def _write(self, request: rendering.Request, route: Route, body: Any, method: str) -> aiohttp.web.Response:
        assert route.name is not None
        current = self.store.get(route.rt, route.namespace, route.name)
        if method == "PUT":
            self._check_namespace(route, body)
            writes.require_resource_version(route.rt, body)
            new = {**copy.deepcopy(body), "apiVersion": route.rt.api_version, "kind": route.rt.kind}
        else:
            new = apply_patch(current, body, request.headers.get("Content-Type", ""), route.rt.schema is not None)
        new = as_written(route.rt, current, new, route.subresource)
        if route.rt.namespaced:
            new = {**new, "metadata": {**(new.get("metadata") or {}), "namespace": route.namespace}}
        if route.rt.kind == "Namespace" and not route.rt.group and route.subresource is None:
            new = writes.namespace_on_update(current, new)
        writes.refuse_new_finalizers(route.rt, current, new)
        admitted, warnings = self.admission.admit(route.rt, new, _field_validation(request), creating=False,
                                                  old=current)
        if request.params.get("dryRun") == "All":
            return self._respond(request, route.rt, admitted, 200, warnings)
        obj = self.store.update(route.rt, current, admitted, route.subresource)
        if route.rt.kind == "CustomResourceDefinition" and obj is not current and \
                self.store.find(route.rt.group_resource, None, route.name) is not None:
            self._sync_crd(obj, current)  # a CRD removed by this write was unregistered as it went
        return self._respond(request, route.rt, obj, 200, warnings)

    def _delete(self, route: Route, body: Any, params: dict[str, str]) -> aiohttp.web.Response:
        assert route.name is not None
        options = delete_options(body, params)
        current = self.store.get(route.rt, route.namespace, route.name)
        deleted = self.deletions.delete(route.rt, current, options)
        # 202 only for a deletion not finished under the legacy orphanDependents=false (handlers/delete.go).
        pending = self.store.key_of(str(deleted["metadata"].get("uid"))) is not None
        return aiohttp.web.json_response(deleted, status=202 if options.accepted and pending else 200)

    def _delete_collection(self, request: rendering.Request, route: Route, body: Any,
                           params: dict[str, str]) -> aiohttp.web.Response:
        items = self.store.list(route.rt, self._filter(route, params))
        deleted = self.deletions.delete_collection(route.rt, items, delete_options(body, params))
        return aiohttp.web.json_response({"kind": route.rt.list_kind, "apiVersion": route.rt.api_version,
                                          "metadata": {"resourceVersion": str(self.store.rv)}, "items": deleted})

    def _pod_log(self, route: Route) -> aiohttp.web.Response:
        assert route.name is not None
        self.store.get(route.rt, route.namespace, route.name)
        text = self.log_reader(str(route.namespace), route.name) if self.log_reader else ""
        return aiohttp.web.Response(text=text, content_type="text/plain")

    async def _watch(self, request: rendering.Request, route: Route) -> aiohttp.web.StreamResponse:
        params = request.params
        flt = self._filter(route, params)
        since_text = params.get("resourceVersion")
        since = int(since_text) if since_text not in (None, "", "0") else None
        timeout = float(params.get("timeoutSeconds", 0)) or None
        table = _wants_table(request)
        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        raw = request._raw_request
        assert raw is not None
        await response.prepare(raw)

        async def send(event_type: str, obj: Obj) -> None:
            if table and event_type != "ERROR":
                obj = to_table(route.rt, [obj], obj["metadata"]["resourceVersion"], params.get("includeObject", ""))
            await response.write(json.dumps({"type": event_type, "object": obj}).encode() + b"\n")

        with contextlib.suppress(asyncio.TimeoutError, ConnectionResetError, asyncio.CancelledError):
            async with asyncio.timeout(timeout):
                try:
                    async for event_type, obj in self.store.watch(route.rt.group_resource, flt, since):
                        await send(event_type, obj)
                except kmock.KubernetesError as exc:  # e.g. 410 Gone: sent in-stream, as the API server does
                    await send("ERROR", _status(exc))
        with contextlib.suppress(ConnectionResetError, RuntimeError):
            await response.write_eof()
        return response


def _quoted(text: str) -> str:
    """A warning's text inside the quoted-string of a Warning header (RFC 7234): quotes and
    backslashes escaped, as the API server sends the messages of ratcheted CEL rules."""
    return text.replace("\\", "\\\\").replace('"', '\\"')


def _wants_table(request: rendering.Request) -> bool:
    return "as=Table" in request.headers.get("Accept", "")


def _field_validation(request: rendering.Request) -> str:
    return request.params.get("fieldValidation", "Warn")


def _status(exc: kmock.KubernetesError) -> Obj:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": exc.status,
            "reason": exc.reason, "message": exc.message, "details": exc.details or {}}


def _status_response(exc: kmock.KubernetesError) -> aiohttp.web.Response:
    return aiohttp.web.json_response(_status(exc), status=exc.status)
