"""How the operator scales: N TrainingJobs of M pods created at once against the local cluster
(scheduler and kubelet on) of `--nodes` nodes whose pods are simulated (no process: they run until deleted,
localcluster/simulated.py), so that the operator, not thousands of local processes, sets the pace.

Also the recovery latency: one job faulting 100 times with backoff 0, fault seen -> the next
attempt's pods created -> Running (p50/p99); and under load (`--faulty K`): K of the N jobs fault (an HCCL
socket timeout in their simulated pods' termination message) `--fault-every` seconds into each attempt, from the
start; the faults after every job is up, during `--load-seconds`, are measured the same way while the other jobs
keep running.

Measured per N: time until every pod exists and until every job is Running, reconcile latency
p50/p99 from the operator's own `tandem_reconcile_seconds`, the operator's API requests (reads and writes, watches
apart) per reconcile, counted by the local API, and the operator's peak RSS. The baseline, in the same run: a plain
client creating the same N*M pods straight through the API, one after another (what the operator's pod creation
costs at the least): the same Services and pods, built by the operator's own podspec.py.

    .venv/bin/python -P bench/operator_scale.py --nodes 1000 --jobs 500 --pods 8 --recovery 0
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import kubernetes

from tandem.localcluster.cluster import LocalCluster
from tandem.localcluster.nodes import ClusterConfig, SimulatedPool
from tandem.localcluster.simulated import PodScript
from tandem.operator.api import AcceleratorPool, JobPhase, TrainingJob
from tandem.operator.podspec import attempt_pod, headless_service

GROUP, VERSION = "tandem.dev", "v1alpha1"
NS = "default"
POOL = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "AcceleratorPool", "metadata": {"name": "bench"},
        "spec": {"accelerator": "npu", "deviceResource": "huawei.com/Ascend910", "devicesPerNode": 1,
                 "nodeSelector": {"tandem.dev/pool": "bench"}, "image": "example.org/tandem-runtime:npu"}}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _job(name: str, pods: int) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": name},
            "spec": {"nodes": pods, "pools": ["bench"], "container": {"command": ["sleep", "600"]},
                     "checkpoint": {"volume": {"emptyDir": {}}}}}


HCCL = json.dumps({"class": "interconnect", "reason": "HcclSocketTimeout",
                   "message": "EI0006: Getting socket times out", "checkpointStep": 10})


def _faulty_job(name: str, pods: int, every: float) -> dict[str, Any]:
    """A job whose simulated pods all end `every` seconds after they start, with an HCCL fault; backoff 0."""
    job = _job(name, pods)
    job["spec"]["podTemplate"] = {"metadata": {"annotations": {
        "sim.tandem.dev/run-seconds": str(every), "sim.tandem.dev/exit-code": "3",
        "sim.tandem.dev/termination-message": HCCL}}}
    job["spec"]["faultPolicy"] = {"maxRestarts": 1000, "backoffSeconds": 0, "maxBackoffSeconds": 0,
                                  "failoverAfterFaults": 1000, "excludeFaultyNodes": False}
    return job


class Recoveries:
    """Per fault of the faulty jobs, seen through a pod watch (as the operator sees it): the first pod of an attempt
    that failed, then every pod of the next attempt created, and Running."""

    def __init__(self, pods: int) -> None:
        self.pods = pods
        self.failed: dict[tuple[str, int], float] = {}
        self.created: dict[tuple[str, int], set[str]] = {}
        self.running: dict[tuple[str, int], set[str]] = {}
        self.created_at: dict[tuple[str, int], float] = {}
        self.running_at: dict[tuple[str, int], float] = {}

    def follow(self, core: Any, jobs: set[str], stop: threading.Event) -> threading.Thread:
        """A thread that watches the pods of `jobs` until `stop` is set."""

        def run() -> None:
            while not stop.is_set():
                watch = kubernetes.watch.Watch()
                for event in watch.stream(core.list_namespaced_pod, NS, label_selector="tandem.dev/job",
                                          timeout_seconds=5):
                    pod = event["object"]
                    if (pod.metadata.labels or {}).get("tandem.dev/job") in jobs:
                        self.see(pod, time.monotonic())
                    if stop.is_set():
                        watch.stop()

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        return thread

    def see(self, pod: Any, now: float) -> None:
        labels = pod.metadata.labels or {}
        key = (labels.get("tandem.dev/job", ""), int(labels.get("tandem.dev/attempt", "0")))
        self.created.setdefault(key, set()).add(pod.metadata.name)
        if len(self.created[key]) == self.pods:
            self.created_at.setdefault(key, now)
        if pod.status.phase == "Running":
            self.running.setdefault(key, set()).add(pod.metadata.name)
            if len(self.running[key]) == self.pods:
                self.running_at.setdefault(key, now)
        if pod.status.phase == "Failed":
            self.failed.setdefault(key, now)

    def latencies(self, after: float = 0.0, before: float = math.inf) -> tuple[list[float], list[float]]:
        """(fault -> next attempt's pods created, fault -> next attempt Running), sorted, for every fault seen
        between `after` and `before` whose next attempt got that far."""
        nxt = {(job, attempt): (job, attempt + 1) for (job, attempt), at in self.failed.items() if after <= at < before}
        created = sorted(self.created_at[n] - self.failed[k] for k, n in nxt.items() if n in self.created_at)
        running = sorted(self.running_at[n] - self.failed[k] for k, n in nxt.items() if n in self.running_at)
        return created, running


def _quantile(buckets: list[tuple[float, float]], q: float) -> float:
    """Prometheus' histogram_quantile: linear interpolation inside the bucket holding the rank."""
    total = buckets[-1][1]
    rank, lower, below = q * total, 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            return lower + (bound - lower) * ((rank - below) / max(count - below, 1e-9))
        lower, below = bound, count
    return lower


def _buckets(metrics_port: int, name: str) -> list[tuple[float, float]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as response:
        text = response.read().decode()
    buckets = []
    for line in text.splitlines():
        if line.startswith(name):
            bound = line.split('le="')[1].split('"')[0]
            buckets.append((math.inf if bound == "+Inf" else float(bound), float(line.split()[-1])))
    return sorted(buckets)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/<pid>/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _progress(label: str, done: int, total: int, started: float) -> None:
    elapsed = time.monotonic() - started
    rate = done / elapsed if elapsed > 0 else 0.0
    eta = (total - done) / rate if rate > 0 else float("inf")
    print(f"  {label}: {done}/{total}  {rate:7.1f}/s  elapsed {elapsed:6.1f}s  eta {eta:6.1f}s", flush=True)


BENCH_AGENT = "tandem-bench"  # the bench's own client: its requests are not the operator's


def _cluster(jobs: int, pods: int, nodes: int = 0, simulated: bool = True) -> LocalCluster:
    """`nodes` simulated nodes (0: just enough, 8 pods a node) whose pods run until deleted."""
    script = PodScript(start_seconds=0.2) if simulated else None
    return LocalCluster(ClusterConfig(pools=[SimulatedPool(
        name="bench", accelerator="npu", nodes=nodes or math.ceil(jobs * pods / 8), devices_per_node=8, cpu="512",
        memory="4096Gi", simulated_pods=script)]))


class Requests:
    """The operator's API requests as the local API saw them: reads and writes, watches apart."""

    def __init__(self) -> None:
        self.reads = self.writes = self.watches = 0
        self.kinds: collections.Counter[str] = collections.Counter()  # writes by what they write

    def __call__(self, method: str, path: str, query: dict[str, str], headers: dict[str, str]) -> None:
        agent = next((v for k, v in headers.items() if k.lower() == "user-agent"), "")
        if agent.startswith(BENCH_AGENT):
            return
        if query.get("watch") in ("true", "1"):
            self.watches += 1
        elif method == "GET":
            self.reads += 1
        else:
            self.writes += 1
            parts = path.rstrip("/").split("/")
            what = "status" if parts[-1] == "status" else (parts[-1] if method == "POST" else parts[-2])
            self.kinds[f"{method} {what}"] += 1


def _stop(operator: subprocess.Popen[bytes]) -> None:
    os.killpg(operator.pid, signal.SIGTERM)
    try:
        operator.wait(timeout=30)
    except subprocess.TimeoutExpired:
        print("  the operator did not stop within 30 s of SIGTERM: killed", flush=True)
        os.killpg(operator.pid, signal.SIGKILL)
        operator.wait(timeout=30)


def _apis(cluster: LocalCluster) -> tuple[kubernetes.client.CustomObjectsApi, kubernetes.client.CoreV1Api]:
    configuration = kubernetes.client.Configuration()
    configuration.host = cluster.url
    client = kubernetes.client.ApiClient(configuration)
    client.user_agent = BENCH_AGENT
    return kubernetes.client.CustomObjectsApi(client), kubernetes.client.CoreV1Api(client)


def baseline(jobs: int, pods: int, nodes: int) -> float:
    """Seconds for one client to create the same objects the operator creates (each job's headless Service and
    its pods, the manifests of operator/podspec.py for attempt 1), one after another, on an identical cluster."""
    with _cluster(jobs, pods, nodes) as cluster:
        custom, core = _apis(cluster)
        pool = AcceleratorPool.model_validate(custom.create_cluster_custom_object(
            GROUP, VERSION, "acceleratorpools", POOL))
        manifests = []
        for index in range(jobs):
            job = TrainingJob.model_validate({**_job(f"job-{index}", pods), "metadata": {
                "name": f"job-{index}", "namespace": NS, "uid": f"uid-{index}", "generation": 1}})
            manifests.append(headless_service(job))
            manifests.extend(attempt_pod(job, pool, 1, rank) for rank in range(pods))
        started = time.monotonic()
        for manifest in manifests:
            if manifest["kind"] == "Pod":
                core.create_namespaced_pod(NS, manifest, _preload_content=False)
            else:
                core.create_namespaced_service(NS, manifest, _preload_content=False)
        return time.monotonic() - started


def _watch(url: str, path: str, stop: threading.Event) -> Any:
    """The events of a watch on `path`, as dicts, read as raw JSON lines (the bench's own load on the API stays
    small: no list of every pod each second), again after each server timeout, until `stop`."""
    while not stop.is_set():
        request = urllib.request.Request(f"{url}{path}?watch=1&timeoutSeconds=30",
                                         headers={"User-Agent": BENCH_AGENT})
        with urllib.request.urlopen(request, timeout=60) as response:
            for line in response:
                if stop.is_set():
                    return
                yield json.loads(line)


class Progress:
    """From two watches: when the last of `pods` pods exists, and when every one of `jobs` jobs is up (Running,
    or, for a faulty job, past its first attempt: it ran and faults on its schedule)."""

    def __init__(self, url: str, pods: int, jobs: int, stop: threading.Event) -> None:
        self.pods: set[str] = set()
        self.jobs: dict[str, bool] = {}
        self.pods_done, self.jobs_done = threading.Event(), threading.Event()
        self.pods_at = self.jobs_at = 0.0
        self._want_pods, self._want_jobs = pods, jobs
        for path, see in ((f"/api/v1/namespaces/{NS}/pods", self._pod),
                          (f"/apis/{GROUP}/{VERSION}/namespaces/{NS}/trainingjobs", self._job)):
            threading.Thread(target=self._follow, args=(url, path, see, stop), daemon=True).start()

    def up(self) -> int:
        return sum(self.jobs.values())

    @staticmethod
    def _follow(url: str, path: str, see: Any, stop: threading.Event) -> None:
        for event in _watch(url, path, stop):
            see(event["object"])

    def _pod(self, pod: dict[str, Any]) -> None:
        self.pods.add(pod["metadata"]["name"])
        if len(self.pods) >= self._want_pods and not self.pods_done.is_set():
            self.pods_at = time.monotonic()
            self.pods_done.set()

    def _job(self, job: dict[str, Any]) -> None:
        status = job.get("status") or {}
        self.jobs[job["metadata"]["name"]] = (status.get("phase") == JobPhase.RUNNING.value
                                              or status.get("attempt", 0) > 1)
        if len(self.jobs) >= self._want_jobs and all(self.jobs.values()) and not self.jobs_done.is_set():
            self.jobs_at = time.monotonic()
            self.jobs_done.set()


def _reconciles(metrics_port: int) -> int:
    return int(_buckets(metrics_port, "tandem_reconcile_seconds_bucket")[-1][1])


def measure(jobs: int, pods: int, nodes: int, log_dir: Path, faulty: int = 0, fault_every: float = 20.0,
            load_seconds: float = 0.0) -> dict[str, Any]:
    with _cluster(jobs, pods, nodes) as cluster:
        requests = Requests()
        cluster.api.on_request = requests
        operator, metrics_port = _operator(cluster, log_dir, str(jobs))
        try:
            custom, core = _apis(cluster)
            custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools", POOL)
            started, cpu = time.monotonic(), (_cpu_seconds(operator.pid), _cpu_seconds(os.getpid()))
            recoveries, stop = Recoveries(pods), threading.Event()
            watcher = recoveries.follow(core, {f"job-{i}" for i in range(faulty)}, stop) if faulty else None
            for index in range(jobs):
                manifest = _faulty_job(f"job-{index}", pods, fault_every) if index < faulty else _job(
                    f"job-{index}", pods)
                custom.create_namespaced_custom_object(GROUP, VERSION, NS, "trainingjobs", manifest)
            seen = Progress(cluster.url, jobs * pods, jobs, stop)
            all_pods = all_running = None
            deadline = started + 1800
            while time.monotonic() < deadline and all_running is None:
                if all_pods is None and seen.pods_done.is_set():
                    all_pods = seen.pods_at - started
                if seen.jobs_done.wait(1.0):
                    all_running = seen.jobs_at - started
                _progress(f"N={jobs} pods {len(seen.pods)}/{jobs * pods}, jobs up", seen.up(), jobs, started)
            if all_pods is None and seen.pods_done.is_set():
                all_pods = seen.pods_at - started
            up, up_reads, up_reconciles = time.monotonic(), requests.reads, _reconciles(metrics_port)
            setup_cpu = (_cpu_seconds(operator.pid) - cpu[0], _cpu_seconds(os.getpid()) - cpu[1])
            setup_writes = {kind: round(count / jobs, 2) for kind, count in requests.kinds.most_common()}
            up_buckets = _buckets(metrics_port, "tandem_reconcile_seconds_bucket")
            time.sleep(load_seconds)  # every job up; the faulty ones fault on their schedule
            window_reads, window_reconciles = requests.reads - up_reads, _reconciles(metrics_port) - up_reconciles
            window = [(bound, count - before) for (bound, count), (_, before) in zip(
                _buckets(metrics_port, "tandem_reconcile_seconds_bucket"), up_buckets, strict=True)]
            stop.set()
            if watcher is not None:
                watcher.join(timeout=30)
            created, running_after = recoveries.latencies(after=up, before=up + load_seconds - fault_every)
            load = {"load_faults": len(created),
                    "load_created_p50_s": statistics.median(created) if created else None,
                    "load_created_p99_s": _p(created, 0.99) if created else None,
                    "load_running_p50_s": statistics.median(running_after) if running_after else None,
                    "load_running_p99_s": _p(running_after, 0.99) if running_after else None}
            buckets = _buckets(metrics_port, "tandem_reconcile_seconds_bucket")
            reconciles = int(buckets[-1][1])
            return {
                **load, "setup_operator_cpu_s": setup_cpu[0], "setup_cluster_cpu_s": setup_cpu[1],
                "setup_writes_per_job": setup_writes, "window_s": load_seconds,
                "window_p50_ms": 1000 * _quantile(window, 0.5),
                "window_p99_ms": 1000 * _quantile(window, 0.99), "window_reads": window_reads,
                "window_reconciles": window_reconciles,
                "jobs": jobs, "pods_per_job": pods, "nodes": len(core.list_node().items), "all_pods_s": all_pods,
                "all_running_s": all_running, "reconcile_p50_ms": 1000 * _quantile(buckets, 0.5),
                "reconcile_p99_ms": 1000 * _quantile(buckets, 0.99), "reconciles": reconciles,
                "reads_per_reconcile": requests.reads / max(reconciles, 1),
                "writes_per_reconcile": requests.writes / max(reconciles, 1),
                "operator_peak_rss_mib": _peak_rss_mib(operator.pid),
            }
        finally:
            _stop(operator)


FAILING_RANK = textwrap.dedent("""
    import json, os, sys, time
    if os.environ["TANDEM_NODE_RANK"] == "1":
        time.sleep(0.3)
        with open(os.environ["TANDEM_TERMINATION_LOG"], "w") as out:
            json.dump({"class": "interconnect", "reason": "HcclSocketTimeout", "message": "EI0006"}, out)
        sys.exit(3)
    time.sleep(600)
""")


def _operator(cluster: LocalCluster, log_dir: Path, label: str) -> tuple[subprocess.Popen[bytes], int]:
    kubeconfig = cluster.write_kubeconfig(log_dir / f"kubeconfig-{label}")
    metrics_port = _free_port()
    operator = subprocess.Popen(
        [str(Path(sys.executable).with_name("tandem")), "operator", "--metrics-port", str(metrics_port),
         "--health-port", str(_free_port())],
        env={**os.environ, "KUBECONFIG": str(kubeconfig), "TANDEM_LOG_LEVEL": "WARNING"},
        stdout=(log_dir / f"operator-{label}.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True)
    return operator, metrics_port


def recovery(faults: int, log_dir: Path) -> dict[str, Any]:
    """One 2-pod job whose rank 1 fails 0.3 s into every attempt, backoff 0: per fault, the time from
    the failed pod seen (through a watch, as the operator sees it) to every pod of the next attempt
    created, and to every pod Running."""
    with _cluster(1, 2, nodes=2, simulated=False) as cluster:  # one pod per node: the gang needs two
        operator, metrics_port = _operator(cluster, log_dir, "recovery")
        try:
            custom, core = _apis(cluster)
            custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools", POOL)
            job = _job("flaky", 2)
            job["spec"]["container"]["command"] = [sys.executable, "-P", "-c", FAILING_RANK]
            job["spec"]["faultPolicy"] = {"maxRestarts": faults + 5, "backoffSeconds": 0, "maxBackoffSeconds": 0,
                                          "failoverAfterFaults": faults + 5, "excludeFaultyNodes": False}
            failed_at: dict[int, float] = {}
            created: dict[int, set[str]] = {}
            running: dict[int, set[str]] = {}
            created_at: dict[int, float] = {}
            running_at: dict[int, float] = {}
            started = time.monotonic()
            custom.create_namespaced_custom_object(GROUP, VERSION, NS, "trainingjobs", job)
            watch = kubernetes.watch.Watch()
            for event in watch.stream(core.list_namespaced_pod, NS, timeout_seconds=3600):
                pod, now = event["object"], time.monotonic()
                attempt = int(pod.metadata.labels["tandem.dev/attempt"])
                created.setdefault(attempt, set()).add(pod.metadata.name)
                if len(created[attempt]) == 2:
                    created_at.setdefault(attempt, now)
                if pod.status.phase == "Running":
                    running.setdefault(attempt, set()).add(pod.metadata.name)
                    if len(running[attempt]) == 2:
                        running_at.setdefault(attempt, now)
                if pod.status.phase == "Failed":
                    failed_at.setdefault(attempt, now)
                done = len([a for a in failed_at if a + 1 in running_at])
                if done and done % 10 == 0 and event["type"] == "MODIFIED" and len(running_at) == done + 1:
                    _progress("faults recovered", done, faults, started)
                if done >= faults:
                    watch.stop()
            to_created = sorted(created_at[a + 1] - failed_at[a] for a in failed_at if a + 1 in created_at)
            to_running = sorted(running_at[a + 1] - failed_at[a] for a in failed_at if a + 1 in running_at)
            buckets = _buckets(metrics_port, "tandem_recovery_seconds_bucket")
            return {"faults": len(to_running),
                    "created_p50_s": statistics.median(to_created), "created_p99_s": _p(to_created, 0.99),
                    "running_p50_s": statistics.median(to_running), "running_p99_s": _p(to_running, 0.99),
                    "operator_recovery_p50_s": _quantile(buckets, 0.5),
                    "operator_recovery_p99_s": _quantile(buckets, 0.99)}
        finally:
            _stop(operator)


def _p(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", default="10,100,500", help="comma-separated N")
    parser.add_argument("--pods", type=int, default=8, help="M, pods per job")
    parser.add_argument("--nodes", type=int, default=0, help="simulated nodes (0: 8 pods a node)")
    parser.add_argument("--log-dir", default="/tmp/tandem-bench", help="operator logs and kubeconfigs")
    parser.add_argument("--recovery", type=int, default=100, help="faults for the recovery-latency run (0: skip)")
    parser.add_argument("--faulty", type=int, default=0,
                        help="K of the N jobs fault on a schedule (recovery under load)")
    parser.add_argument("--fault-every", type=float, default=20.0, help="seconds into each attempt a faulty job faults")
    parser.add_argument("--load-seconds", type=float, default=60.0,
                        help="once every job is up: how long to measure (reads per reconcile, faults under load)")
    args = parser.parse_args()
    # A bench stopped with SIGTERM (timeout, Ctrl-C in CI) still stops its operator and cluster.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    log_dir = Path(args.log_dir)
    log_dir.mkdir(parents=True, exist_ok=True)
    print(f"machine: {platform.node()} {os.cpu_count()} cpus, python {platform.python_version()}")
    if args.recovery:
        print(f"recovery latency over {args.recovery} faults (backoff 0)", flush=True)
        result = recovery(args.recovery, log_dir)
        print(json.dumps(result), flush=True)
        print("\n| faults | fault -> next pods created p50 / p99 (s) | fault -> all Running p50 / p99 (s) "
              "| operator's tandem_recovery_seconds p50 / p99 (s) |")
        print("|---|---|---|---|")
        print(f"| {result['faults']} | {result['created_p50_s']:.2f} / {result['created_p99_s']:.2f} "
              f"| {result['running_p50_s']:.2f} / {result['running_p99_s']:.2f} "
              f"| {result['operator_recovery_p50_s']:.2f} / {result['operator_recovery_p99_s']:.2f} |")
    rows = []
    for jobs in (int(n) for n in args.jobs.split(",") if n):
        print(f"N={jobs} M={args.pods}: baseline (a client creating {jobs * args.pods} pods directly)", flush=True)
        direct = baseline(jobs, args.pods, args.nodes)
        print(f"N={jobs} M={args.pods}: the operator", flush=True)
        row = measure(jobs, args.pods, args.nodes, log_dir, args.faulty, args.fault_every, args.load_seconds)
        row["direct_create_s"] = direct
        row["ratio_all_pods_vs_direct"] = (row["all_pods_s"] or float("nan")) / direct
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("\n| nodes | N jobs | M pods | direct create (s) | all pods exist (s) | ratio | all Running (s) "
          "| reconcile p50 (ms) | p99 (ms) | reconciles | reads / writes per reconcile | operator peak RSS (MiB) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['nodes']} | {r['jobs']} | {r['pods_per_job']} | {r['direct_create_s']:.1f} "
              f"| {_s(r['all_pods_s'])} | {r['ratio_all_pods_vs_direct']:.2f} | {_s(r['all_running_s'])} "
              f"| {r['reconcile_p50_ms']:.1f} | {r['reconcile_p99_ms']:.1f} | {r['reconciles']} "
              f"| {r['reads_per_reconcile']:.1f} / {r['writes_per_reconcile']:.1f} "
              f"| {r['operator_peak_rss_mib']:.0f} |")
    print("\n| nodes | N jobs | until all up (s) | operator CPU (s) | local cluster + bench CPU (s) "
          "| the operator's writes per job |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        writes = ", ".join(f"{kind} {count:g}" for kind, count in r["setup_writes_per_job"].items())
        print(f"| {r['nodes']} | {r['jobs']} | {_s(r['all_running_s'])} | {r['setup_operator_cpu_s']:.1f} "
              f"| {r['setup_cluster_cpu_s']:.1f} | {writes} |")
    print("\n| nodes | N jobs | once all up, for (s) | reconciles | p50 / p99 (ms) | API reads per reconcile "
          "| faulty jobs' faults | fault -> next pods created p50 / p99 (s) | fault -> Running p50 / p99 (s) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['nodes']} | {r['jobs']} | {r['window_s']:.0f} | {r['window_reconciles']} "
              f"| {r['window_p50_ms']:.1f} / {r['window_p99_ms']:.1f} "
              f"| {r['window_reads'] / max(r['window_reconciles'], 1):.2f} | {r.get('load_faults', 0)} "
              f"| {_s(r.get('load_created_p50_s'), 2)} / {_s(r.get('load_created_p99_s'), 2)} "
              f"| {_s(r.get('load_running_p50_s'), 2)} / {_s(r.get('load_running_p99_s'), 2)} |")


def _s(value: float | None, digits: int = 1) -> str:
    return "not reached" if value is None else f"{value:.{digits}f}"


if __name__ == "__main__":
    main()
