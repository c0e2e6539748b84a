"""What the local kubelet makes of a pod (pure): the rewritten environment and the statuses it writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest

from tandem.localcluster.containers import (
    StartError,
    argv,
    container_env,
    exit_code,
    expand,
    mounts,
    process_env,
    running_status,
    tail,
    terminated_status,
    termination_message,
)
from tandem.localcluster.volumes import volume_folders

STATE, POD_DIR = Path("/state"), Path("/state/pods/ml_p_u1")


def _pod(env: list[dict[str, Any]] | None = None, **container: Any) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "namespace": "ml", "uid": "u1", "labels": {"rank": "0"}},
            "spec": {"nodeName": "n1", "restartPolicy": "Never", "containers": [
                {"name": "main", "image": "img", "command": ["python"], "env": env or [], **container}],
                "volumes": [{"name": "ckpt", "persistentVolumeClaim": {"claimName": "shared"}},
                            {"name": "scratch", "emptyDir": {}}, {"name": "host", "hostPath": {"path": "/opt/x"}}]},
            "status": {"phase": "Pending"}}


def _env(pod: dict[str, Any], resolve: Any = lambda ns, sub, host: None) -> dict[str, str]:
    container = pod["spec"]["containers"][0]
    table = mounts(container, volume_folders(pod, STATE, POD_DIR), POD_DIR / "termination-log")
    return container_env(pod, container, "127.0.0.7", table, resolve, lambda addr, port: f"{addr}:{port}->4242")


def test_expand_follows_kubernetes() -> None:
    assert expand("$(A)-$$(A)-$(B)", {"A": "x"}) == "x-$(A)-$(B)"


def test_field_refs_and_values() -> None:
    env = _env(_pod([{"name": "A", "value": "a"},
                     {"name": "NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                     {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                     {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
                     {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
                     {"name": "RANK", "valueFrom": {"fieldRef": {"fieldPath": "metadata.labels['rank']"}}},
                     {"name": "B", "value": "$(A)/$(NAME)"}]))
    assert {k: env[k] for k in ("A", "NAME", "NS", "NODE", "IP", "RANK", "B")} == {
        "A": "a", "NAME": "p", "NS": "ml", "NODE": "n1", "IP": "127.0.0.7", "RANK": "0", "B": "a/p"}


def test_unsupported_env_sources_fail_the_start() -> None:
    with pytest.raises(StartError, match=r"valueFrom\.fieldRef"):
        _env(_pod([{"name": "S", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}]))


def test_volume_paths_become_local_folders() -> None:
    pod = _pod([{"name": "CKPT", "value": "/ckpt/run1"}, {"name": "EXACT", "value": "/ckpt"},
                {"name": "NEAR", "value": "/ckpt2/x"}, {"name": "DEEP", "value": "/ckpt/tmp/y"},
                {"name": "HOST", "value": "/host"}, {"name": "LOG", "value": "/dev/termination-log"}],
               volumeMounts=[{"name": "ckpt", "mountPath": "/ckpt/"}, {"name": "scratch", "mountPath": "/ckpt/tmp"},
                             {"name": "host", "mountPath": "/host", "subPath": "sub"}])
    env = _env(pod)
    assert env["CKPT"] == "/state/volumes/ml/shared/run1" and env["EXACT"] == "/state/volumes/ml/shared"
    assert env["NEAR"] == "/ckpt2/x"
    assert env["DEEP"] == "/state/pods/ml_p_u1/volumes/scratch/y"
    assert env["HOST"] == "/state/nodes/n1/hostpath/opt/x/sub"  # the node's filesystem, not this machine's
    assert env["LOG"] == env["TANDEM_TERMINATION_LOG"] == "/state/pods/ml_p_u1/termination-log"


def test_a_pod_sets_its_own_termination_log() -> None:
    env = _env(_pod([{"name": "TANDEM_TERMINATION_LOG", "value": "/tmp/mine"}]))
    assert env["TANDEM_TERMINATION_LOG"] == "/tmp/mine"


def test_a_mount_naming_no_volume_fails() -> None:
    with pytest.raises(StartError, match="names no volume"):
        _env(_pod(volumeMounts=[{"name": "nope", "mountPath": "/x"}]))


def test_pod_dns_names_resolve_and_master_port_follows_the_address() -> None:
    asked = []

    def resolve(namespace: str, subdomain: str, hostname: str) -> str | None:
        asked.append((namespace, subdomain, hostname))
        return "127.0.0.9"

    for name in ("job-a1-0.job.ml.svc", "job-a1-0.job.ml.svc.cluster.local"):
        env = _env(_pod([{"name": "MASTER_ADDR", "value": name}, {"name": "MASTER_PORT", "value": "29500"},
                         {"name": "SERVICE", "value": "job.ml.svc"}]), resolve)
        assert env["MASTER_ADDR"] == "127.0.0.9" and env["MASTER_PORT"] == "127.0.0.9:29500->4242"
        assert env["SERVICE"] == "job.ml.svc"  # a Service's own name is not a pod's
    assert asked == [("ml", "job", "job-a1-0")] * 2
    with pytest.raises(LookupError):
        _env(_pod([{"name": "MASTER_ADDR", "value": "job-a1-0.job.ml.svc"}]))


def test_process_env_puts_this_environment_first_and_keeps_host_secrets_out() -> None:
    env = process_env(_pod(), {"A": "1"}, {"PATH": "/usr/bin", "KUBECONFIG": "/secret", "HOME": "/root"})
    assert env["PATH"].endswith(":/usr/bin") and env["PATH"] != "/usr/bin"
    assert "KUBECONFIG" not in env and env["HOME"] == "/root" and env["HOSTNAME"] == "p" and env["A"] == "1"


def test_argv_needs_a_command_or_args_and_expands_variables() -> None:
    """Every image counts as one without an ENTRYPOINT (busybox-like): args alone are the process."""
    assert argv({"name": "c", "command": ["run", "$(X)"], "args": ["--y=$(X)"]}, {"X": "1"}) == ["run", "1", "--y=1"]
    assert argv({"name": "c", "args": ["sleep", "$(X)"]}, {"X": "1"}) == ["sleep", "1"]
    with pytest.raises(StartError, match="has no command"):
        argv({"name": "c"}, {})


def test_exit_codes_of_signals() -> None:
    assert exit_code(0) == (0, None) and exit_code(3) == (3, None)
    assert exit_code(-9) == (137, 9) and exit_code(-15) == (143, 15)


def test_termination_message_falls_back_to_the_log_only_on_error() -> None:
    assert termination_message("from file", "log", "FallbackToLogsOnError", 1) == "from file"
    assert termination_message("", "log", "FallbackToLogsOnError", 1) == "log"
    assert termination_message("", "log", "FallbackToLogsOnError", 0) == ""
    assert termination_message("", "log", "File", 1) == ""


def test_tail_is_the_smaller_of_80_lines_and_2048_bytes() -> None:
    short_lines = b"".join(b"%d\n" % i for i in range(200))
    assert tail(short_lines).splitlines() == [str(i) for i in range(120, 200)]
    long_lines = b"".join(b"x" * 99 + b"\n" for _ in range(40))
    assert len(tail(long_lines).encode()) == 2048


def test_statuses_are_valid_pods() -> None:
    pod = _pod()
    pod["status"]["conditions"] = [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "t0"}]
    running = {**pod, "status": running_status(pod, "127.0.0.7", "tandem-local://u1/1", "2026-01-01T00:00:00Z",
                                               "2026-01-01T00:00:00Z")}
    kubernetes_validate.validate(running, "1.32", strict=True)
    assert running["status"]["phase"] == "Running" and running["status"]["podIP"] == "127.0.0.7"
    assert [c["type"] for c in running["status"]["conditions"]][-1] == "PodScheduled"
    finished = terminated_status(running, code=137, signal_number=9, reason=None, message="m",
                                 container_id="tandem-local://u1/1", started_at="2026-01-01T00:00:00Z",
                                 pod_ip="127.0.0.7", now="2026-01-01T00:00:05Z")
    done = {**running, "status": finished}
    kubernetes_validate.validate(done, "1.32", strict=True)
    state = done["status"]["containerStatuses"][0]["state"]["terminated"]
    assert done["status"]["phase"] == "Failed" and state["reason"] == "Error" and state["signal"] == 9
    ready = next(c for c in done["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "False" and ready["reason"] == "PodCompleted"
