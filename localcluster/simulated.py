"""Simulated pods, as KWOK simulates them for scale tests of real controllers: a pod bound to a node whose pool says
`simulatedPods` in the cluster config runs no process. The local kubelet moves it through its phases on a script
(start-up delay, run time, exit code, termination message), cheap enough for tens of thousands of pods; a pod can
change its own script with annotations (a job's `podTemplate.metadata.annotations` reach its pods), e.g. to fault
one job at a given time. Pods on other nodes run real processes, as before.

The script travels on the node (annotation `tandem.dev/simulated-pods`, JSON), so the kubelet reads it from the
API's own objects and a node created by hand can be simulated too."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from tandem.localcluster.containers import running_status, terminated_status
from tandem.localcluster.store import Key, now_iso

if TYPE_CHECKING:
    from tandem.localcluster.kubelet import Kubelet
    from tandem.localcluster.pod_runs import PodRun

Obj = dict[str, Any]
NODE_ANNOTATION = "tandem.dev/simulated-pods"
POD_ANNOTATION_PREFIX = "sim.tandem.dev/"  # sim.tandem.dev/run-seconds, exit-code, termination-message, ...


class PodScript(BaseModel):
    """What a simulated pod does: wait `startSeconds` (pulling, starting), run `runSeconds` (None: until it is
    deleted), then exit with `exitCode`, leaving `terminationMessage` (the runtime's JSON, for example)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    start_seconds: float = Field(default=0.0, ge=0, le=86_400, alias="startSeconds")
    run_seconds: float | None = Field(default=None, ge=0, le=31_536_000, alias="runSeconds")
    exit_code: int = Field(default=0, ge=0, le=255, alias="exitCode")
    termination_message: str = Field(default="", max_length=4096, alias="terminationMessage")

    def to_json(self) -> str:
        return self.model_dump_json(by_alias=True, exclude_none=True)


# The annotations a pod may set, by field: sim.tandem.dev/<kebab-case name>.
_OVERRIDES = {"start-seconds": "startSeconds", "run-seconds": "runSeconds", "exit-code": "exitCode",
              "termination-message": "terminationMessage"}


class ScriptError(ValueError):
    """A node's or a pod's script that cannot be read: the pod fails to start with this message."""


def node_script(node: Obj | None) -> PodScript | None:
    """The script of the node's pods; None for a node whose pods run real processes."""
    text = ((node or {}).get("metadata", {}).get("annotations") or {}).get(NODE_ANNOTATION)
    if text is None:
        return None
    try:
        return PodScript.model_validate(json.loads(text))
    except (ValueError, ValidationError) as exc:
        raise ScriptError(f"node annotation {NODE_ANNOTATION} is not a pod script: {exc}") from exc


def pod_script(pod: Obj, base: PodScript) -> PodScript:
    """The node's script with the pod's own annotations over it."""
    annotations = pod.get("metadata", {}).get("annotations") or {}
    changes: dict[str, Any] = {}
    for suffix, field in _OVERRIDES.items():
        value = annotations.get(POD_ANNOTATION_PREFIX + suffix)
        if value is None:
            continue
        changes[field] = value if field == "terminationMessage" else _number(suffix, value)
    try:
        return PodScript.model_validate({**json.loads(base.to_json()), **changes})
    except ValidationError as exc:
        raise ScriptError(f"pod annotations {POD_ANNOTATION_PREFIX}*: {exc}") from exc


def _number(name: str, value: str) -> float | int:
    try:
        number = float(value)
    except ValueError as exc:
        raise ScriptError(f"annotation {POD_ANNOTATION_PREFIX}{name}: {value!r} is not a number") from exc
    return int(number) if name == "exit-code" and number.is_integer() else number


async def play(script: PodScript, running: Callable[[], None], exited: Callable[[int, str], None]) -> None:
    """The pod's life: Running after the start-up delay, then its exit (never, without a run time). Cancelled when
    the pod is deleted or its node goes down (the caller reports that)."""
    await asyncio.sleep(script.start_seconds)
    running()
    if script.run_seconds is None:
        await asyncio.Event().wait()  # until cancelled
    await asyncio.sleep(script.run_seconds or 0.0)
    exited(script.exit_code, script.termination_message)


# As a container stopped by the kubelet's SIGTERM: 128 + 15.
STOPPED_CODE, STOPPED_SIGNAL = 143, 15


def start(kubelet: Kubelet, key: Key, pod: Obj, node: Obj | None, pod_dir: Path) -> bool:
    """Start `pod` as a simulated pod if its node simulates pods; False when it runs a real process. A script that
    cannot be read fails the pod (StartError), as a container that cannot start."""
    try:
        base = node_script(node)
        script = pod_script(pod, base) if base is not None else None
    except ScriptError as exc:
        run, why = kubelet._begin(key, pod, pod_dir), str(exc)
        run.done.set()
        kubelet._write(key, run.uid, lambda p: kubelet._exited(p, 128, None, why, "StartError"))
        return True
    if script is None:
        return False
    run = kubelet._begin(key, pod, pod_dir)
    ip = kubelet.addresses.ip(run.uid)
    run.container_id = f"tandem-sim://{run.uid}"

    def running() -> None:
        run.started_at = now_iso()
        kubelet._write(key, run.uid, lambda p: running_status(p, ip, str(run.container_id), str(run.started_at),
                                                              now_iso()))

    def exited(code: int, message: str) -> None:
        finish(kubelet, run, code, None, message)

    run.simulation = asyncio.get_running_loop().create_task(play(script, running, exited))
    kubelet._tasks.add(run.simulation)
    run.simulation.add_done_callback(kubelet._tasks.discard)
    return True


def finish(kubelet: Kubelet, run: PodRun, code: int, signal_number: int | None, message: str) -> None:
    """The simulated container exited: its terminated status, as the kubelet writes a real one's."""
    if run.done.is_set():
        return
    run.done.set()  # first: a pod being deleted is removed once its container has stopped
    ip = kubelet.addresses.ip(run.uid)
    kubelet._write(run.key, run.uid, lambda p: terminated_status(
        p, code=code, signal_number=signal_number, reason=None, message=message, container_id=run.container_id,
        started_at=run.started_at, pod_ip=ip, now=now_iso()))


def stop(kubelet: Kubelet, run: PodRun) -> None:
    """The pod is being deleted: its script ends now, as a process that exits on SIGTERM."""
    if run.simulation is not None:
        run.simulation.cancel()
    finish(kubelet, run, STOPPED_CODE, STOPPED_SIGNAL, "")


def power_off(run: PodRun) -> None:
    """Its node died: the script stops, nothing is reported (the kubelet reports the lost container when the node
    comes back)."""
    if run.simulation is not None:
        run.simulation.cancel()
    run.done.set()
