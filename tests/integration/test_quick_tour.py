"""The README's quick tour, as a new user runs it: `tandem local --kubeconfig`, the operator, `kubectl apply
-f examples/local/`, and `kubectl get tj` shows the job Succeeded. Then the fast checks a first run depends
on: every example passes the API's own checks, the local examples fit the default local cluster, and the
docs the README points to exist."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from operator_process import OperatorProcess
from waiting import wait_for

from tandem.localcluster.nodes import DEFAULT_CLUSTER, ClusterConfig, node_manifests
from tandem.localcluster.resources import crd_types
from tandem.localcluster.schema import validate
from tandem.operator.api import AcceleratorPool, TrainingJob
from tandem.operator.crdgen import crd_documents

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
KUBECTL = "/usr/bin/kubectl"
TANDEM = str(Path(sys.executable).with_name("tandem"))  # the console script of this environment
EXAMPLES = sorted((REPO / "examples").rglob("*.yaml"))
LOCAL = REPO / "examples" / "local"
JOB = "llama-local"  # the job of examples/local/
# What the quick tour has a user type, in order (each line is checked against the README).
TOUR = ["tandem local --kubeconfig /tmp/kc", "tandem operator", "kubectl apply -f examples/local/", "kubectl get tj -w",
        "kubectl get events"]
SUCCEEDED_WITHIN = 75.0  # seconds from `kubectl apply` (about 15 s when the machine is idle)

MODELS = {"TrainingJob": TrainingJob, "AcceleratorPool": AcceleratorPool}
SCHEMAS = {t.kind: t.schema for crd in crd_documents() for t in crd_types(crd)}


def _docs(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


@dataclass
class Tour:
    kubectl: Callable[..., subprocess.CompletedProcess[str]]
    phase: str  # the PHASE column of `kubectl get tj` when the wait ended
    row: list[str]
    diagnostics: str


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    """`tandem local` and `tandem operator` as subprocesses, as the README starts them; `kubectl apply -f
    examples/local/` from the repository root; then `kubectl get tj` until the job's phase is final."""
    home = tmp_path_factory.mktemp("quick-tour")
    kubeconfig = home / "kc"
    env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBECACHEDIR": str(home / "kubecache")}

    def kubectl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([KUBECTL, *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=30)
        if check and result.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
        return result

    banner = home / "tandem-local.out"
    with banner.open("wb") as out:
        local = subprocess.Popen([TANDEM, "local", "--kubeconfig", str(kubeconfig)], env=env, stdout=out,
                                 stderr=subprocess.STDOUT, start_new_session=True)
    operator = OperatorProcess(kubeconfig, home)
    try:
        wait_for(lambda: "Serving" in banner.read_text() or local.poll() is not None, timeout=30,
                 what="tandem local to serve")
        assert local.poll() is None, banner.read_text()
        operator.start()
        assert len(kubectl("get", "nodes", "-o", "name").stdout.split()) == 4
        kubectl("apply", "-f", "examples/local/")

        def final_row() -> list[str] | None:
            row = kubectl("get", "tj", JOB, "--no-headers").stdout.split()
            return row if row[2:3] in (["Succeeded"], ["Failed"]) else None

        started = time.monotonic()
        try:
            row = wait_for(final_row, timeout=SUCCEEDED_WITHIN, interval=1.0, what=f"{JOB} to finish")
        except AssertionError:
            row = kubectl("get", "tj", JOB, "--no-headers", check=False).stdout.split()
        took = time.monotonic() - started
        diagnostics = (f"after {took:.0f}s: {row}\n" + kubectl("describe", "tj", JOB, check=False).stdout
                       + kubectl("get", "pods", "-o", "wide", check=False).stdout
                       + "\n".join(kubectl("logs", f"{JOB}-a1-{rank}", "--tail=20", check=False).stdout
                                   for rank in (0, 1))
                       + "\n--- operator ---\n" + operator.logs()[-3000:])
        yield Tour(kubectl, row[2] if len(row) > 2 else "", row, diagnostics)
    finally:
        operator.stop()
        if local.poll() is None:  # SIGTERM stops it and every pod process it started
            local.send_signal(signal.SIGTERM)
            try:
                local.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(local.pid, signal.SIGKILL)
                local.wait(timeout=30)


@pytest.mark.slow
@pytest.mark.timeout(110)
def test_the_quick_tour_job_succeeds_on_the_default_local_cluster(tour: Tour) -> None:
    assert tour.phase == "Succeeded", tour.diagnostics
    # NAME POOL PHASE ATTEMPT RESTARTS FAILOVERS CHECKPOINT AGE
    assert tour.row[:7] == [JOB, "ascend-910b", "Succeeded", "1", "0", "0", "30"], tour.diagnostics
    assert "class='none'" in tour.kubectl("logs", f"{JOB}-a1-0").stdout


@pytest.mark.slow
@pytest.mark.timeout(110)
def test_kubectl_get_events_shows_what_the_operator_did(tour: Tour) -> None:
    events = tour.kubectl("get", "events", check=False)
    assert events.returncode == 0, events.stderr
    ours = [line.split() for line in events.stdout.splitlines() if f"trainingjob/{JOB}" in line]
    reasons = {word for line in ours for word in line}
    assert {"AttemptStarted", "Running", "Succeeded"} <= reasons, events.stdout


def test_the_readme_quick_tour_is_what_the_test_runs() -> None:
    text = README.read_text()
    tour = text[text.index("## Quick tour: a local cluster"):text.index("## The API")]
    at = [tour.find(command) for command in TOUR]
    assert -1 not in at, [c for c, i in zip(TOUR, at, strict=True) if i == -1]
    assert "kubectl apply -f examples/\n" not in tour and "kubectl apply -f crds/ -f examples/\n" not in tour
    assert f"tandem.dev/job={JOB}" in tour


@pytest.mark.parametrize("path", EXAMPLES, ids=[str(p.relative_to(REPO / "examples")) for p in EXAMPLES])
def test_every_example_passes_the_api_checks(path: Path) -> None:
    """What the API server checks on `kubectl apply`: Tandem's kinds against the CRD's structural schema and
    CEL rules (the local API's check) and the pydantic models; built-in kinds against the Kubernetes schema.
    A file without a kind is a `tandem local --cluster-config` file."""
    docs = _docs(path)
    assert docs, f"{path} holds no manifest"
    for doc in docs:
        kind = doc.get("kind")
        if kind is None:
            ClusterConfig.model_validate(doc)
        elif kind in MODELS:
            MODELS[kind].model_validate(doc)
            outcome = validate(doc, SCHEMAS[kind])
            assert (outcome.causes, outcome.unknown_fields) == ([], []), (path, outcome)
        else:
            kubernetes_validate.validate(doc, "1.32", strict=True)


def test_each_example_says_which_cluster_it_is_for() -> None:
    for path in EXAMPLES:
        header = path.read_text().split("\napiVersion:")[0].split("\npools:")[0]
        wanted = "tandem local" if path.parent.name in ("local", "demo") else "real cluster"
        assert header.startswith("#") and wanted in header, (path, header[:200])


def test_the_local_examples_fit_the_default_local_cluster() -> None:
    """Every pool selects nodes `tandem local` starts without --cluster-config and makes the runtime take
    its CPU path (those nodes have no NPU or GPU); the job's pools are all there and each has room."""
    docs = [doc for path in sorted(LOCAL.glob("*.yaml")) for doc in _docs(path)]
    pools = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "AcceleratorPool"}
    (job,) = [d for d in docs if d["kind"] == "TrainingJob"]
    assert job["metadata"]["name"] == JOB
    claims = {d["metadata"]["name"] for d in docs if d["kind"] == "PersistentVolumeClaim"}
    assert job["spec"]["checkpoint"]["volume"]["persistentVolumeClaim"]["claimName"] in claims
    nodes = node_manifests(DEFAULT_CLUSTER)
    for name in job["spec"]["pools"]:
        spec = pools[name]
        env = {var["name"]: var.get("value") for var in spec.get("env", [])}
        assert (env.get("TANDEM_ACCELERATOR"), env.get("TANDEM_BACKEND")) == ("cpu", "gloo"), name
        selected = [n for n in nodes if spec["nodeSelector"].items() <= n["metadata"]["labels"].items()]
        roomy = [n for n in selected if int(n["status"]["allocatable"].get(spec["deviceResource"], 0))
                 >= spec["devicesPerNode"]]
        assert len(roomy) >= job["spec"]["nodes"], name
    # Simulated pods share this machine's ports: a per-pod metrics port would collide.
    assert job["spec"]["training"]["metrics"]["port"] == 0


