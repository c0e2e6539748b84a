"""`tandem demo`: the story of docs/design.md#the-demo-story on one machine, followed live, then reported.

It starts `tandem local`'s cluster in this process (simulated Ascend and NVIDIA nodes, see
examples/demo/cluster.yaml), the operator as a subprocess (as it runs in a cluster), applies
examples/demo/ with two injected HCCL faults, shows the job until it Succeeds or Fails, writes the
report folder and exits non-zero unless the API and the runtime's logs show the whole story.
While it runs, the same cluster answers `kubectl` through the kubeconfig it prints."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import kubernetes
import yaml
from rich.console import Console
from rich.live import Live

from tandem.demo import analysis
from tandem.demo.observe import Observer
from tandem.demo.plan import FAST, FULL, StoryPlan, demo_job, validate
from tandem.demo.report import write_report
from tandem.demo.view import PlainView, render, snapshot
from tandem.localcluster.cluster import LocalCluster
from tandem.localcluster.nodes import ClusterConfig
from tandem.operator.api_types import GROUP, VERSION

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "demo"
FINISHED = ("Succeeded", "Failed")


def _load(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def _apply(client: kubernetes.client.ApiClient, docs: list[dict[str, Any]]) -> None:
    custom = kubernetes.client.CustomObjectsApi(client)
    for doc in docs:
        if doc["kind"] == "AcceleratorPool":
            custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools", doc)
        elif doc["kind"] == "TrainingJob":
            namespace = doc["metadata"].get("namespace", "default")
            custom.create_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", doc)
        else:
            kubernetes.utils.create_from_dict(client, doc)


def kubectl_commands(kubeconfig: Path, job: str) -> list[str]:
    commands = [(f"kubectl get tj {job} -w", "phase, pool, attempt, restarts, failovers, checkpoint"),
                (f"kubectl get pods -l tandem.dev/job={job} -o wide", "this attempt's pods and the failed ones"),
                (f"kubectl describe tj {job}", "status.faults and the Events"),
                ("kubectl get ap,nodes", "the pools and their simulated nodes"),
                (f"kubectl logs -f {job}-a1-0", "a rank's log (a2, a3: later attempts)")]
    width = max(len(command) for command, _ in commands)
    return [f"export KUBECONFIG={kubeconfig}"] + [f"{command:<{width}}  # {what}" for command, what in commands]


def _start_operator(kubeconfig: Path, log: Path) -> tuple[subprocess.Popen[bytes], Any]:
    handle = log.open("wb")
    # -P: the repository's operator/ folder must never shadow the standard library's `operator`.
    process = subprocess.Popen(
        [sys.executable, "-P", "-m", "tandem.operator", "--metrics-port", "0", "--health-port", "0"],
        env={**os.environ, "KUBECONFIG": str(kubeconfig)}, stdout=handle, stderr=subprocess.STDOUT,
        start_new_session=True)
    return process, handle


def run_demo(report: Path, fast: bool = False, timeout: float | None = None, in_place: bool = True) -> int:
    plan = FAST if fast else FULL
    problems = validate(plan)
    if problems:
        raise ValueError("; ".join(problems))
    report.mkdir(parents=True, exist_ok=True)
    # soft_wrap: a CI log keeps long lines whole instead of wrapping them at 80 columns.
    console = Console(highlight=False, soft_wrap=True)
    config = ClusterConfig.load(EXAMPLES / "cluster.yaml")
    started = time.time()
    faults = ", ".join(f"step {step} of attempt {attempt}" for attempt, step in plan.faults)
    console.print("tandem demo: a local cluster with simulated Ascend and NVIDIA nodes, the operator, a real job"
                  f" ({plan.steps} steps; HCCL faults injected at {faults})")
    with LocalCluster(config) as cluster:
        kubeconfig = cluster.write_kubeconfig(report.resolve() / "kubeconfig")
        job = demo_job(_load(EXAMPLES / "trainingjob.yaml")[0], plan, in_place)
        commands = kubectl_commands(kubeconfig, job["metadata"]["name"])
        console.print(f"API {cluster.url}; in another terminal, while it runs:")
        for line in commands:
            console.print(f"  {line}", markup=False)
        operator, log = _start_operator(kubeconfig, report / "operator.log")
        try:
            return _play(cluster, job, plan, report, console, commands, started, timeout or (300 if fast else 600))
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(operator.pid, signal.SIGTERM)
            try:
                operator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(operator.pid, signal.SIGKILL)
                operator.wait()
            log.close()


def _play(cluster: LocalCluster, job: dict[str, Any], plan: StoryPlan, report: Path, console: Console,
          commands: list[str], started: float, timeout: float) -> int:
    configuration = kubernetes.client.Configuration()
    configuration.host = cluster.url
    client = kubernetes.client.ApiClient(configuration)
    core, custom = kubernetes.client.CoreV1Api(client), kubernetes.client.CustomObjectsApi(client)
    name, namespace = job["metadata"]["name"], job["metadata"].get("namespace", "default")
    claim = ((job["spec"]["checkpoint"]["volume"].get("persistentVolumeClaim") or {}).get("claimName"))
    observer = Observer(cluster, client, namespace, name, claim, started).start()
    try:
        _apply(client, _load(EXAMPLES / "pools.yaml"))
        _apply(client, [job])
        finished = _follow(observer, core, plan, console, commands, timeout)
        time.sleep(0.5)  # the last log lines and watch events of the finished pods
        observer.read_logs()
        final = custom.get_namespaced_custom_object(GROUP, VERSION, namespace, "trainingjobs", name)
        events = client.sanitize_for_serialization(core.list_namespaced_event(namespace).items)
    finally:
        observer.stop()
    duration = time.time() - started
    story = observer.story
    story.status = final.get("status") or {}  # the API's word, not the last watch event
    (report / "trainingjob.yaml").write_text(yaml.safe_dump(final, sort_keys=False))
    points, resumed = analysis.loss_points(story), analysis.resumes(story)
    recovered = analysis.recoveries(story)
    checks = analysis.story_checks(story.status, list(job["spec"]["pools"]), plan.steps, points, resumed,
                                   in_place=job["spec"]["faultPolicy"]["inPlaceRestart"])
    if not finished:
        checks.insert(0, analysis.Check("finished in time", False, f"not Succeeded or Failed after {timeout:.0f}s"))
    write_report(report, story, final, events, checks, points, resumed, recovered, duration)
    _print_summary(console, checks, recovered, report, duration)
    return 0 if all(c.ok for c in checks) else 1


def _follow(observer: Observer, core: kubernetes.client.CoreV1Api, plan: StoryPlan, console: Console,
            commands: list[str], timeout: float) -> bool:
    """Show the story until the job finishes (True) or the timeout (False)."""
    nodes: list[dict[str, Any]] = []
    nodes_read = 0.0
    plain = PlainView(every=max(5, plan.steps // 10))
    deadline = time.monotonic() + timeout

    def frame() -> Any:
        nonlocal nodes, nodes_read
        if time.monotonic() - nodes_read > 1.0:
            with contextlib.suppress(Exception):  # the view may miss a refresh; the story does not depend on it
                nodes = core.api_client.sanitize_for_serialization(core.list_node().items)
            nodes_read = time.monotonic()
        observer.read_logs()
        with observer.lock:
            return snapshot(observer.story, nodes, plan.steps, time.time())

    def done() -> bool:
        return observer.story.status.get("phase") in FINISHED or time.monotonic() > deadline

    if console.is_terminal:
        with Live(render(frame(), commands), console=console, refresh_per_second=4) as live:
            while not done():
                time.sleep(0.25)
                live.update(render(frame(), commands))
    else:
        while not done():
            time.sleep(0.25)
            snap = frame()
            for line in plain.lines(snap, observer.take_events(), observer.story.started):
                print(line, flush=True)
        for line in plain.lines(frame(), observer.take_events(), observer.story.started):
            print(line, flush=True)
    return observer.story.status.get("phase") in FINISHED


def _print_summary(console: Console, checks: list[analysis.Check], recovered: list[analysis.Recovery],
                   report: Path, duration: float) -> None:
    ok = all(c.ok for c in checks)
    console.print(f"\n{'The story played out' if ok else 'The story did NOT play out'} in {duration:.0f}s:")
    for check in checks:
        console.print(f"  [{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}", markup=False)
    for rec in recovered:
        phases = ", ".join(f"{p.name} {p.seconds:.2f}s" if p.seconds is not None else f"{p.name} n/a"
                           for p in rec.phases)
        total = f"{rec.total:.1f}s" if rec.total is not None else "n/a"
        console.print(f"  fault {rec.fault + 1} ({rec.root_cause}; recorded {rec.fault_class}/{rec.reason})"
                      f" -> {rec.kind} to {rec.next_pool}: {total} to resume ({phases});"
                      f" {rec.steps_lost} step(s) lost", markup=False)
    console.print(f"Report: {report}/report.md, loss.png, timeline.md, report.json", markup=False)
