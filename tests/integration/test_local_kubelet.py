"""The local cluster's scheduler and kubelet: pods created through the API run as local processes."""

from __future__ import annotations

import json
import signal
from collections.abc import Callable
from typing import Any

import kubernetes
import kubernetes_validate
from processes import pod_pid, process_alive

from tandem.localcluster.cluster import LocalCluster

NS = "default"


def _pod(name: str, code: str, *, env: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    container = {"name": "main", "image": "tandem-runtime:test", "command": ["python", "-c", code],
                 "terminationMessagePolicy": "FallbackToLogsOnError",
                 "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
    container.update(spec.pop("container", {}))
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "labels": {"test": "kubelet"}},
            "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 5, "containers": [container], **spec}}


def _get(core: kubernetes.client.CoreV1Api, name: str) -> dict[str, Any]:
    return json.loads(core.read_namespaced_pod(name, NS, _preload_content=False).data)


def _finished(core: kubernetes.client.CoreV1Api, name: str, wait_for: Callable[..., Any]) -> dict[str, Any]:
    pod = wait_for(lambda: (p := _get(core, name))["status"].get("phase") in ("Succeeded", "Failed") and p,
                   timeout=30, what=f"pod {name} to finish")
    kubernetes_validate.validate(pod, "1.32", strict=True)  # what the kubelet wrote is a valid Pod
    return pod


def _terminated(pod: dict[str, Any]) -> dict[str, Any]:
    return pod["status"]["containerStatuses"][0]["state"]["terminated"]


def _gone(core: kubernetes.client.CoreV1Api, name: str) -> bool:
    try:
        core.read_namespaced_pod(name, NS)
    except kubernetes.client.ApiException as exc:
        return exc.status == 404
    return False




def test_pod_runs_with_its_env_and_a_claim_folder(cluster: Any, core: Any, wait_for: Callable[..., Any]) -> None:
    code = ("import json, os, shutil; keys = ['GREETING', 'POD', 'NODE', 'IP', 'OUT', 'TANDEM_TERMINATION_LOG'];"
            "open(os.environ['OUT'], 'w').write(json.dumps({'CWD': os.getcwd(), **{k: os.environ[k] for k in keys}}));"
            "print('ran', os.environ['POD'], 'with', shutil.which('tandem-train'))")
    pod = _pod("env-pod", code, env={"GREETING": "hello $(POD)", "OUT": "/data/run/out.json"},
               volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}],
               container={"volumeMounts": [{"name": "data", "mountPath": "/data"}], "workingDir": "/data/work"})
    # Fields first: $(POD) expands only names defined earlier in the list, as in Kubernetes.
    pod["spec"]["containers"][0]["env"][0:0] = [
        {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
        {"name": "IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
    ]
    (cluster.kubelet.claim_dir(NS, "shared") / "run").mkdir(parents=True, exist_ok=True)
    core.create_namespaced_pod(NS, pod)
    done = _finished(core, "env-pod", wait_for)
    assert done["status"]["phase"] == "Succeeded", done["status"]
    assert _terminated(done)["exitCode"] == 0 and _terminated(done)["reason"] == "Completed"
    seen = json.loads((cluster.kubelet.claim_dir(NS, "shared") / "run" / "out.json").read_text())
    assert seen["GREETING"] == "hello env-pod" and seen["POD"] == "env-pod"
    assert seen["CWD"] == str(cluster.kubelet.claim_dir(NS, "shared") / "work")
    assert seen["NODE"] == done["spec"]["nodeName"] and seen["IP"] == done["status"]["podIP"]
    assert seen["IP"].startswith("127.0.") and seen["IP"] != "127.0.0.1"
    assert seen["TANDEM_TERMINATION_LOG"] == str(cluster.kubelet.pod_dir(NS, "env-pod") / "termination-log")
    conditions = {c["type"]: c["status"] for c in done["status"]["conditions"]}
    assert conditions["PodScheduled"] == "True" and conditions["Ready"] == "False"
    assert "/.venv/bin/tandem-train" in cluster.kubelet.log_path(NS, "env-pod").read_text()


def test_kubectl_logs_shows_the_output(cluster: Any, core: Any, kubectl: Any, wait_for: Callable[..., Any]) -> None:
    core.create_namespaced_pod(NS, _pod("log-pod", "print('line one'); print('line two')"))
    _finished(core, "log-pod", wait_for)
    assert kubectl("logs", "log-pod").stdout == "line one\nline two\n"


def test_exit_code_and_termination_message(core: Any, wait_for: Callable[..., Any]) -> None:
    code = ("import os, sys; open(os.environ['TANDEM_TERMINATION_LOG'], 'w').write('{\"class\": \"user\"}');"
            "print('noise'); sys.exit(3)")
    core.create_namespaced_pod(NS, _pod("exit-pod", code))
    done = _finished(core, "exit-pod", wait_for)
    assert done["status"]["phase"] == "Failed"
    terminated = _terminated(done)
    assert terminated["exitCode"] == 3 and terminated["reason"] == "Error"
    assert terminated["message"] == '{"class": "user"}'


def test_empty_termination_file_falls_back_to_the_log_tail(core: Any, wait_for: Callable[..., Any]) -> None:
    code = "import sys; [print('filler', i) for i in range(200)]; sys.exit('HCCL error: link down')"
    core.create_namespaced_pod(NS, _pod("tail-pod", code, env={"PYTHONUNBUFFERED": "1"}))
    message = _terminated(_finished(core, "tail-pod", wait_for))["message"]
    assert message.endswith("HCCL error: link down\n") and "filler 199" in message
    assert len(message.splitlines()) <= 80 and "filler 100\n" not in message


def test_pod_without_command_fails_clearly(core: Any, wait_for: Callable[..., Any]) -> None:
    pod = _pod("image-pod", "")
    del pod["spec"]["containers"][0]["command"]
    core.create_namespaced_pod(NS, pod)
    terminated = _terminated(_finished(core, "image-pod", wait_for))
    assert terminated["reason"] == "StartError" and "has no command" in terminated["message"]


def test_unschedulable_until_capacity_frees(core: Any, wait_for: Callable[..., Any]) -> None:
    def device_pod(name: str) -> dict[str, Any]:
        return _pod(name, "import time; time.sleep(60)", nodeSelector={"tandem.dev/pool": "ascend-910b"},
                    container={"resources": {"limits": {"huawei.com/Ascend910": "8"}}})

    for name in ("block-0", "block-1", "waiter"):
        core.create_namespaced_pod(NS, device_pod(name))
    wait_for(lambda: all(_get(core, n)["status"]["phase"] == "Running" for n in ("block-0", "block-1")),
             what="both blockers running")

    def pending_condition() -> dict[str, Any] | None:
        conditions = _get(core, "waiter")["status"].get("conditions") or []
        return next((c for c in conditions if c["type"] == "PodScheduled" and c["status"] == "False"), None)

    condition = wait_for(pending_condition, what="waiter unschedulable")
    assert condition["reason"] == "Unschedulable"
    assert condition["message"] == ("0/4 nodes are available: 2 Insufficient huawei.com/Ascend910, "
                                    "2 node(s) didn't match Pod's node affinity/selector.")
    assert _get(core, "waiter")["status"]["phase"] == "Pending"
    freed = _get(core, "block-0")["spec"]["nodeName"]
    core.delete_namespaced_pod("block-0", NS)
    waiter = wait_for(lambda: (p := _get(core, "waiter"))["status"]["phase"] == "Running" and p,
                      what="waiter running once block-0 is gone")
    assert waiter["spec"]["nodeName"] == freed and _gone(core, "block-0")
    for name in ("block-1", "waiter"):
        core.delete_namespaced_pod(name, NS, grace_period_seconds=0)


def test_deleting_a_running_pod_stops_its_process(core: Any, kubectl: Any, wait_for: Callable[..., Any]) -> None:
    core.create_namespaced_pod(NS, _pod("sleeper", "import time; time.sleep(60)"))
    running = wait_for(lambda: (p := _get(core, "sleeper"))["status"]["phase"] == "Running" and p, what="running")
    pid = pod_pid(running)
    assert process_alive(pid)
    kubectl("delete", "pod", "sleeper", "--timeout=20s")  # waits until the object is gone
    assert _gone(core, "sleeper")
    wait_for(lambda: not process_alive(pid), timeout=10, what="the process to be gone")


def test_kill_injects_a_fault(cluster: Any, core: Any, wait_for: Callable[..., Any]) -> None:
    core.create_namespaced_pod(NS, _pod("victim", "import time; time.sleep(60)"))
    wait_for(lambda: _get(core, "victim")["status"]["phase"] == "Running", what="running")
    assert cluster.call(cluster.kubelet.kill, NS, "victim", signal.SIGKILL, "OOMKilled")
    terminated = _terminated(_finished(core, "victim", wait_for))
    assert (terminated["exitCode"], terminated["signal"], terminated["reason"]) == (137, 9, "OOMKilled")


def test_master_addr_resolves_to_rank_zero(core: Any, wait_for: Callable[..., Any]) -> None:
    core.create_namespaced_service(NS, {"metadata": {"name": "mjob"}, "spec": {
        "clusterIP": "None", "selector": {"job": "mjob"}, "ports": [{"name": "store", "port": 29500}]}})
    server = ("import os, socket; s = socket.create_server(('', int(os.environ['MASTER_PORT'])));"
              "c, _ = s.accept(); c.sendall(b'hello rank 1'); c.close();"
              "print(os.environ['MASTER_ADDR'], os.environ['MASTER_PORT'])")
    client = ("import os, socket, time\n"
              "deadline = time.monotonic() + 20\n"
              "while True:\n"
              "    try:\n"
              "        c = socket.create_connection((os.environ['MASTER_ADDR'], int(os.environ['MASTER_PORT'])))\n"
              "        break\n"
              "    except OSError:\n"
              "        assert time.monotonic() < deadline; time.sleep(0.05)\n"
              "print(os.environ['MASTER_ADDR'], os.environ['MASTER_PORT'], c.recv(100).decode())")
    env = {"MASTER_ADDR": "mjob-0.mjob.default.svc.cluster.local", "MASTER_PORT": "29500"}
    # Rank 1 first: it waits until a pod answers to rank 0's name, as a client retries its DNS lookup.
    core.create_namespaced_pod(NS, _pod("mjob-1", client, env=env))
    wait_for(lambda: "waiting for mjob-0.mjob" in json.dumps(_get(core, "mjob-1")["status"]), what="rank 1 waits")
    rank0 = _pod("mjob-0", server, env=env, hostname="mjob-0", subdomain="mjob")
    rank0["metadata"]["labels"]["job"] = "mjob"
    core.create_namespaced_pod(NS, rank0)
    done0, done1 = _finished(core, "mjob-0", wait_for), _finished(core, "mjob-1", wait_for)
    assert done0["status"]["phase"] == done1["status"]["phase"] == "Succeeded"
    address, port = done0["status"]["podIP"], env["MASTER_PORT"]
    logs = [core.read_namespaced_pod_log(n, NS) for n in ("mjob-0", "mjob-1")]
    rewritten = logs[0].split()[1]
    assert rewritten != port and logs[0] == f"{address} {rewritten}\n"
    assert logs[1] == f"{address} {rewritten} hello rank 1\n"


def test_stopping_the_cluster_leaves_no_process(wait_for: Callable[..., Any]) -> None:
    code = ("import subprocess, sys, time; child = subprocess.Popen([sys.executable, '-c', 'import time; "
            "time.sleep(60)']); print(child.pid, flush=True); time.sleep(60)")
    with LocalCluster(install_crds=False) as local, kubernetes.client.ApiClient(
            kubernetes.client.Configuration(host=local.url)) as client:
        core = kubernetes.client.CoreV1Api(client)
        core.create_namespaced_pod(NS, _pod("stays", code))
        running = wait_for(lambda: (p := _get(core, "stays"))["status"]["phase"] == "Running" and p, what="running")
        log = local.kubelet.log_path(NS, "stays")
        child = int(wait_for(lambda: log.read_text().strip(), what="the child's pid"))
        pids = [pod_pid(running), child]
        assert all(process_alive(p) for p in pids)
        state_dir = local.state_dir
    wait_for(lambda: not any(process_alive(p) for p in pids), timeout=10, what="the pod's processes to be gone")
    assert not any(process_alive(p) for p in pids) and not state_dir.exists()
