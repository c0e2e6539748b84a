"""The chart as Helm renders it (helm-python-sdk: Helm's Go SDK, no helm binary): lint, the Kubernetes
schema of every object, the security settings, and values.schema.json refusing bad values."""

from __future__ import annotations

import json
import re
import tomllib
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from helm_support import CHART, REPO, Rendered, code_calls, full_values, render, wildcards

from tandem.localcluster import schema as crd_schema

WARNING = 2  # helm lint severities: 1 info, 2 warning, 3 error


@pytest.fixture(scope="module")
def chart() -> helm.Chart:
    return helm.Chart.load(CHART)


# The three scopes: the default namespace list, the full values (two namespaces, peering), every namespace.
ALL_NAMESPACES = {"watchAllNamespaces": True, "watchNamespaces": [], "replicaCount": 2}
SCOPES = {"default": lambda: None, "full": full_values, "all-namespaces": lambda: ALL_NAMESPACES}


@pytest.fixture(scope="module", params=list(SCOPES))
def rendered(request: pytest.FixtureRequest, chart: helm.Chart) -> Rendered:
    return render(SCOPES[request.param](), chart)


def crds() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> the storage version's openAPIV3Schema, for every CRD the chart installs."""
    found = {}
    for path in (CHART / "crds").glob("*.yaml"):
        for crd in filter(None, yaml.safe_load_all(path.read_text())):
            for version in crd["spec"]["versions"]:
                key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
                found[key] = version["schema"]["openAPIV3Schema"]
    return found


@pytest.mark.parametrize("scope", list(SCOPES))
def test_helm_lint_has_no_errors_or_warnings(scope: str) -> None:
    report = helm.lint(CHART, SCOPES[scope](), strict=True, kube_version="v1.32.0")
    problems = [m for m in report["messages"] if m["severity"] >= WARNING]
    assert not problems and not report["errors"], report


