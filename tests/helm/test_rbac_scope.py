"""Where the rendered RBAC lets the operator act (the confused-deputy question): with the chart's default
values it touches pods only in the namespaces it was asked to watch, never kube-system nor any other;
it only lists ConfigMaps, in deviceInfoNamespace; it never reads Secrets. Cluster-wide pod access exists
only with watchAllNamespaces. Every answer comes from `can`, which evaluates the rendered (Cluster)Roles
and bindings for the operator's ServiceAccount as the API server's authorizer would."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import helm_python as helm
import pytest
import yaml
from helm_support import CHART, RELEASE_NAMESPACE, Rendered, can, full_values, render

JOB_RESOURCES = [("", "pods", ["list", "watch", "create", "patch", "delete"]), ("", "services", ["get", "list", "watch", "create"]),
                 ("", "events", ["create"]), ("tandem.dev", "trainingjobs", ["get", "list", "watch"]),
                 ("tandem.dev", "trainingjobs/status", ["patch"])]
POD_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"]
WRITE_VERBS = ["create", "update", "patch", "delete", "deletecollection"]
ALL_VERBS = ["get", "list", "watch", *WRITE_VERBS]
ALL_NAMESPACES = {"watchAllNamespaces": True, "watchNamespaces": []}
# Namespaces nobody listed: the system's, the operator's own, and an ordinary one.
UNLISTED = ["kube-system", "kube-public", RELEASE_NAMESPACE, "team-b"]


def default_watched() -> list[str]:
    return list(yaml.safe_load((CHART / "values.yaml").read_text())["watchNamespaces"])


def namespace_flags(rendered: Rendered) -> list[str]:
    return [a.removeprefix("--namespace=") for a in rendered.container()["args"] if a.startswith("--namespace=")]


@pytest.fixture(scope="module")
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


def test_the_default_is_a_listed_namespace_not_the_whole_cluster(chart: helm.Chart) -> None:
    rendered = render(None, chart)
    assert default_watched() == ["default"]
    assert namespace_flags(rendered) == ["default"]
    assert "in: default." in rendered.notes


@pytest.mark.parametrize("values", [None, {"watchNamespaces": ["research", "ml-team"]}, "full"],
                         ids=["default", "two-namespaces", "full"])
def test_pods_and_jobs_only_in_the_listed_namespaces(chart: helm.Chart, values: Any) -> None:
    values = full_values() if values == "full" else values
    rendered = render(values, chart)
    listed = (values or {}).get("watchNamespaces") or default_watched()
    assert namespace_flags(rendered) == listed  # the operator watches exactly where it may act
    for namespace in listed:
        for group, resource, verbs in JOB_RESOURCES:
            for verb in verbs:
                assert can(rendered, verb, resource, namespace, group), f"cannot {verb} {resource} in {namespace}"
    for namespace in [n for n in UNLISTED if n not in listed] + [None]:
        for verb in POD_VERBS:
            assert not can(rendered, verb, "pods", namespace), f"can {verb} pods in {namespace or 'every namespace'}"
        for group, resource, verbs in JOB_RESOURCES:
            for verb in verbs:
                assert not can(rendered, verb, resource, namespace, group), \
                    f"can {verb} {resource} in {namespace or 'every namespace'}"


def test_watch_all_namespaces_grants_pods_everywhere(chart: helm.Chart) -> None:
    rendered = render(ALL_NAMESPACES, chart)
    assert namespace_flags(rendered) == []  # kopf then watches the whole cluster
    assert "kube-system included" in rendered.notes
    for namespace in ["default", *UNLISTED, None]:
        for group, resource, verbs in JOB_RESOURCES:
            for verb in verbs:
                assert can(rendered, verb, resource, namespace, group), \
                    f"cannot {verb} {resource} in {namespace or 'every namespace'}"


@pytest.mark.parametrize("values", [None, ALL_NAMESPACES, "full", {"deviceInfoNamespace": "mindx-dl"}],
                         ids=["default", "all-namespaces", "full", "mindx-dl"])
def test_configmaps_are_only_listed_in_the_device_info_namespace(chart: helm.Chart, values: Any) -> None:
    values = full_values() if values == "full" else values
    rendered = render(values, chart)
    device_info = (values or {}).get("deviceInfoNamespace", "kube-system")
    for namespace in ["default", "research", "mindx-dl", *UNLISTED, None]:
        for verb in WRITE_VERBS:
            assert not can(rendered, verb, "configmaps", namespace), f"can {verb} configmaps in {namespace}"
        assert can(rendered, "list", "configmaps", namespace) == (namespace == device_info), namespace
    # The device reports' Role: ConfigMaps and nothing else, read verbs only.
    role = next(r for r in rendered.kind("Role") if r["metadata"]["namespace"] == device_info
                and any("configmaps" in rule["resources"] for rule in r["rules"]))
    assert [(rule["apiGroups"], rule["resources"]) for rule in role["rules"]] == [([""], ["configmaps"])]
    assert set(role["rules"][0]["verbs"]) <= {"get", "list", "watch"}


@pytest.mark.parametrize("values", [None, ALL_NAMESPACES, "full"], ids=["default", "all-namespaces", "full"])
def test_secrets_are_never_readable(chart: helm.Chart, values: Any) -> None:
    rendered = render(full_values() if values == "full" else values, chart)
    for namespace in ["default", "research", *UNLISTED, None]:
        for verb in ALL_VERBS:
            assert not can(rendered, verb, "secrets", namespace), f"can {verb} secrets in {namespace}"


@pytest.mark.parametrize(("values", "message"), [
    ({"watchAllNamespaces": True}, "at '/watchNamespaces': maxItems: got 1, want 0"),
    ({"watchAllNamespaces": True, "watchNamespaces": ["default"]}, "at '/watchNamespaces': maxItems: got 1, want 0"),
    ({"watchNamespaces": []}, "at '/watchNamespaces': minItems: got 0, want 1"),
    ({"watchNamespaces": None}, "missing property 'watchNamespaces'"),
    ({"watchAllNamespaces": "yes"}, "at '/watchAllNamespaces': got string, want boolean"),
])
def test_the_schema_refuses_an_ambiguous_scope(chart: helm.Chart, values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        chart.render(values, name="tandem", namespace=RELEASE_NAMESPACE)
    assert message in str(refused.value), str(refused.value)


@pytest.mark.parametrize(("values", "message"), [
    ({"watchAllNamespaces": True, "watchNamespaces": ["default"]},
     "watchAllNamespaces: true needs watchNamespaces: []"),
    ({"watchNamespaces": []}, "watchNamespaces is empty"),
    ({"watchNamespaces": None}, "watchNamespaces is empty"),
])
def test_the_templates_refuse_it_without_the_schema(tmp_path: Path, values: dict[str, Any], message: str) -> None:
    """`helm install --skip-schema-validation` must not turn an empty list back into cluster-wide access."""
    copy = tmp_path / "tandem"
    shutil.copytree(CHART, copy)
    (copy / "values.schema.json").unlink()
    with pytest.raises(helm.HelmRenderError, match=message.replace("[", r"\[").replace("]", r"\]")):
        helm.Chart.load(copy).render(values, name="tandem", namespace=RELEASE_NAMESPACE)
