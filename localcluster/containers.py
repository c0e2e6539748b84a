"""What the simulated kubelet makes of a pod (pure): the container's command and environment with
the local rewrites (volumes as folders, pod DNS names as loopback addresses, MASTER_PORT, the
termination-message file), and the pod statuses a kubelet writes. `kubelet.py` is the shell.

Images: the local kubelet pulls none and knows no image's ENTRYPOINT or CMD, so it treats every
image as one without an ENTRYPOINT (as busybox, alpine, ubuntu and python are): the process is
`command` + `args`, and args alone are the process (`kubectl run x --image=busybox -- sleep 1`
runs `sleep 1` from the host's PATH). A container with neither would run the image's CMD: it
fails with StartError saying so, and a program not found fails with StartError as containerd's
`exec: "x": executable file not found in $PATH`. Neither ever leaves the pod Pending."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from tandem.localcluster.store import Obj

HOST_IP = "127.0.0.1"
TERMINATION_ENV = "TANDEM_TERMINATION_LOG"
TAIL_BYTES, TAIL_LINES = 2048, 80  # FallbackToLogsOnError: the smaller of the two
# Host variables a process needs to run here at all; everything else comes from the pod.
HOST_ENV = ("PATH", "HOME", "USER", "LANG", "LC_ALL", "TZ", "TMPDIR", "LD_LIBRARY_PATH", "PYTHONSAFEPATH",
            "OMP_NUM_THREADS")
POD_DNS = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.([a-z0-9]([-a-z0-9]*[a-z0-9])?)\."
                     r"([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.svc(\.cluster\.local)?\.?$")
_VAR_REF = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


class StartError(Exception):
    """The container cannot start; the pod fails with this message, as after a runtime error."""


class Unresolved(LookupError):
    """A pod DNS name in the env that no pod has yet: the pod waits. A class of its own, so that a
    KeyError from a broken spec is not taken for one (it fails the pod, `pod_guard.py`)."""


# --- the container's view of the pod (pure) ----------------------------------------------------
def expand(value: str, env: Mapping[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: known names are replaced, $$ escapes, unknown refs stay."""
    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return _VAR_REF.sub(replace, value)


def field_value(pod: Obj, path: str, pod_ip: str) -> str:
    meta, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    simple = {"metadata.name": meta.get("name"), "metadata.namespace": meta.get("namespace"),
              "metadata.uid": meta.get("uid"), "spec.nodeName": spec.get("nodeName"),
              "spec.serviceAccountName": spec.get("serviceAccountName", "default"),
              "status.podIP": pod_ip, "status.hostIP": HOST_IP}
    if path in simple:
        return str(simple[path] or "")
    if m := re.fullmatch(r"metadata\.(labels|annotations)\['([^']*)'\]", path):
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    raise StartError(f"fieldRef {path!r} is not supported by the local kubelet")


def declared_env(pod: Obj, container: Obj, pod_ip: str) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in container.get("env") or []:
        source = item.get("valueFrom")
        if source is None:
            env[item["name"]] = expand(str(item.get("value", "")), env)
        elif "fieldRef" in source:
            env[item["name"]] = field_value(pod, source["fieldRef"]["fieldPath"], pod_ip)
        else:
            raise StartError(f"env {item['name']}: the local kubelet supports only value and valueFrom.fieldRef")
    return env


def _termination_path(container: Obj) -> str:
    return container.get("terminationMessagePath") or "/dev/termination-log"


def mounts(container: Obj, folders: Mapping[str, Path], termination_file: Path) -> list[tuple[str, Path]]:
    """(path in the container, path here), longest container path first so the deepest mount wins."""
    found = [(_termination_path(container), termination_file)]
    for mount in container.get("volumeMounts") or []:
        if mount["name"] not in folders:
            raise StartError(f"volumeMount {mount['name']!r} names no volume of the pod")
        sub = str(mount.get("subPath") or "")
        if sub.startswith("/") or ".." in sub.split("/"):  # refused by the API server; never leaves the volume
            raise StartError(f"subPath {sub!r} must be a relative path without '..'")
        host = folders[mount["name"]] / sub if sub else folders[mount["name"]]
        found.append((mount["mountPath"].rstrip("/") or "/", host))
    return sorted(found, key=lambda m: len(m[0]), reverse=True)


def rewrite_path(value: str, table: list[tuple[str, Path]]) -> str:
    for inside, here in table:
        if value == inside or value.startswith(inside.rstrip("/") + "/"):
            return str(here) + value[len(inside):]
    return value


