"""The operator started exactly as the chart deploys it (the image's entrypoint, the rendered Deployment's
arguments and environment) against the local cluster, with the chart's CRDs and custom objects
installed: jobs run, the probes and /metrics answer, replicas hand over through kopf peering, and every
request the operator sends is allowed by the rendered RBAC, which grants nothing the operator does not use."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import yaml
from chart_run import ChartRun, chart_run, http_text
from helm_support import REPO, Call, Obj, Rendered, allowed, code_calls, full_values, granted, render
from waiting import wait_for

# Under tandem-run, rank 1's first attempt dies with HCCL's EI0006 (vllm-project/vllm-ascend#486): the operator
# restarts both ranks in place, which moves the pods' attempt label (the chart must allow that patch). Rank 0 of a
# two-node first attempt waits for its peer until that restart stops it, as a rank in a collective would: had it
# finished on its own (it slept 3 s), a loaded VM's slower fault detection found its pod Succeeded, and the
# restart was a full one.
OK = ("import os, sys, time\n"
      "first = os.environ['TANDEM_ATTEMPT'] == '1' and os.environ['TANDEM_NODES'] == '2'\n"
      "if first and os.environ['TANDEM_NODE_RANK'] == '1':\n"
      "    print('EI0006: Getting socket times out. Reason: Remote Rank did not send the data in time.',"
      " file=sys.stderr)\n"
      "    sys.exit(1)\n"
      "time.sleep(300 if first else 1); print('rank', os.environ['TANDEM_NODE_RANK'], 'done')\n")
BAD = ("import os, time\n"
       "if os.environ['TANDEM_NODE_RANK'] == '1':\n"
       "    raise ValueError('boom on rank 1')\n"
       "time.sleep(120)\n")
EXAMPLE_POOLS = [yaml.safe_load((REPO / "examples" / name).read_text())
                 for name in ("pool-ascend-910b.yaml", "pool-nvidia-h20.yaml")]



@dataclass
class Outcome:
    """What one scenario observed; the tests below only read it."""

    rendered: Rendered
    calls: list[Call]
    agents: set[str]
    phases: dict[str, str | None] = field(default_factory=dict)
    pods: dict[str, list[str]] = field(default_factory=dict)
    probes: dict[str, int] = field(default_factory=dict)
    metrics: str = ""
    logs: list[str] = field(default_factory=list)
    workers: int = 0  # replicas that had reconciled a job before the hand-over


def scenario_values(name: str) -> dict[str, Any]:
    """default: the default namespace list; full: two namespaces and a KopfPeering in each; ha: two replicas
    watching every namespace (the cluster-wide RBAC and the ClusterKopfPeering)."""
    return {"default": {}, "full": full_values(),
            "ha": {"replicaCount": 2, "watchAllNamespaces": True, "watchNamespaces": []}}[name]


def play(run: ChartRun, values: Obj, name: str, tmp: Any) -> Outcome:
    rendered = render(values or None)
    run.install(rendered, [] if rendered.kind("AcceleratorPool") else EXAMPLE_POOLS)
    # The namespaces the Deployment watches; watching all of them, two that the chart names nowhere.
    namespaces = [a.removeprefix("--namespace=") for a in rendered.container()["args"]
                  if a.startswith("--namespace=")] or ["team-a", "team-b"]
    first, last = namespaces[0], namespaces[-1]
    for namespace in namespaces:
        run.ensure_namespace(namespace)
    # Two replicas where the hand-over is the point; one elsewhere (it still runs the chart's peering, if any).
    replicas = run.start_operators(values, 2 if name == "ha" else 1, tmp)
    outcome = Outcome(rendered, [], set())
    outcome.probes = {f"{kind}-{i}": r.probe(kind) for i, r in enumerate(replicas)
                      for kind in ("livenessProbe", "readinessProbe")}
    run.submit(first, "ok", OK, launcher=["tandem-run", "--"])
    run.submit(last, "bad", BAD)
    run.wait_phase(first, "ok", "Succeeded")
    run.wait_phase(last, "bad", "Failed")
    wait_for(lambda: run.pods(last, "bad") == ["bad-a1-1"], timeout=30, interval=0.1, what="the gang teardown of bad")
    outcome.pods = {"ok": run.pods(first, "ok"), "bad": run.pods(last, "bad")}
    if name == "ha":
        # The replica that works has reconciled the jobs; stopping it hands the next job to the other.
        workers = [r for r in replicas if "job_event" in r.logs()]
        outcome.workers = len(workers)
        workers[0].stop()
        run.submit(first, "after", OK, nodes=1)
        run.wait_phase(first, "after", "Succeeded")
    outcome.phases = {job: run.phase(ns, job) for job, ns in (("ok", first), ("bad", last))} | (
        {"after": run.phase(first, "after")} if name == "ha" else {})
    live = next(r for r in replicas if r.process.poll() is None)
    outcome.metrics = http_text(f"http://127.0.0.1:{live.port('metrics')}/metrics")
    for replica in replicas:
        replica.stop()  # kopf's last peering patch is part of what the RBAC must allow
    outcome.calls, outcome.agents = run.operator_calls(), run.agents()
    outcome.logs = [r.logs() for r in replicas]
    return outcome


SCENARIOS = ["default", "full", "ha"]


@pytest.fixture(scope="module", params=SCENARIOS)
def outcome(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outcome]:
    tmp = tmp_path_factory.mktemp(request.param)
    with chart_run(tmp) as run:
        yield play(run, scenario_values(request.param), request.param, tmp)


def mode(outcome: Outcome) -> str:
    return "namespaced" if any(a.startswith("--namespace=") for a in outcome.rendered.container()["args"]) \
        else "clusterwide"


def test_jobs_run_to_their_end(outcome: Outcome) -> None:
    assert outcome.phases["ok"] == "Succeeded" and outcome.phases["bad"] == "Failed"
    assert outcome.pods == {"ok": ["ok-a1-0", "ok-a1-1"], "bad": ["bad-a1-1"]}  # ok restarted in its pods


def test_probes_and_metrics_answer(outcome: Outcome) -> None:
    assert set(outcome.probes.values()) == {200}
    assert "tandem_reconcile_seconds_count" in outcome.metrics


def test_replicas_share_the_work_through_kopf_peering(outcome: Outcome) -> None:
    if len(outcome.logs) < 2:
        # One replica (standalone, or alone in its peering): it never waits for anyone.
        assert not any("Pausing operations" in log for log in outcome.logs)
        assert outcome.phases["ok"] == "Succeeded"
        return
    # Exactly one replica worked until it stopped; the other stood by (kopf pauses a replica that starts
    # after a higher-priority peer silently: it never resumed), then took over.
    assert outcome.workers == 1
    assert outcome.phases["after"] == "Succeeded"
    assert sum("job_event" in log for log in outcome.logs) == 2  # the stand-by ran the last job


def test_the_operator_logged_no_traceback(outcome: Outcome) -> None:
    # kopf 1.45 trips over an assertion in its own stream-cancel callback when a replica pauses for a peer
    # (kopf/_cogs/clients/api.py, request_cancel_callback); asyncio logs it and kopf carries on.
    for log in outcome.logs:
        tracebacks = [line for line in log.splitlines() if "Traceback" in line]
        assert all("request_cancel_callback" in line for line in tracebacks), tracebacks[:1]


def test_every_request_the_operator_sends_is_allowed_by_the_rendered_rbac(outcome: Outcome) -> None:
    assert {"kopf", "OpenAPI-Generator"} <= outcome.agents
    denied = {Call(c.verb, c.group, c.resource, c.namespace) for c in outcome.calls if not allowed(outcome.rendered, c)}
    assert denied == set(), sorted(map(str, denied))


def test_the_rbac_grants_nothing_the_operator_does_not_use(outcome: Outcome) -> None:
    """Least privilege: each granted (verb, resource, namespace) is requested by the operator in this run
    or called in operator/kube.py / watched by operator/handlers.py."""
    from_code = {(c.verb, c.group, c.resource) for c in code_calls(outcome.rendered)}
    used = {(c.verb, c.group, c.resource, c.namespace) for c in outcome.calls}
    unused = sorted(
        f"{verb} {group or 'core'}/{resource} {scope or 'cluster-wide'}"
        for verb, group, resource, scope in granted(outcome.rendered)
        if (verb, group, resource) not in from_code
        and not any((verb, group, resource) == u[:3] and (scope is None or u[3] == scope) for u in used))
    assert not unused, unused


def test_static_and_dynamic_derivations_agree(outcome: Outcome) -> None:
    """Every API call in the operator's code shows up in the requests it sent here (so the run is a fair
    sample); the ones only reached on paths this run does not take are named."""
    sent = {(c.verb, c.group, c.resource) for c in outcome.calls}
    never = sorted(c.where.rsplit(" ", 1)[-1] for c in code_calls(outcome.rendered)
                   if (c.verb, c.group, c.resource) not in sent)
    # Reached only when a pod create answers 409 and the pod of that name may be another job's.
    assert never == ["read_namespaced_pod"], never
