"""What tests/helm shares: the chart rendered by Helm's own engine (helm-python-sdk embeds Helm's Go
SDK, so no helm binary is needed), an RBAC evaluator for the rendered (Cluster)Roles, and the API
calls the operator makes, derived from its code and from the requests it sends."""

from __future__ import annotations

import ast
import dataclasses
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "helm" / "tandem"
FULL_VALUES = Path(__file__).with_name("values-full.yaml")
RELEASE, RELEASE_NAMESPACE = "tandem", "tandem-system"
Obj = dict[str, Any]


def full_values() -> Obj:
    return yaml.safe_load(FULL_VALUES.read_text())


@dataclass
class Rendered:
    objects: list[Obj]
    notes: str

    def kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str) -> Obj:
        found = self.kind(kind)
        assert len(found) == 1, f"expected one {kind}, rendered {len(found)}"
        return found[0]

    def container(self) -> Obj:
        return self.one("Deployment")["spec"]["template"]["spec"]["containers"][0]

    def service_account(self) -> tuple[str, str]:
        pod = self.one("Deployment")["spec"]["template"]["spec"]
        return RELEASE_NAMESPACE, pod["serviceAccountName"]


def render(values: Obj | None = None, chart: helm.Chart | None = None) -> Rendered:
    """`helm template tandem helm/tandem -n tandem-system`, values schema-checked as Helm does."""
    manifests = (chart or helm.Chart.load(CHART)).render(values, name=RELEASE, namespace=RELEASE_NAMESPACE,
                                                         is_install=True)
    objects = [doc for path, text in sorted(manifests.items()) if not path.endswith("NOTES.txt")
               for doc in yaml.safe_load_all(text) if doc]
    notes = next((text for path, text in manifests.items() if path.endswith("NOTES.txt")), "")
    return Rendered(objects, notes)


# --- RBAC ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    """One API request as RBAC sees it. `namespace` None: cluster-scoped, or across all namespaces."""

    verb: str
    group: str
    resource: str  # with its subresource: "trainingjobs/status"
    namespace: str | None
    name: str | None = None

    def __str__(self) -> str:
        where = f"in {self.namespace}" if self.namespace else "cluster-wide"
        group = self.group or "core"
        return f"{self.verb} {group}/{self.resource}{'/' + self.name if self.name else ''} {where}"


def _covers(items: list[str] | None, value: str) -> bool:
    return bool(items) and ("*" in items or value in items)  # as the authorizer reads a rule


def _matches(rule: Obj, call: Call) -> bool:
    names = rule.get("resourceNames") or []
    if names and (call.name is None or call.name not in names):
        return False  # list/watch/create carry no name: a rule limited to names never covers them
    return (_covers(rule.get("verbs"), call.verb) and _covers(rule.get("apiGroups"), call.group)
            and _covers(rule.get("resources"), call.resource))


def _binds(subject: Obj, sa_namespace: str, sa_name: str) -> bool:
    """Whether a binding's subject takes in the ServiceAccount: itself, or a group every ServiceAccount is in."""
    if subject["kind"] == "ServiceAccount":
        return bool(subject["name"] == sa_name and subject.get("namespace") == sa_namespace)
    return subject["kind"] == "Group" and subject["name"] in (
        "system:serviceaccounts", f"system:serviceaccounts:{sa_namespace}", "system:authenticated")


def grants(rendered: Rendered) -> list[tuple[str | None, Obj]]:
    """(namespace or None for everywhere, rule) for every rule bound to the operator's ServiceAccount."""
    sa_namespace, sa_name = rendered.service_account()
    roles = {(o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]): o
             for o in rendered.objects if o["kind"] in ("Role", "ClusterRole")}
    assert not any(o.get("aggregationRule") for o in roles.values()), "an aggregated ClusterRole's rules are not here"
    found: list[tuple[str | None, Obj]] = []
    for binding in rendered.kind("ClusterRoleBinding") + rendered.kind("RoleBinding"):
        if not any(_binds(s, sa_namespace, sa_name) for s in binding.get("subjects") or []):
            continue
        ref, scope = binding["roleRef"], binding["metadata"].get("namespace")
        role = roles[(ref["kind"], scope if ref["kind"] == "Role" else None, ref["name"])]
        found += [(scope, rule) for rule in role["rules"]]
    return found