def container_env(pod: Obj, container: Obj, pod_ip: str, table: list[tuple[str, Path]],
                  resolve: Callable[[str, str, str], str | None],
                  master_port: Callable[[str, str], str]) -> dict[str, str]:
    """The pod's env with the local rewrites applied; raises Unresolved while a DNS name is unresolved."""
    env = {name: rewrite_path(value, table) for name, value in declared_env(pod, container, pod_ip).items()}
    for name, value in env.items():
        if m := POD_DNS.match(value):
            address = resolve(m.group(5), m.group(3), m.group(1))
            if address is None:
                raise Unresolved(value)
            env[name] = address
    if "MASTER_ADDR" in env and "MASTER_PORT" in env:
        env["MASTER_PORT"] = master_port(env["MASTER_ADDR"], env["MASTER_PORT"])
        if "PET_MASTER_PORT" in env:  # torchrun's copy of the rendezvous port: the same free port
            env["PET_MASTER_PORT"] = env["MASTER_PORT"]
    env.setdefault(TERMINATION_ENV, rewrite_path(_termination_path(container), table))
    return env


def process_env(pod: Obj, env: Mapping[str, str], host: Mapping[str, str]) -> dict[str, str]:
    merged = {k: host[k] for k in HOST_ENV if k in host}
    spec = pod.get("spec") or {}
    merged["HOSTNAME"] = spec.get("hostname") or pod["metadata"]["name"]
    merged.update(env)
    # Console scripts of this environment (tandem-train) resolve first, as in the runtime image.
    merged["PATH"] = os.pathsep.join(p for p in (os.path.dirname(sys.executable), merged.get("PATH")) if p)
    return merged


def argv(container: Obj, env: Mapping[str, str]) -> list[str]:
    """What the container runs: command + args. The local kubelet has no images, so every image counts
    as one without an ENTRYPOINT (busybox, alpine, ubuntu, python): args without a command replace
    the image's CMD and are the process, as `kubectl run x --image=busybox -- sleep 1` means. With
    neither, only the image's CMD would run, which is not known here: the container cannot start."""
    command = [*(container.get("command") or []), *(container.get("args") or [])]
    if not command:
        raise StartError(f'container "{container["name"]}" has no command: the local kubelet runs commands, '
                         "not images (set command or args, e.g. [tandem-train])")
    return [expand(str(part), env) for part in command]


# --- status builders (pure) ----------------------------------------------------------------
# The pod conditions of a pod whose container has terminated: (type, status, reason).
_COMPLETED = (("PodReadyToStartContainers", "False", None), ("Initialized", "True", "PodCompleted"),
              ("Ready", "False", "PodCompleted"), ("ContainersReady", "False", "PodCompleted"))


def _conditions(status: Obj, states: Sequence[tuple[str, str, str | None]], now: str) -> list[Obj]:
    previous = {c["type"]: c for c in status.get("conditions") or []}
    out = []
    for kind, value, reason in states:
        old = previous.pop(kind, None)
        moved = old is None or old.get("status") != value
        condition = {"type": kind, "status": value,
                     "lastTransitionTime": now if moved else old.get("lastTransitionTime", now)}
        if reason:
            condition["reason"] = reason
        out.append(condition)
    return [*out, *previous.values()]  # PodScheduled, as the scheduler wrote it


def _container_status(container: Obj, state: Obj, ready: bool, container_id: str | None) -> Obj:
    status = {"name": container["name"], "image": container.get("image", ""), "imageID": container.get("image", ""),
              "ready": ready, "started": "running" in state, "restartCount": 0, "state": state}
    if container_id:
        status["containerID"] = container_id
    return status


def _readiness(ready: bool) -> list[tuple[str, str, str | None]]:
    value, reason = ("True", None) if ready else ("False", "ContainersNotReady")
    return [("Ready", value, reason), ("ContainersReady", value, reason)]


def running_status(pod: Obj, pod_ip: str, container_id: str, started_at: str, now: str, ready: bool = True) -> Obj:
    """`ready`: False for a container with a readiness probe, until the probe passes."""
    status = pod.get("status") or {}
    container = pod["spec"]["containers"][0]
    return {**status, "phase": "Running", "hostIP": HOST_IP, "hostIPs": [{"ip": HOST_IP}], "podIP": pod_ip,
            "podIPs": [{"ip": pod_ip}], "startTime": status.get("startTime", started_at),
            "conditions": _conditions(status, [("PodReadyToStartContainers", "True", None),
                                               ("Initialized", "True", None), *_readiness(ready)], now),
            "containerStatuses": [_container_status(container, {"running": {"startedAt": started_at}},
                                                    ready, container_id)]}


