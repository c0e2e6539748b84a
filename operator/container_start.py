"""A training container that never ran its command (docs/design.md#fault-classes): the image cannot be pulled
or parsed, the container's config or its command is wrong. Retrying with backoff cannot fix the job's own
mistakes, so they fail it at once, naming the kubelet's reason and message; causes that may go away by
themselves (a registry that is down, a runtime that is slow) get START_GRACE_SECONDS first. Pure functions
over plain Kubernetes objects; malformed input gives no verdict, never an exception.

The texts, as people posted them, are in tests/data/faults/container_start.yaml: the kubelet's waiting
reasons (kubernetes/kubernetes#14491 RunContainerError "exec: \"start\": executable file not found in
$PATH"; elastic/cloud-on-k8s#2150 InvalidImageName; thoth-station/thoth-application#2593
CreateContainerConfigError 'configmap "thoth" not found'; mattmattox/drain-node-on-crash#7 ErrImagePull and
ImagePullBackOff), containerd's StartError with exit code 128 (vdesabou/kafka-docker-playground#8515,
CyCoreSystems/asterisk-k8s-demo#25), CRI-O's "executable file `/bin/alloy` not found in $PATH"
(cri-o/cri-o#8887) and its mount failure that is the node's, not the job's (cri-o/cri-o#1258), and a shell's
127/126 (AndyJZhao/GLEM#11 "sh: 1: .../torchrun: not found", luksa/kubernetes-in-action#15).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tandem.faults import read_log
from tandem.operator.api_types import FaultClass
from tandem.operator.classification import Classification, Obj, as_dict, as_list, short

START_GRACE_SECONDS = 120.0
"""How long a container may wait on a cause that can go away (ErrImagePull, ImagePullBackOff; a
CreateContainerError or RunContainerError that does not name the command) before the operator trusts it.
The kubelet retries a pull after 10 s, doubling up to 300 s: 120 s is about four pulls, long enough for a
registry that blinked and short enough that a typo in an image name fails the job within minutes."""

# The spec itself is wrong: the image reference does not parse, a ConfigMap/Secret it names is missing (unless the
# shared table reads the message as the kubelet's own state: Services or a Secret/ConfigMap watch not synced yet).
_AT_ONCE = frozenset({"InvalidImageName", "CreateContainerConfigError"})
_IMAGE_PULL = frozenset({"ErrImagePull", "ImagePullBackOff"})
# The runtime could not create or start the container: the job's command when the message names it (below),
# else the node's trouble (a mount, a slow runtime): `unknown` after the grace, never the user's.
_RUNTIME_FAILED = frozenset({"CreateContainerError", "RunContainerError"})
# containerd's StartError (exit code 128) and dockershim's ContainerCannotRun: the command never ran.
_START_REASONS = frozenset({"StartError", "ContainerCannotRun"})
# The command is not there or cannot run: the shared table's entries (tandem/faults/signatures.yaml: runc's
# `exec: "x": ...`, newer runc's `exec /x: ...`, CRI-O's backquotes, a shell's `sh: 1: x: not found`), the same that
# name it in a log, so a message reads alike here and in `tandem classify --log`.
_COMMAND_FAILURES = frozenset({"CommandNotFound", "CommandNotExecutable"})
_SHELL_CODES = {127: "CommandNotFound", 126: "CommandNotExecutable"}


@dataclass(frozen=True)
class StartFailure:
    """Why a container never ran: `found` is the verdict (user: the job's image, config or command is wrong;
    unknown: the runtime failed for reasons of its own); `grace`: the cause may go away, so the verdict holds
    only once the pod has waited START_GRACE_SECONDS."""

    found: Classification
    grace: bool


def _command_failed(message: str) -> bool:
    reading = read_log(message)
    return reading is not None and reading.reason in _COMMAND_FAILURES


def _not_the_specs(message: str) -> FaultClass | None:
    """The class the shared table gives a CreateContainerConfigError's message when it is not the spec's fault:
    the kubelet's own state (its Service informer not synced: node; a Secret or ConfigMap watch that did not sync
    in time, which clears by itself: unknown). Such a verdict holds after the grace, as the same message reads in
    a log; None when the spec is to blame."""
    reading = read_log(message)
    if reading is None or reading.fault_class == FaultClass.USER:
        return None
    return reading.fault_class


def _verdict(pod: Obj, cls: FaultClass, reason: str, message: str, grace: bool) -> StartFailure:
    node = str(as_dict(pod.get("spec")).get("nodeName") or "") or None
    return StartFailure(Classification(cls, reason, short(message), "container-state", node=node), grace)


def _waiting(pod: Obj, name: str, waiting: Obj) -> StartFailure | None:
    reason, message = str(waiting.get("reason") or ""), str(waiting.get("message") or "")
    said = f"container {name}: {reason}: {message}"
    if reason in _AT_ONCE:
        kubelets_state = _not_the_specs(message)
        if kubelets_state is not None:
            return _verdict(pod, kubelets_state, reason, said, grace=True)
        return _verdict(pod, FaultClass.USER, reason, said, grace=False)
    if reason in _IMAGE_PULL:
        return _verdict(pod, FaultClass.USER, reason, said, grace=True)
    if reason in _RUNTIME_FAILED:
        if _command_failed(message):
            return _verdict(pod, FaultClass.USER, reason, said, grace=False)
        return _verdict(pod, FaultClass.UNKNOWN, reason, said, grace=True)
    return None


def _exit_code(terminated: Obj) -> int | None:
    code = terminated.get("exitCode")
    return code if isinstance(code, int) and not isinstance(code, bool) else None


def _terminated(pod: Obj, name: str, terminated: Obj) -> StartFailure | None:
    """The command did not run: the runtime's StartError, or a shell's 127/126, with the message that says so."""
    reason, message, code = str(terminated.get("reason") or ""), str(terminated.get("message") or ""), \
        _exit_code(terminated)
    said = f"container {name}: {reason}, exit code {code}: {message}"
    if (reason in _START_REASONS or code in (126, 127, 128)) and _command_failed(message):
        why = reason if reason in _START_REASONS else _SHELL_CODES.get(code or 0, "StartError")
        return _verdict(pod, FaultClass.USER, why, said, grace=False)
    return None


def _container_statuses(pod: Obj) -> list[Obj]:
    status = as_dict(pod.get("status"))
    return [as_dict(s) for s in as_list(status.get("initContainerStatuses")) + as_list(status.get("containerStatuses"))]


def start_failure(pod: Any) -> StartFailure | None:
    """Why the pod's container never ran its command, if that is what the kubelet reports."""
    pod = as_dict(pod)
    for status in _container_statuses(pod):
        name, state = str(status.get("name") or "container"), as_dict(status.get("state"))
        found = None
        if state.get("waiting"):
            found = _waiting(pod, name, as_dict(state["waiting"]))
        elif state.get("terminated"):
            found = _terminated(pod, name, as_dict(state["terminated"]))
        if found:
            return found
    return None