def allowed(rendered: Rendered, call: Call) -> bool:
    """A ClusterRoleBinding grants everywhere; a RoleBinding only inside its namespace."""
    return any(_matches(rule, call) and (scope is None or scope == call.namespace)
               for scope, rule in grants(rendered))


def can(rendered: Rendered, verb: str, resource: str, namespace: str | None, group: str = "",
        name: str | None = None) -> bool:
    """What `kubectl auth can-i VERB RESOURCE -n NAMESPACE --as <the operator>` would answer from the rendered
    RBAC alone; namespace None asks for the cluster-wide request (list/watch across all namespaces)."""
    return allowed(rendered, Call(verb, group, resource, namespace, name))


def granted(rendered: Rendered) -> set[tuple[str, str, str, str | None]]:
    """Every (verb, group, resource, namespace or None) the rendered RBAC grants."""
    return {(verb, group, resource, scope) for scope, rule in grants(rendered)
            for verb in rule["verbs"] for group in rule["apiGroups"] for resource in rule["resources"]}


# --- the operator's calls, from the requests it sends -------------------------------------------
_RESOURCE_PATH = re.compile(r"^/(?:api/v1|apis/(?P<group>[^/]+)/[^/]+)/(?P<rest>.+?)/?$")


def call_from_request(method: str, path: str, query: dict[str, str]) -> Call | None:
    """The RBAC view of one HTTP request; None for discovery and other non-resource URLs (/api,
    /apis, /version, /openapi), which every authenticated user may read (system:discovery)."""
    match = _RESOURCE_PATH.match(path)
    if not match:
        return None
    parts = match["rest"].split("/")
    namespace = None
    if parts[0] == "namespaces" and len(parts) >= 3:
        namespace, parts = parts[1], parts[2:]
    resource, name, sub = [*parts, None, None][:3]
    watching = query.get("watch") in ("true", "1")
    verb = {"GET": "watch" if watching else ("get" if name else "list"), "POST": "create", "PUT": "update",
            "PATCH": "patch", "DELETE": "delete" if name else "deletecollection"}[method]
    return Call(verb, match["group"] or "", f"{resource}/{sub}" if sub else str(resource), namespace, name)


# --- the operator's calls, from its code ----------------------------------------------------------
_CLIENT_METHOD = re.compile(r"^(?P<verb>list|read|get|create|patch|replace|delete)_(?P<scope>namespaced_|cluster_)?"
                            r"(?P<kind>\w+?)(?P<status>_status)?(?P<everywhere>_for_all_namespaces)?$")
# Subresources the client names as a suffix of the kind: read_namespaced_pod_log reads pods/log.
_SUBRESOURCE_KINDS = {"pod_log": "pods/log"}
_VERBS = {"list": "list", "read": "get", "get": "get", "create": "create", "patch": "patch", "replace": "update",
          "delete": "delete"}


@dataclass(frozen=True)
class CodeCall:
    """An API call in the operator's code: `namespaced` False when it spans the cluster."""

    verb: str
    group: str
    resource: str
    namespaced: bool
    where: str
    name: str | None = None  # known only for the peering object (the one --peering names)

    def allowed_somewhere(self, rendered: Rendered) -> bool:
        return any(_matches(rule, Call(self.verb, self.group, self.resource, scope, self.name)) and
                   (scope is None or self.namespaced) for scope, rule in grants(rendered))