def test_the_docs_the_repository_points_to_exist() -> None:
    """Every `docs/<page>.md#anchor` named in the repository's text resolves to a heading (GitHub's anchors),
    and no user-facing file cites a DESIGN.md, which the repository does not have."""
    anchors = {page.name: {_anchor(h) for h in re.findall(r"^#+ (.+)$", page.read_text(), re.M)}
               for page in (REPO / "docs").glob("*.md")}
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout
    files = [REPO / f for f in tracked.split() if f.endswith((".md", ".py", ".yaml", ".txt"))]
    files += [p for p in (REPO / "docs").glob("*.md")] + [p for p in (REPO / "examples").rglob("*.yaml")]
    broken = []
    for path in set(files):
        if not path.exists():
            continue
        for page, anchor in re.findall(r"docs/([\w-]+\.md)#([\w-]+)", path.read_text(errors="replace")):
            if anchor not in anchors.get(page, set()):
                broken.append(f"{path.relative_to(REPO)}: docs/{page}#{anchor}")
    assert broken == []
    for path in [README, REPO / "runtime/README.md", REPO / "kernels/README.md", REPO / "bench/RESULTS.md",
                 *(REPO / "docs").glob("*.md"), *EXAMPLES]:
        assert "DESIGN.md" not in path.read_text(), path


def _anchor(heading: str) -> str:
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