def readiness_status(pod: Obj, ready: bool, now: str) -> Obj:
    """A running container's readiness probe flipped; any other state is left as it is."""
    status = pod.get("status") or {}
    containers = status.get("containerStatuses") or []
    if status.get("phase") != "Running" or not containers or "running" not in (containers[0].get("state") or {}):
        return status
    moved = {c["type"]: c for c in _conditions(status, _readiness(ready), now)}
    return {**status, "conditions": [moved.get(c.get("type"), c) for c in status.get("conditions") or []],
            "containerStatuses": [{**containers[0], "ready": ready}, *containers[1:]]}


def waiting_status(pod: Obj, message: str | None) -> Obj:
    status = pod.get("status") or {}
    container = pod["spec"]["containers"][0]
    state = {"waiting": {"reason": "ContainerCreating", **({"message": message} if message else {})}}
    return {**status, "containerStatuses": [_container_status(container, state, False, None)]}


def exit_code(returncode: int) -> tuple[int, int | None]:
    """(exitCode, signal): a process killed by signal N exits 128+N, as a container's does."""
    return (128 - returncode, -returncode) if returncode < 0 else (returncode, None)


def termination_message(file_text: str, log_tail: str, policy: str, code: int) -> str:
    if file_text.strip() or policy != "FallbackToLogsOnError" or code == 0:
        return file_text
    return log_tail


def tail(data: bytes) -> str:
    lines = data[-TAIL_BYTES:].decode(errors="replace").splitlines(keepends=True)
    return "".join(lines[-TAIL_LINES:])


def terminated_status(pod: Obj, *, code: int, signal_number: int | None, reason: str | None, message: str,
                      container_id: str | None, started_at: str | None, pod_ip: str | None, now: str) -> Obj:
    status = pod.get("status") or {}
    container = pod["spec"]["containers"][0]
    terminated: dict[str, Any] = {"exitCode": code, "reason": reason or ("Completed" if code == 0 else "Error"),
                                  "startedAt": started_at or now, "finishedAt": now}
    if signal_number is not None:
        terminated["signal"] = signal_number
    if message:
        terminated["message"] = message
    if container_id:
        terminated["containerID"] = container_id
    new = {**status, "phase": "Succeeded" if code == 0 else "Failed", "hostIP": HOST_IP,
           "hostIPs": [{"ip": HOST_IP}], "startTime": status.get("startTime", started_at or now),
           "conditions": _conditions(status, _COMPLETED, now),
           "containerStatuses": [_container_status(container, {"terminated": terminated}, False, container_id)]}
    if pod_ip:
        new.update(podIP=pod_ip, podIPs=[{"ip": pod_ip}])
    return new


def rejected_status(pod: Obj, reason: str, message: str, now: str) -> Obj:
    """A pod the kubelet gave up on as a whole (as for a pod it rejects at admission): Failed, with a
    pod-level reason and message; built from the status alone, since its spec may be what is broken."""
    status = pod.get("status") or {}
    return {**status, "phase": "Failed", "reason": reason, "message": message,
            "conditions": _conditions(status, _COMPLETED, now)}


LOST_REASON = "ContainerStatusUnknown"
LOST_MESSAGE = "The container could not be located when the pod was terminated"
# What kubelet_pods.go infers for a container that was Running and is no longer known to the runtime.
LOST_LAST_MESSAGE = "The container could not be located when the pod was deleted.  The container used to be Running"


def lost_status(pod: Obj, now: str) -> Obj:
    """The status a restarted kubelet writes for a pod whose container vanished with the machine
    (restartPolicy Never): the container was Running and the runtime no longer knows it, so its
    last state is inferred terminated (137, ContainerStatusUnknown; one restart counted unless the
    pod is being deleted), the pod turns Failed, and the status manager's TerminatePod gives the
    container the same terminated state. A pod already finished keeps its status."""
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return status
    container = pod["spec"]["containers"][0]
    old = next(iter(status.get("containerStatuses") or []), {})
    unknown = {"exitCode": 137, "reason": LOST_REASON}
    new = _container_status(container, {"terminated": {**unknown, "message": LOST_MESSAGE}}, False, None)
    if "running" in (old.get("state") or {}):
        new["lastState"] = {"terminated": {**unknown, "message": LOST_LAST_MESSAGE}}
        new["restartCount"] = int(old.get("restartCount") or 0) + (0 if pod["metadata"].get("deletionTimestamp") else 1)
    return {**status, "phase": "Failed",
            "conditions": _conditions(status, _COMPLETED, now),
            "containerStatuses": [new]}
