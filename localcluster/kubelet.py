"""The simulated kubelet: runs each bound pod's first container command as a local process.

Every simulated pod shares this machine, so the kubelet rewrites what a container would have
to itself (see the package README, "The local cluster"):
- volumes are local folders under the state directory (a persistentVolumeClaim per namespace and
  claim, shared by every pod that mounts it; an emptyDir per pod; a hostPath per node), and any
  env value that starts with a volumeMount's mountPath, or names the terminationMessagePath, is
  rewritten to the folder or file;
- pod IPs, pod DNS names and MASTER_PORT become loopback addresses and free ports (`addresses.py`);
  a pod naming a DNS name no pod has yet waits in ContainerCreating;
- the terminationMessagePath is a per-pod file, also given as `TANDEM_TERMINATION_LOG` unless
  the pod sets it.
Statuses are written as a kubelet writes them (phase, conditions, podIP, containerStatuses with
running and terminated states, exit codes 128+N for signals, the termination message or the log
tail under FallbackToLogsOnError). The decisions are pure functions in `containers.py`. An error
while handling one pod fails that pod alone (reason KubeletError, `pod_guard.py`); the rest run on.
One Kubelet plays every node's kubelet; a node whose Ready condition is False or Unknown has a
dead kubelet: its pods' processes are killed at once, their statuses freeze, their deletions hang
in Terminating; once Ready again, it reports the vanished containers as a restarted kubelet does
(ContainerStatusUnknown) and removes the pods deleted meanwhile."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tandem.localcluster import downward, errors, simulated
from tandem.localcluster.addresses import PodAddresses
from tandem.localcluster.containers import (
    HOST_IP,
    TAIL_BYTES,
    StartError,
    Unresolved,
    argv,
    container_env,
    exit_code,
    lost_status,
    mounts,
    process_env,
    readiness_status,
    rejected_status,
    rewrite_path,
    running_status,
    tail,
    terminated_status,
    termination_message,
    waiting_status,
)
from tandem.localcluster.node_lifecycle import event, is_down
from tandem.localcluster.pod_guard import KUBELET_ERROR, contained, pod_name
from tandem.localcluster.pod_runs import PodRun, signal_group
from tandem.localcluster.probes import exec_probe, follow_readiness
from tandem.localcluster.resources import GroupResource
from tandem.localcluster.store import Key, Obj, now_iso
from tandem.localcluster.volumes import MountError, claim_folder, create_folders, host_folder, volume_folders

if TYPE_CHECKING:
    from tandem.localcluster.api import LocalAPI

PODS, NODES = GroupResource("", "pods"), GroupResource("", "nodes")
CONFIG_MAPS = GroupResource("", "configmaps")
MESSAGE_BYTES = 4096  # the kubelet reads at most this much of a termination message file
# Phases of a pod the kubelet has yet to start; none at all too: `kubectl run` sends `status: {}`.
NOT_STARTED = (None, "", "Pending")


class Kubelet:
    """One kubelet for every simulated node. `run` is the LocalCluster service; `kill`, `kill_all`,
    `pod_dir` and `log_path` may be called from any thread."""

    def __init__(self, state_dir: str | Path) -> None:
        self.state_dir = Path(state_dir)
        self.api: LocalAPI | None = None
        self._runs: dict[str, PodRun] = {}  # by pod uid
        self._latest: dict[tuple[str, str], PodRun] = {}  # by (namespace, name); kept after deletion
        self._waiting: dict[Key, str] = {}  # bound pods that cannot start yet, and why
        self.addresses = PodAddresses(lambda: self.api.store.objects if self.api is not None else {})
        self._tasks: set[asyncio.Task[None]] = set()
        self._down: set[str] = set()  # nodes whose kubelet is dead (Ready False or Unknown), as last seen

    # --- public helpers ------------------------------------------------------------------------
    def pod_dir(self, namespace: str, name: str) -> Path | None:
        """The latest pod of that name's folder: container.log, termination-log, volumes/."""
        run = self._latest.get((namespace, name))
        return run.dir if run else None

    def log_path(self, namespace: str, name: str) -> Path | None:
        run = self._latest.get((namespace, name))
        return run.log if run else None

    def claim_dir(self, namespace: str, claim: str) -> Path:
        return claim_folder(self.state_dir, namespace, claim)

    def host_dir(self, node: str, path: str) -> Path:
        """Where a hostPath volume of a pod on `node` lives: that node's own filesystem."""
        return host_folder(self.state_dir, node, path)

    def kill(self, namespace: str, name: str, sig: int = signal.SIGKILL, reason: str | None = None) -> bool:
        """Signal a running pod's process group; `reason` replaces the terminated reason the kubelet
        reports (e.g. "OOMKilled"). False if not running."""
        run = self._latest.get((namespace, name))
        if run is None or run.process is None or not run.alive:
            return False
        run.reason = reason or run.reason
        with contextlib.suppress(ProcessLookupError):
            os.killpg(run.process.pid, sig)
        return True

    def is_running(self, namespace: str, name: str) -> bool:
        """Whether the latest pod of that name has a live process (the kubelet has seen it exit once False)."""
        run = self._latest.get((namespace, name))
        return run is not None and run.process is not None and run.alive

    def kill_all(self) -> None:
        for run in list(self._runs.values()):
            if run.process is not None and run.alive:
                signal_group(run.process.pid, signal.SIGKILL)

    def read_log(self, namespace: str, name: str) -> str:
        assert self.api is not None
        pod = self.api.store.find(PODS, namespace, name)
        if pod is not None and self._dead(pod["spec"].get("nodeName")):
            # The API server proxies logs from the node's kubelet, which does not answer.
            container = next(iter(pod["spec"].get("containers") or []), {}).get("name", "")
            raise errors.KubernetesError(status=500, reason="InternalError", message=(
                f'Get "https://{HOST_IP}:10250/containerLogs/{namespace}/{name}/{container}": '
                f"dial tcp {HOST_IP}:10250: i/o timeout"))
        run = self._runs.get(pod["metadata"]["uid"]) if pod else None
        if run is None or not run.log.exists():
            return ""
        return run.log.read_bytes().decode(errors="replace")

    # --- the service -----------------------------------------------------------------------------
    async def run(self, api: LocalAPI) -> None:
        self.api = api
        api.pod_deletion_hook = self._deletion_hook
        api.log_reader = self.read_log
        queue = api.store.subscribe()
        try:
            self._down = {name for (resource, _, name), node in api.store.objects.items()
                          if resource == NODES and is_down(node)}
            for (resource, _, _), obj in list(api.store.objects.items()):
                if resource == PODS:
                    self._sync(obj)
            while True:
                event = await queue.get()
                if event.resource == PODS and event.type == "DELETED":
                    self._on_deleted(event.obj)
                elif event.resource == PODS:
                    self._sync(event.obj)
                elif event.resource == NODES and event.type != "DELETED":
                    self._on_node(event.obj["metadata"]["name"], is_down(event.obj))
                if event.resource in (PODS, NODES):
                    for key in list(self._waiting):
                        if (pod := api.store.objects.get(key)) is not None:
                            self._sync(pod)
        finally:
            api.store.unsubscribe(queue)
            api.pod_deletion_hook = None
            for run in self._runs.values():
                if run.alive and run.process is None:
                    run.stop_grace = 0  # still starting: killed as soon as it exists
            self.kill_all()
            if self._tasks:
                await asyncio.wait(list(self._tasks), timeout=10)

    def _sync(self, pod: Obj) -> None:
        with contained(pod_name(pod), lambda message: self._fail(pod, message)):
            self._sync_pod(pod)

    def _sync_pod(self, pod: Obj) -> None:
        meta, spec = pod["metadata"], pod.get("spec") or {}
        key = (PODS, meta["namespace"], meta["name"])
        run = self._runs.get(meta["uid"])
        if self._dead(spec.get("nodeName")):
            return  # a dead kubelet neither starts, stops nor reports anything
        if meta.get("deletionTimestamp"):
            self._waiting.pop(key, None)
            if run is not None and run.alive:
                self._stop(run, int(meta.get("deletionGracePeriodSeconds") or 0))
            return
        if run is not None and run.alive:
            downward.refresh(pod, run.folders)  # labels and annotations move: their files follow
        if run is not None or not spec.get("nodeName") or (pod.get("status") or {}).get("phase") not in NOT_STARTED:
            return
        assert self.api is not None
        if self.api.store.find(NODES, None, spec["nodeName"]) is None:
            self._waiting[key] = f"node {spec['nodeName']} does not exist"
            return
        self._start(key, pod)

    def _deletion_hook(self, key: Key, pod: Obj, grace: int) -> bool:
        if self._dead(pod["spec"].get("nodeName")):
            return True  # no kubelet confirms it: Terminating until the node returns or a force deletion
        run = self._runs.get(pod["metadata"]["uid"])
        return run is not None and run.alive  # the MODIFIED event that follows starts the shutdown

    def _on_deleted(self, pod: Obj) -> None:
        with contained(pod_name(pod), lambda message: self._fail(pod, message)):
            self._stop_orphan(pod)

    def _stop_orphan(self, pod: Obj) -> None:
        # Removed while its process may still run (force deletion, garbage collection, namespace
        # deletion): the orphan is stopped with the deletion's grace period, else the pod's own.
        meta = pod["metadata"]
        self._waiting.pop((PODS, meta["namespace"], meta["name"]), None)
        run = self._runs.get(meta["uid"])
        grace = meta.get("deletionGracePeriodSeconds")
        if grace is None:
            grace = (pod.get("spec") or {}).get("terminationGracePeriodSeconds", 30)
        if run is not None and run.alive:
            self._stop(run, int(grace))

    # --- node faults -------------------------------------------------------------------------
    def _dead(self, node_name: str | None) -> bool:
        """Whether that node's kubelet is dead now: its Ready condition in the store is False or Unknown."""
        assert self.api is not None
        return bool(node_name) and is_down(self.api.store.find(NODES, None, str(node_name)))

    def _on_node(self, name: str, down: bool) -> None:
        if down and name not in self._down:
            self._down.add(name)
            self._power_off(name)
        elif not down and name in self._down:
            self._down.discard(name)
            self._power_on(name)

    def _power_off(self, name: str) -> None:
        # The machine died: every process of its pods dies with it, and nobody reports it.
        for run in self._runs.values():
            if run.node == name and run.alive:
                run.lost = True
                if run.simulation is not None:
                    simulated.power_off(run)
                elif run.process is not None:  # one still starting is killed by _launch
                    signal_group(run.process.pid, signal.SIGKILL)

    def _power_on(self, name: str) -> None:
        """The kubelet restarts: a container that vanished with the machine is reported terminated,
        ContainerStatusUnknown, and a pod deleted meanwhile is removed; pods it never started start."""
        assert self.api is not None
        for key, pod in list(self.api.store.objects.items()):
            if key[0] == PODS and (pod.get("spec") or {}).get("nodeName") == name:
                with contained(pod_name(pod), lambda message, pod=pod: self._fail(pod, message)):
                    self._restart_pod(key, pod)

    def _restart_pod(self, key: Key, pod: Obj) -> None:
        assert self.api is not None
        run = self._runs.get(pod["metadata"]["uid"])
        if run is not None and run.lost:
            if not run.alive:  # else _launch reports it as soon as the process is reaped
                self._write(key, run.uid, lambda p: lost_status(p, now_iso()))
        elif pod["metadata"].get("deletionTimestamp") and (run is None or not run.alive):
            if not pod["metadata"].get("finalizers"):
                self.api.store.remove(key)
        else:
            self._sync_pod(pod)

    # --- starting ----------------------------------------------------------------------------
    def _start(self, key: Key, pod: Obj) -> None:
        meta = pod["metadata"]
        container = pod["spec"]["containers"][0]
        pod_dir = self.state_dir / "pods" / f"{meta['namespace']}_{meta['name']}_{meta['uid']}"
        assert self.api is not None
        if simulated.start(self, key, pod, self.api.store.find(NODES, None, pod["spec"]["nodeName"]), pod_dir):
            return  # a simulated node's pod: a script, no process
        ip = self.addresses.ip(meta["uid"])
        try:
            folders = volume_folders(pod, self.state_dir, pod_dir)
            table = mounts(container, folders, pod_dir / "termination-log")
            env = container_env(pod, container, ip, table, self.addresses.resolve, self.addresses.master_port)
            command = argv(container, env)
        except Unresolved as unresolved:
            why = f"waiting for {unresolved.args[0]} to resolve: no pod has that hostname and subdomain yet"
            if self._waiting.get(key) != why:
                self._waiting[key] = why
                self._write(key, meta["uid"], lambda p: waiting_status(p, why))
            return
        except MountError as failed:
            self._mount_failed(key, pod, str(failed))
            return
        except StartError as exc:
            message = str(exc)
            self._begin(key, pod, pod_dir).done.set()
            self._write(key, meta["uid"], lambda p: self._exited(p, 128, None, message, "StartError"))
            return
        self._waiting.pop(key, None)
        run = self._begin(key, pod, pod_dir)
        create_folders(pod, folders, table, run.termination_file,
                       lambda name: self.api.store.find(CONFIG_MAPS, meta["namespace"], name) if self.api else None)
        run.folders = folders
        downward.refresh(pod, folders)
        # A workingDir inside a mount is honoured; any other would name the image's filesystem.
        workdir = rewrite_path(container.get("workingDir") or "", table)
        cwd = Path(workdir) if workdir != (container.get("workingDir") or "") else pod_dir
        if cwd.is_relative_to(self.state_dir):
            cwd.mkdir(parents=True, exist_ok=True)
        self._spawn(self._launch(run, command, process_env(pod, env, os.environ), cwd))
        if (probe := exec_probe(container)) is not None:
            self._spawn(follow_readiness(probe, table, process_env(pod, env, os.environ), cwd,
                                         lambda: run.alive and not run.lost, lambda ready: self._write(
                                             run.key, run.uid, lambda p: readiness_status(p, ready, now_iso()))))

    def _begin(self, key: Key, pod: Obj, pod_dir: Path) -> PodRun:
        pod_dir.mkdir(parents=True, exist_ok=True)
        uid = pod["metadata"]["uid"]
        run = self._runs[uid] = PodRun(key=key, uid=uid, dir=pod_dir, node=pod["spec"]["nodeName"])
        self._latest[(key[1] or "", key[2])] = run
        run.termination_file.touch()
        return run

    def _fail(self, pod: Obj, message: str) -> None:
        """A pod the kubelet failed on (`pod_guard`): its process is killed, it is never retried, and
        it turns Failed with reason KubeletError and a Warning Event, as a pod the kubelet rejects."""
        assert self.api is not None
        meta = pod["metadata"]
        key, uid = (PODS, meta["namespace"], meta["name"]), str(meta["uid"])
        self._waiting.pop(key, None)
        pod_dir = self.state_dir / "pods" / f"{meta['namespace']}_{meta['name']}_{uid}"
        run = self._runs.setdefault(uid, PodRun(key=key, uid=uid, dir=pod_dir))  # kept: never retried
        if run.process is not None:
            signal_group(run.process.pid, signal.SIGKILL)
        run.done.set()
        self._write(key, uid, lambda p: rejected_status(p, KUBELET_ERROR, message, now_iso()))
        host = (pod.get("spec") or {}).get("nodeName") or None
        self.api.store.create(self.api.types[("", "v1", "events")], meta["namespace"], event(
            pod, KUBELET_ERROR, message, "Warning", now_iso(), os.urandom(8).hex(), host=host))

    def _mount_failed(self, key: Key, pod: Obj, message: str) -> None:
        """As the volume manager: the pod waits in ContainerCreating, a Warning FailedMount Event
        says why (once; the pod is retried on every change, as the kubelet keeps retrying)."""
        assert self.api is not None
        if self._waiting.get(key) == message:
            return
        self._waiting[key] = message
        self._write(key, pod["metadata"]["uid"], lambda p: waiting_status(p, None))
        self.api.store.create(self.api.types[("", "v1", "events")], pod["metadata"]["namespace"], event(
            pod, "FailedMount", message, "Warning", now_iso(), os.urandom(8).hex(), host=pod["spec"]["nodeName"]))

    async def _launch(self, run: PodRun, command: list[str], env: dict[str, str], cwd: Path) -> None:
        assert self.api is not None
        pod = self.api.store.objects.get(run.key)
        if pod is None or pod["metadata"].get("uid") != run.uid:  # gone or replaced: fail this run only
            pod = {"metadata": {"namespace": run.key[1], "name": run.key[2], "uid": run.uid}}
        with contained(pod_name(pod), lambda message: self._fail(pod, message)):
            await self._run_container(run, command, env, cwd)

    async def _run_container(self, run: PodRun, command: list[str], env: dict[str, str], cwd: Path) -> None:
        try:
            with run.log.open("ab") as log:
                process = await asyncio.create_subprocess_exec(
                    *command, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=asyncio.subprocess.STDOUT,
                    env=env, cwd=cwd, start_new_session=True)
        except OSError as exc:
            run.done.set()
            why = "executable file not found in $PATH" if isinstance(exc, FileNotFoundError) else exc.strerror
            message = f'failed to start container: exec: "{command[0]}": {why or exc}'
            self._write(run.key, run.uid, lambda p: self._exited(p, 128, None, message, "StartError"))
            return
        run.process, run.started_at = process, now_iso()
        run.container_id = f"tandem-local://{run.uid}/{process.pid}"
        if run.lost:  # its node went down while it was starting
            signal_group(process.pid, signal.SIGKILL)
        elif run.stop_grace is None:
            ready = exec_probe(self._container(run)) is None  # a probed container is ready once its probe passes
            self._write(run.key, run.uid, lambda p: running_status(
                p, self.addresses.ip(run.uid), str(run.container_id), str(run.started_at), now_iso(), ready))
        else:
            self._spawn(self._terminate(run, run.stop_grace))  # deleted while it was starting
        returncode = await process.wait()
        # As when a container's init process exits: nothing it left behind keeps running.
        signal_group(process.pid, signal.SIGKILL)
        run.done.set()
        if run.lost:  # written only if the node is back already; otherwise when it returns
            self._write(run.key, run.uid, lambda p: lost_status(p, now_iso()))
            return
        code, signal_number = exit_code(returncode)
        self._write(run.key, run.uid, lambda p: self._exited(p, code, signal_number, None, run.reason, run))

    def _container(self, run: PodRun) -> Obj:
        assert self.api is not None
        pod = self.api.store.objects.get(run.key) or {}
        return next(iter((pod.get("spec") or {}).get("containers") or []), {})

    def _exited(self, pod: Obj, code: int, signal_number: int | None, message: str | None, reason: str | None,
                run: PodRun | None = None) -> Obj:
        container = pod["spec"]["containers"][0]
        if message is None and run is not None:
            with run.termination_file.open("rb") as file:
                text = file.read(MESSAGE_BYTES).decode(errors="replace")
            with run.log.open("rb") as log:
                log.seek(max(0, log.seek(0, os.SEEK_END) - TAIL_BYTES))
                logged = tail(log.read())
            message = termination_message(text, logged, container.get("terminationMessagePolicy", "File"), code)
        return terminated_status(pod, code=code, signal_number=signal_number, reason=reason, message=message or "",
                                 container_id=run.container_id if run else None,
                                 started_at=run.started_at if run else None,
                                 pod_ip=self.addresses.ip(pod["metadata"]["uid"]) if run else None, now=now_iso())

    def _write(self, key: Key, uid: str, build: Callable[[Obj], Obj]) -> None:
        """Write the status `build` makes from the stored pod, if that pod is still this one; a
        deleted pod whose container has stopped is then removed, as the kubelet's final delete does."""
        assert self.api is not None
        store = self.api.store
        current = store.objects.get(key)
        run = self._runs.get(uid)
        if current is None or current["metadata"]["uid"] != uid or self._dead(current["spec"].get("nodeName")):
            return  # gone, replaced, or its node is down: a dead kubelet posts nothing
        store.update(self.api.types[("", "v1", "pods")], current, {**current, "status": build(current)}, "status")
        current = store.objects.get(key)
        if current is not None and current["metadata"].get("deletionTimestamp") and (run is None or not run.alive):
            if not current["metadata"].get("finalizers"):
                store.remove(key)
            elif current["metadata"].get("deletionGracePeriodSeconds"):
                # The kubelet's final delete (grace 0): the pod goes once its finalizers are released.
                store.mark_terminating(key, 0)

    # --- stopping ----------------------------------------------------------------------------
    def _stop(self, run: PodRun, grace: int) -> None:
        if run.stop_grace is not None and grace >= run.stop_grace:
            return  # already stopping, no sooner than this (a later deletion may only shorten it)
        run.stop_grace = grace
        if run.simulation is not None:
            simulated.stop(self, run)
            return
        if run.process is not None:  # else _launch stops it once the process exists
            self._spawn(self._terminate(run, grace))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)  # kept until done (the loop holds tasks weakly); awaited on shutdown
        task.add_done_callback(self._tasks.discard)

    async def _terminate(self, run: PodRun, grace: int) -> None:
        assert run.process is not None
        signal_group(run.process.pid, signal.SIGTERM if grace > 0 else signal.SIGKILL)
        try:
            await asyncio.wait_for(run.done.wait(), timeout=max(grace, 0.001))
        except TimeoutError:
            signal_group(run.process.pid, signal.SIGKILL)