def test_every_rendered_object_validates_against_its_schema(rendered: Rendered) -> None:
    custom = crds()
    for obj in rendered.objects:
        key = (obj["apiVersion"], obj["kind"])
        if key in custom:  # the chart's own CRDs, checked as the API server would (schema and CEL rules)
            outcome = crd_schema.validate(obj, custom[key])
            assert not outcome.causes and not outcome.unknown_fields, (key, outcome)
        elif obj["kind"] == "ServiceMonitor":  # the Prometheus Operator's CRD is not here: check what it selects
            service = rendered.one("Service")
            assert obj["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
            assert {e["port"] for e in obj["spec"]["endpoints"]} <= {p["name"] for p in service["spec"]["ports"]}
        else:
            kubernetes_validate.validate(obj, "1.32", strict=True)


def test_default_values_render_the_operator_and_nothing_optional(chart: helm.Chart) -> None:
    kinds = sorted(o["kind"] for o in render(None, chart).objects)
    # A Role and RoleBinding for the jobs in the watched namespace, and for the device reports.
    assert kinds == ["ClusterRole", "ClusterRoleBinding", "Deployment", "Role", "Role", "RoleBinding", "RoleBinding",
                     "Service", "ServiceAccount"]


def test_full_values_render_every_option(chart: helm.Chart) -> None:
    full = render(full_values(), chart)
    kinds = {o["kind"] for o in full.objects}
    assert {"PodDisruptionBudget", "ServiceMonitor", "KopfPeering", "AcceleratorPool"} <= kinds
    assert sorted(p["metadata"]["name"] for p in full.kind("AcceleratorPool")) == ["ascend-910b", "cpu-test", "h20"]
    assert sorted(p["metadata"]["namespace"] for p in full.kind("KopfPeering")) == ["default", "research"]
    assert full.one("Deployment")["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert "--peering=tandem-ha" in full.container()["args"]
    assert {"--namespace=default", "--namespace=research"} <= set(full.container()["args"])


def test_the_operator_pod_is_locked_down(rendered: Rendered) -> None:
    pod = rendered.one("Deployment")["spec"]["template"]["spec"]
    container = rendered.container()
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["privileged"] is False
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["resources"]["requests"]["cpu"] and container["resources"]["requests"]["memory"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    for probe in ("livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert f"--health-port={ports['health']}" in container["args"]
    assert f"--metrics-port={ports['metrics']}" in container["args"]
    service = rendered.one("Service")
    assert service["spec"]["ports"][0]["targetPort"] == "metrics"


def test_one_replica_runs_standalone_and_replaces_itself_without_overlap(chart: helm.Chart) -> None:
    single = render(None, chart)
    assert single.one("Deployment")["spec"]["strategy"] == {"type": "Recreate"}
    assert not any(a.startswith("--peering") for a in single.container()["args"])
    assert not single.kind("ClusterKopfPeering") and not single.kind("KopfPeering")
    pair = render({"replicaCount": 2}, chart)
    assert "--peering=tandem" in pair.container()["args"]
    peerings = [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in pair.kind("KopfPeering")]
    assert peerings == [("default", "tandem")]  # one per watched namespace
    everywhere = render({"replicaCount": 2, "watchAllNamespaces": True, "watchNamespaces": []}, chart)
    assert everywhere.one("ClusterKopfPeering")["metadata"]["name"] == "tandem"


def test_rbac_has_no_wildcards(rendered: Rendered) -> None:
    assert not wildcards(rendered.objects)


def test_every_api_call_in_the_operator_code_is_granted(rendered: Rendered) -> None:
    """From the code: each client call in operator/kube.py and each resource the kopf handlers watch. With
    watchNamespaces, the cluster-wide branches of Kube.list_jobs and Kube.list_pool_pods are the calls not
    granted: the operator then lists namespace by namespace (test_operator_from_chart.py runs it so)."""
    namespaced = any(a.startswith("--namespace=") for a in rendered.container()["args"])
    denied = {(c.verb, c.group, c.resource) for c in code_calls(rendered) if not c.allowed_somewhere(rendered)}
    cluster_wide_only = {("list", "tandem.dev", "trainingjobs"), ("list", "", "pods")}
    assert denied == (cluster_wide_only if namespaced else set()), denied


def test_the_chart_crds_are_the_generated_ones() -> None:
    generated = sorted(p.name for p in (REPO / "crds").glob("*.yaml"))
    assert generated
    for name in generated:
        assert (CHART / "crds" / name).read_text() == (REPO / "crds" / name).read_text(), f"run `make crds` ({name})"
    extra = {p.name for p in (CHART / "crds").glob("*.yaml")} - set(generated)
    assert extra == {"kopf.dev_peerings.yaml"}


def test_the_peering_crds_are_the_ones_kopf_looks_for() -> None:
    from kopf._cogs.structs import references

    served = {(c["group"], c["plural"]) for c in (
        {"group": crd["spec"]["group"], "plural": crd["spec"]["names"]["plural"]}
        for crd in yaml.safe_load_all((CHART / "crds" / "kopf.dev_peerings.yaml").read_text()) if crd)}
    for selector in (references.CLUSTER_PEERINGS_K, references.NAMESPACED_PEERINGS_K):
        assert (selector.group, selector.plural or selector.any_name) in served


def test_app_version_is_the_package_version() -> None:
    chart_yaml = yaml.safe_load((CHART / "Chart.yaml").read_text())
    package = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert chart_yaml["appVersion"] == package
    assert render().container()["image"].endswith(f":{package}")


def test_every_value_is_in_the_schema_and_the_readme() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    readme = (REPO / "README.md").read_text()
    assert set(values) <= set(schema["properties"])
    for key in values:
        assert f"`{key}" in readme, f"README's values table lacks {key}"


@pytest.mark.parametrize(("values", "message"), [
    ({"replicaCount": 0}, "at '/replicaCount': minimum: got 0, want 1"),
    ({"image": {"pullPolicy": "Sometimes"}}, "at '/image/pullPolicy': value must be one of"),
    ({"watchNamespaces": ["ML_Team"]}, "at '/watchNamespaces/0': 'ML_Team' does not match pattern"),
    ({"watchNamespaces": "ml"}, "at '/watchNamespaces': got string, want array"),
    ({"metrics": {"port": 70000}}, "at '/metrics/port': maximum: got 70,000, want 65,535"),
    ({"logLevel": "verbose"}, "at '/logLevel': value must be one of 'DEBUG', 'INFO', 'WARNING', 'ERROR'"),
    ({"replicas": 2}, "additional properties 'replicas' not allowed"),
    ({"pools": {"tpu": {"enabled": True}}}, "at '/pools/tpu': missing property 'accelerator'"),
    ({"pools": {"big": {"enabled": True, "accelerator": "gpu"}}}, "at '/pools/big': missing property 'deviceResource'"),
    ({"pools": {"h20": {"devicesPerNode": 0}}}, "at '/pools/h20/devicesPerNode': minimum: got 0, want 1"),
    ({"pools": {"Bad_Pool": {"enabled": False}}}, "invalid propertyName 'Bad_Pool'"),
    ({"metrics": {"serviceMonitor": {"interval": "often"}}}, "at '/metrics/serviceMonitor/interval'"),
])
def test_invalid_values_are_refused_naming_the_value(chart: helm.Chart, values: dict[str, Any], message: str) -> None:
    with pytest.raises(helm.HelmValuesError) as refused:
        chart.render(values, name="tandem", namespace="tandem-system")
    assert message in str(refused.value), str(refused.value)


@pytest.mark.parametrize(("values", "message"), [
    ({"podDisruptionBudget": {"enabled": True}}, "podDisruptionBudget.enabled needs replicaCount >= 2"),
    ({"metrics": {"service": {"enabled": False}, "serviceMonitor": {"enabled": True}}},
     "metrics.serviceMonitor.enabled needs metrics.service.enabled"),
])
def test_contradictory_values_are_refused_with_the_reason(chart: helm.Chart, values: dict[str, Any],
                                                          message: str) -> None:
    with pytest.raises(helm.HelmRenderError, match=re.escape(message)):
        chart.render(values, name="tandem", namespace="tandem-system")


def test_notes_tell_the_user_what_to_do_next(chart: helm.Chart) -> None:
    notes = render(None, chart).notes
    assert "rollout status deployment/tandem" in notes and "kubectl apply -f examples/pool-ascend-910b.yaml" in notes
    assert "kubectl get trainingjobs -w" in notes and "keeps the CRDs" in notes
    full = render(full_values(), chart).notes
    assert "created by this release: ascend-910b, cpu-test, h20" in full and "kopf peering \"tandem-ha\"" in full


def test_the_pool_values_follow_the_crd_and_the_examples(chart: helm.Chart) -> None:
    spec = crds()[("tandem.dev/v1alpha1", "AcceleratorPool")]["properties"]["spec"]["properties"]
    pool = json.loads((CHART / "values.schema.json").read_text())["properties"]["pools"]["additionalProperties"]
    assert set(pool["properties"]) - {"enabled"} == set(spec)
    for field in ("accelerator", "backend"):
        assert pool["properties"][field]["enum"] == spec[field]["enum"]
    volumes = "checkpointVolumeTypes"
    assert pool["properties"][volumes]["items"]["enum"] == spec[volumes]["items"]["enum"]
    assert pool["properties"][volumes]["maxItems"] == spec[volumes]["maxItems"]
    assert pool["properties"]["devicesPerNode"]["minimum"] == spec["devicesPerNode"]["minimum"]
    files = ("pool-ascend-910b.yaml", "pool-nvidia-h20.yaml")
    examples = {doc["metadata"]["name"]: doc["spec"] for doc in (
        yaml.safe_load((REPO / "examples" / name).read_text()) for name in files)}
    values = {"pools": {name: {"enabled": True} for name in examples}}
    assert {p["metadata"]["name"]: p["spec"] for p in render(values, chart).kind("AcceleratorPool")} == examples


def test_optional_objects_follow_their_switches(chart: helm.Chart) -> None:
    bare = render({"rbac": {"create": False}, "serviceAccount": {"create": False, "name": "ops"},
                   "metrics": {"service": {"enabled": False}}}, chart)
    assert sorted(o["kind"] for o in bare.objects) == ["Deployment"]
    assert bare.one("Deployment")["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    pinned = render({"image": {"tag": "0.2.0"}, "deviceInfoNamespace": "mindx-dl"}, chart)
    assert pinned.container()["image"] == "example.org/tandem-operator:0.2.0"
    assert {"name": "TANDEM_DEVICE_INFO_NAMESPACE", "value": "mindx-dl"} in pinned.container()["env"]
    assert [r["metadata"]["namespace"] for r in pinned.kind("Role") if r["metadata"]["name"].endswith("-device-reports")
            ] == ["mindx-dl"]