def _value(node: ast.expr, module: Any) -> Any:
    """A constant, a module-level name (GROUP) or a class attribute (TrainingJob.PLURAL) of the module."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return getattr(module, node.id)
    if isinstance(node, ast.Attribute):
        return getattr(_value(node.value, module), node.attr)
    raise ValueError(f"cannot evaluate {ast.dump(node)}")


def client_calls() -> list[CodeCall]:
    """Every `self.core.<method>(...)` / `self.custom.<method>(...)` in operator/kube.py, the operator's only
    module that talks to the API, read through the kubernetes client's method naming."""
    import tandem.operator.kube as kube

    path = REPO / "operator" / "kube.py"
    calls: list[CodeCall] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr in ("core", "custom")):
            continue
        method = node.func.attr
        parsed = _CLIENT_METHOD.match(method)
        assert parsed, f"operator/kube.py:{node.lineno}: unknown client method {method}"
        if node.func.value.attr == "core":
            group = ""
            plural = _SUBRESOURCE_KINDS.get(parsed["kind"], parsed["kind"].replace("_", "") + "s")
        else:  # (group, version, [namespace,] plural, ...)
            group = _value(node.args[0], kube)
            plural = _value(node.args[3 if parsed["scope"] == "namespaced_" else 2], kube)
        resource = plural + ("/status" if parsed["status"] else "")
        calls.append(CodeCall(_VERBS[parsed["verb"]], group, resource, parsed["scope"] == "namespaced_",
                              f"operator/kube.py:{node.lineno} {method}"))
    return calls


def watched_resources() -> list[CodeCall]:
    """The resources the kopf handlers watch (list + watch, in the operator's scope), from kopf's registry."""
    import kopf

    from tandem.operator import handlers

    class _Controller:  # the handlers only reach the controller when they run
        pass

    registry = kopf.OperatorRegistry()
    handlers.register(registry, _Controller())  # type: ignore[arg-type]
    calls: list[CodeCall] = []
    for handler in registry._watching.get_all_handlers():
        selector = handler.selector
        # The handlers name resources by plural, which kopf keeps as `any_name` until discovery resolves it.
        plural = selector.plural or selector.any_name if selector is not None else None
        assert isinstance(plural, str) and plural.islower(), f"{handler.id}: name the resource by its plural"
        group = selector.group or ""
        calls += [CodeCall(verb, group, plural, plural not in cluster_scoped(), f"operator/handlers.py {handler.id}")
                  for verb in ("list", "watch")]
    return calls


def cluster_scoped() -> set[str]:
    """Plurals of the cluster-scoped resources the operator may touch: nodes, and the chart's CRDs that say so."""
    crds = [doc for path in (CHART / "crds").glob("*.yaml") for doc in yaml.safe_load_all(path.read_text()) if doc]
    return {"nodes", "namespaces"} | {c["spec"]["names"]["plural"] for c in crds if c["spec"]["scope"] == "Cluster"}


PEERING_PLURALS = {"ClusterKopfPeering": "clusterkopfpeerings", "KopfPeering": "kopfpeerings"}


def code_calls(rendered: Rendered | None = None) -> list[CodeCall]:
    """With `rendered`: the calls that chart's operator can make; the peering object is read only where
    the chart renders one (2+ replicas), only of the kind it renders, and by its name."""
    calls = client_calls() + watched_resources()
    if rendered is None:
        return calls
    peerings = {PEERING_PLURALS[o["kind"]]: o["metadata"]["name"]
                for o in rendered.objects if o["kind"] in PEERING_PLURALS}
    return [dataclasses.replace(c, name=peerings[c.resource]) if c.resource in peerings else c
            for c in calls if c.resource not in PEERING_PLURALS.values() or c.resource in peerings]


def wildcards(objects: Iterable[Obj]) -> list[str]:
    found = []
    for obj in objects:
        for rule in obj.get("rules", []) if obj["kind"] in ("Role", "ClusterRole") else []:
            for key in ("verbs", "apiGroups", "resources", "resourceNames", "nonResourceURLs"):
                if any("*" in item for item in rule.get(key) or []):
                    found.append(f"{obj['kind']} {obj['metadata']['name']}: {key} {rule[key]}")
    return found
