"""Why a training pod failed (docs/design.md#fault-classes): one Classification from every source, the first
that decides wins. Pure functions over plain Kubernetes objects: no I/O, no clock, no torch; malformed input
is unknown, never an exception.

Sources in order: the runtime's JSON termination message; the container state (OOMKilled, exit code,
signal, a container that cannot start: tandem.operator.container_start); pod conditions and status
(DisruptionTarget, Evicted, NodeLost); the node's conditions and taints; the accelerator fault reports for
the node (tandem.operator.device_reports); the log tail that terminationMessagePolicy FallbackToLogsOnError
leaves in `terminated.message` (tandem.operator.logtail: the exception's origin decides, and only lines the
library or driver printed make a hardware verdict `confident`).

The runtime's exit codes 3-6 name a class only when the runtime set them: the pod ran Tandem's launcher, or
the runtime left a report. Some evidence is weak: it says something but not enough to overrule a later
source (a SIGKILL without OOMKilled, a SIGABRT, exit code 1, a report of class unknown). The first weak
result (a symptom first) is kept and returned only when no later source decides.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import replace
from pathlib import PurePosixPath
from typing import Any

from tandem.operator.api_types import FaultClass
from tandem.operator.classification import (
    NODE_CLASSES,
    SYMPTOM_REASONS,
    Classification,
    Obj,
    Source,
    as_dict,
    as_list,
    short,
)
from tandem.operator.container_start import START_GRACE_SECONDS, StartFailure, start_failure
from tandem.operator.device_reports import DeviceFault, nvidia_faults
from tandem.operator.logtail import MESSAGE_LIMIT, read_log
from tandem.operator.observe import parse_report
from tandem.operator.podspec import CONTAINER, RUNTIME_COMMAND
from tandem.runtime.faults import EXIT_CODES

__all__ = [
    "NODE_CLASSES", "START_GRACE_SECONDS", "SYMPTOM_REASONS", "Classification", "Obj", "Source", "StartFailure",
    "classify_log", "classify_node", "classify_pod", "node_reports", "runs_launcher", "start_failure",
]  # fmt: skip

_dict, _list, _short = as_dict, as_list, short


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# --- the log tail (tandem.operator.logtail reads it) ---------------------------------------------------------

def _from_log(text: str) -> Classification | None:
    found = read_log(text)
    if found is None:
        return None
    return Classification(found.fault_class, found.reason, found.message, "log-tail", confident=found.confident)


def classify_log(text: str) -> Classification:
    """Classify a log tail on its own (`tandem classify --log`)."""
    found = _from_log(text)
    if found:
        return found
    if not isinstance(text, str) or not text.strip():
        return Classification(FaultClass.UNKNOWN, "NoLog", "the log is empty", "none")
    return Classification(FaultClass.UNKNOWN, "Unrecognized", _short(text[-MESSAGE_LIMIT:]), "log-tail")


# --- the node ----------------------------------------------------------------------------------------------------

_NODE_TAINTS = {
    "node.kubernetes.io/unreachable": "NodeUnreachable",
    "node.kubernetes.io/not-ready": "NodeNotReady",
    "node.kubernetes.io/out-of-service": "NodeOutOfService",
}
# A chip fault explains a link fault on the same chip more often than the other way round.
_REPORT_ORDER = {FaultClass.DEVICE: 0, FaultClass.INTERCONNECT: 1, FaultClass.NODE: 2}


def _node_name(node: Any) -> str | None:
    name = _dict(_dict(node).get("metadata")).get("name")
    return str(name) if name else None


def _node_status(node: Obj) -> Classification | None:
    name = _node_name(node) or "the node"
    status = _dict(node.get("status"))
    for cond in _list(status.get("conditions")):
        cond = _dict(cond)
        if cond.get("type") == "Ready" and cond.get("status") in ("False", "Unknown"):
            reason = "NodeNotReady" if cond["status"] == "False" else "NodeUnreachable"
            detail = cond.get("message") or cond.get("reason") or ""
            return Classification(FaultClass.NODE, reason, _short(f"node {name} Ready={cond['status']}: {detail}"),
                                  "node", node=_node_name(node))
    for taint in _list(_dict(node.get("spec")).get("taints")):
        reason = _NODE_TAINTS.get(str(_dict(taint).get("key")))
        if reason:
            return Classification(FaultClass.NODE, reason, f"node {name} has the taint {taint['key']}", "node",
                                  node=_node_name(node))
    for cond in _list(status.get("conditions")):
        cond = _dict(cond)
        if cond.get("type") == "NetworkUnavailable" and cond.get("status") == "True":
            return Classification(FaultClass.NODE, "NetworkUnavailable",
                                  _short(f"node {name}: {cond.get('message') or 'network unavailable'}"), "node",
                                  node=_node_name(node))
    if _dict(node.get("metadata")).get("deletionTimestamp"):
        return Classification(FaultClass.NODE, "NodeDeleted", f"node {name} is being deleted", "node",
                              node=_node_name(node))
    return None


def node_reports(node: Obj | None, device_faults: Sequence[DeviceFault]) -> list[DeviceFault]:
    """The accelerator fault reports for this node: its own GPU conditions and the reports given (which may
    already include them: the operator's shared view does; one fault counts once)."""
    name = _node_name(node)
    reports = list(dict.fromkeys([*nvidia_faults(node if isinstance(node, dict) else {}),
                                  *(f for f in device_faults or [] if isinstance(f, DeviceFault))]))
    return [f for f in reports if name is None or f.node == name]


def classify_node(node: Obj | None, device_faults: Sequence[DeviceFault]) -> Classification | None:
    """Is this node faulty right now? Its conditions and taints first, then the fault reports for it.
    `node` None means "not known", not "deleted": only the reports can then tell."""
    name = _node_name(node)
    if isinstance(node, dict):
        found = _node_status(node)
        if found:
            return found
    reports = node_reports(node, device_faults)
    if not reports:
        return None
    fault = min(reports, key=lambda f: _REPORT_ORDER.get(f.fault_class, 3))
    more = f" (and {len(reports) - 1} more)" if len(reports) > 1 else ""
    return Classification(fault.fault_class, fault.reason, _short(f"{fault.source}: {fault.message}{more}"),
                          "device-report", node=name or fault.node or None)


# --- the pod -----------------------------------------------------------------------------------------------------

_RUNTIME_CODES = {code: FaultClass(cls) for cls, code in EXIT_CODES.items() if cls not in ("none", "unknown")}
# Codes that name a class only when Tandem's runtime set them (2 is argparse's usage error, and a missing
# script's, under any Python program: user either way).
_LAUNCHER_ONLY_CODES = frozenset(code for code, cls in _RUNTIME_CODES.items() if cls != FaultClass.USER)
_STATUS_REASONS = {
    "Evicted": "Evicted", "NodeLost": "NodeLost", "UnexpectedAdmissionError": "UnexpectedAdmissionError",
    "NodeAffinity": "NodeAffinity", "Shutdown": "NodeShutdown", "Terminated": "NodeShutdown",
}  # fmt: skip


def _statuses(pod: Obj) -> list[Obj]:
    status = _dict(pod.get("status"))
    return [_dict(s) for s in _list(status.get("containerStatuses")) + _list(status.get("initContainerStatuses"))]


def _terminated(pod: Obj) -> list[tuple[str, Obj]]:
    found = []
    for status in _statuses(pod):
        terminated = _dict(_dict(status.get("state")).get("terminated"))
        if terminated:
            found.append((str(status.get("name") or "container"), terminated))
    return found


def _from_report(report: Obj) -> Classification | None:
    try:
        cls = FaultClass(report.get("class"))
    except ValueError:
        return None  # "none", or a class this operator does not know
    return Classification(cls, str(report.get("reason") or "Reported"), _short(str(report.get("message") or "")),
                          "termination-message")


def _exit_code(terminated: Obj) -> int | None:
    code = terminated.get("exitCode")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    sig = terminated.get("signal")
    return 128 + sig if isinstance(sig, int) and not isinstance(sig, bool) and sig > 0 else None


def runs_launcher(pod: Obj) -> bool | None:
    """Does the pod's training container run Tandem's launcher (`tandem-train`, the command the operator gives
    a job without spec.container.command)? None when the pod's spec does not show its containers."""
    containers = [_dict(c) for c in _list(_dict(_dict(pod).get("spec")).get("containers"))]
    if not containers:
        return None
    trainer = next((c for c in containers if c.get("name") == CONTAINER), containers[0])
    command = trainer.get("command")
    if not isinstance(command, list) or not command or not isinstance(command[0], str):
        return False  # the image's own entrypoint: not one the operator chose
    return PurePosixPath(command[0]).name == RUNTIME_COMMAND[0]


def _from_container(name: str, terminated: Obj, runtime_codes: bool = True) -> tuple[Classification | None, bool]:
    """(classification, decisive) for one terminated container; `runtime_codes`: its exit code is the runtime's."""
    reason, code = str(terminated.get("reason") or ""), _exit_code(terminated)

    def make(cls: FaultClass, why: str, message: str) -> Classification:
        return Classification(cls, why, _short(message), "container-state")

    if reason == "OOMKilled":
        return make(FaultClass.OOM, "OOMKilled", f"container {name} was killed for exceeding its memory limit "
                                                 f"(OOMKilled, exit code {code})"), True
    if reason == "ContainerStatusUnknown":
        return make(FaultClass.NODE, "ContainerStatusUnknown", f"container {name}: the kubelet lost track of it "
                                                               f"({terminated.get('message') or 'no message'})"), True
    if code is None or code == 0:
        return None, False
    if code in _LAUNCHER_ONLY_CODES and not runtime_codes:
        return make(FaultClass.UNKNOWN, "ExitCode", f"container {name} exited with code {code}; its command is not "
                    "Tandem's launcher and left no report, so the code names no class"), False
    if code in _RUNTIME_CODES:
        cls = _RUNTIME_CODES[code]
        return make(cls, "ExitCode", f"container {name} exited with code {code}, the runtime's code for {cls.value}, "
                                     "and left no termination message"), True
    if code > 128:
        try:
            sig = signal.Signals(code - 128)
        except ValueError:
            return make(FaultClass.UNKNOWN, "Crashed", f"container {name} exited with code {code}"), False
        if sig == signal.SIGTERM:
            return make(FaultClass.NODE, "Terminated", f"container {name} was stopped by SIGTERM"), False
        # SIGKILL without OOMKilled: the kubelet or the runtime killed it after a grace period. SIGABRT: a C++
        # abort, which a collective watchdog does but so does any failed assertion; the log tail tells which.
        why = {signal.SIGKILL: "Killed", signal.SIGABRT: "Aborted"}.get(sig, "Crashed")
        return make(FaultClass.UNKNOWN, why, f"container {name} died of {sig.name} (exit code {code})"), False
    return make(FaultClass.UNKNOWN, "ExitCode", f"container {name} exited with code {code}"), False


def _from_start(pod: Obj) -> tuple[Classification | None, bool]:
    """A container that never ran: decisive when it is the user's; a cause that may go away is weak here."""
    failure = start_failure(pod)
    if failure is None:
        return None, False
    return failure.found, failure.found.fault_class == FaultClass.USER


def _from_pod_status(pod: Obj) -> Classification | None:
    status = _dict(pod.get("status"))
    reason = str(status.get("reason") or "")
    message = str(status.get("message") or "")
    if reason in _STATUS_REASONS or reason.startswith("OutOf"):
        return Classification(FaultClass.NODE, _STATUS_REASONS.get(reason, reason), _short(message or reason),
                              "pod-condition")
    for cond in _list(status.get("conditions")):
        cond = _dict(cond)
        if cond.get("type") == "DisruptionTarget" and cond.get("status") == "True":
            why = str(cond.get("reason") or "DisruptionTarget")
            return Classification(FaultClass.NODE, why, _short(str(cond.get("message") or why)), "pod-condition")
    return None


def classify_pod(pod: Obj, node: Obj | None, device_faults: Sequence[DeviceFault], *,
                 launcher: bool | None = None) -> Classification:
    """Why a pod failed (phase Failed) or is lost (on a dead node). `node` is the pod's node when known.
    `launcher`: whether the pod ran Tandem's launcher; None reads it from the pod's spec (`runs_launcher`), and a
    pod whose spec does not say is taken for a custom command."""
    pod = _dict(pod)
    # A pod that was never bound cannot have been killed by a node: only its own spec names its node.
    node_name = str(_dict(pod.get("spec")).get("nodeName") or "")
    terminated = _terminated(pod)
    reports = [r for _, t in terminated if (r := parse_report(t.get("message"))) is not None]
    counters = next(iter(reports), {})
    weak: list[Classification] = []

    def finish(found: Classification) -> Classification:
        return replace(found, step=_count(counters.get("step")), checkpoint_step=_count(counters.get("checkpointStep")),
                       resumed_from=_count(counters.get("resumedFrom")), node=found.node or node_name or None)

    # (a) The runtime's report. "unknown" is its own admission that it could not tell: let the others try.
    for report in reports:
        found = _from_report(report)
        if found and found.fault_class != FaultClass.UNKNOWN:
            return finish(found)
        if found:
            weak.append(found)
    # (b) The container state; OOMKilled in any container beats an exit code in another.
    # The runtime's exit codes mean a class only where the runtime set them: its launcher ran, or it reported.
    runtime_codes = bool(reports) or bool(runs_launcher(pod) if launcher is None else launcher)
    results = [_from_container(name, t, runtime_codes) for name, t in terminated]
    results.sort(key=lambda r: r[0] is None or r[0].reason != "OOMKilled")
    results.append(_from_start(pod))
    for found, decisive in results:
        if found and decisive:
            return finish(found)
        if found:
            weak.append(found)
    # (c) Pod conditions and status; (d) the node; (e) the fault reports for the node.
    found = _from_pod_status(pod)
    if found:
        return finish(found)
    if node_name:
        found = classify_node(node if isinstance(node, dict) else None,
                              [f for f in device_faults or [] if isinstance(f, DeviceFault) and f.node == node_name])
        if found:
            return finish(found)
    # (f) The log tail, in the messages that are not reports.
    for _, t in terminated:
        message = t.get("message")
        if parse_report(message) is None and isinstance(message, str):
            found = _from_log(message)
            if found and found.fault_class != FaultClass.UNKNOWN:
                return finish(found)
            if found:
                weak.append(found)
    if weak:
        # A symptom (torchrun stopping its workers) says more than the bare exit code it ended with: the core
        # ranks it below any rank's root cause.
        return finish(min(weak, key=lambda c: not c.symptom))
    status = _dict(pod.get("status"))
    message = str(status.get("message") or status.get("reason") or "")
    return finish(Classification(FaultClass.UNKNOWN, "Unknown", _short(message or "no source explains the failure"),
                                 "none"))
