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

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from tandem.faults import read_log
from tandem.faults.precedence import ORDER
from tandem.faults.taxonomy import EXIT_CODES, LAUNCHER_ONLY_CODES, MESSAGE_LIMIT, FaultClass, signal_meaning
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
from tandem.operator.observe import disruption_target, parse_report
from tandem.operator.podspec import CONTAINER
from tandem.operator.podtemplate import is_launcher

__all__ = [
    "NODE_CLASSES", "START_GRACE_SECONDS", "SYMPTOM_REASONS", "Classification", "Obj", "Source", "StartFailure",
    "classify_log", "classify_node", "classify_pod", "node_reports", "runs_launcher", "start_failure",
]  # fmt: skip

_dict, _list, _short = as_dict, as_list, short


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


# --- the log (tandem.faults.reading reads it) ---------------------------------------------------------------

def _from_log(text: str) -> Classification | None:
    found = read_log(text)
    if found is None:
        return None
    return Classification(found.fault_class, found.reason, found.message, "log-tail", explanation=found.explain())


def classify_log(text: str) -> Classification:
    """Classify a log on its own (`tandem classify --log`): a tail or a whole `kubectl logs` output."""
    found = _from_log(text)
    if found:
        return found
    if not isinstance(text, str) or not text.strip():
        return Classification(FaultClass.UNKNOWN, "NoLog", "the log is empty", "none")
    return Classification(FaultClass.UNKNOWN, "Unrecognized", _short(text[-MESSAGE_LIMIT:]), "log-tail",
                          explanation={"decidedBy": "no table entry, no traceback: nothing the table knows",
                                       "matches": []})


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


def classify_waiting(pod: Obj, fault: Obj) -> Classification | None:
    """A running pod whose supervisor kept it after its workers faulted (tandem.in_place): the fault it reported,
    read as its termination message would be. None for a class this operator does not know."""
    found = _from_report(fault)
    if found is None:
        return None
    node = str(_dict(_dict(pod).get("spec")).get("nodeName") or "") or None
    return replace(found, step=_count(fault.get("step")), checkpoint_step=_count(fault.get("checkpointStep")),
                   resumed_from=_count(fault.get("resumedFrom")), node=node)


def _exit_code(terminated: Obj) -> int | None:
    code = terminated.get("exitCode")
    if isinstance(code, int) and not isinstance(code, bool):
        return code
    sig = terminated.get("signal")
    return 128 + sig if isinstance(sig, int) and not isinstance(sig, bool) and sig > 0 else None


def runs_launcher(pod: Obj) -> bool | None:
    """Does the pod's training container run one of Tandem's launchers (`tandem-train`, the command the operator
    gives a job without a command, or `tandem-run`, which supervises a team's command and gives its exit codes
    the same meaning)? None when the pod's spec does not show its containers."""
    containers = [_dict(c) for c in _list(_dict(_dict(pod).get("spec")).get("containers"))]
    if not containers:
        return None
    trainer = next((c for c in containers if c.get("name") == CONTAINER), containers[0])
    command = trainer.get("command")
    if not isinstance(command, list) or not command or not isinstance(command[0], str):
        return False  # the image's own entrypoint: not one the operator chose
    return is_launcher(command)


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
    # Codes 3-7 name a class only when Tandem's launcher set them (2 is argparse's usage error, and a missing
    # script's, under any Python program: user either way).
    if code in LAUNCHER_ONLY_CODES and not runtime_codes:
        return make(FaultClass.UNKNOWN, "ExitCode", f"container {name} exited with code {code}; its command is not "
                    "Tandem's launcher and left no report, so the code names no class"), False
    if code in _RUNTIME_CODES:
        cls = _RUNTIME_CODES[code]
        return make(cls, "ExitCode", f"container {name} exited with code {code}, the runtime's code for {cls.value}, "
                                     "and left no termination message"), True
    if code > 128:
        # SIGKILL without OOMKilled: the kubelet or the runtime killed it after a grace period. SIGABRT: a C++
        # abort, which a collective watchdog does but so does any failed assertion; the log tells which.
        cls, why, sig_name = signal_meaning(code - 128)
        if sig_name.startswith("signal "):
            return make(FaultClass.UNKNOWN, "Crashed", f"container {name} exited with code {code}"), False
        verb = "was stopped by" if why == "Terminated" else "died of"
        # Never enough to blame the node: a SIGTERM alone is as likely a `kubectl delete pod` as a node going away.
        return replace(make(cls, why, f"container {name} {verb} {sig_name} (exit code {code})"), confident=False), False
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
    if cond := disruption_target(pod):
        why = str(cond.get("reason") or "DisruptionTarget")
        return Classification(FaultClass.NODE, why, _short(str(cond.get("message") or why)), "pod-condition")
    return None


def _readers(pod: Obj, node: Obj | None, device_faults: Sequence[DeviceFault], terminated: list[tuple[str, Obj]],
             reports: list[Obj], launcher: bool | None) -> dict[str, Callable[[], list[tuple[Classification, bool]]]]:
    """Per evidence source (tandem.faults.precedence), what it says: (classification, decisive) pairs."""
    node_name = str(_dict(pod.get("spec")).get("nodeName") or "")
    node_faults = [f for f in device_faults or [] if isinstance(f, DeviceFault) and f.node == node_name]

    def from_reports() -> list[tuple[Classification, bool]]:
        # "unknown" is the runtime's own admission that it could not tell: let the others try.
        found = [c for r in reports if (c := _from_report(r)) is not None]
        return [(c, c.fault_class != FaultClass.UNKNOWN) for c in found]

    def from_containers() -> list[tuple[Classification, bool]]:
        # OOMKilled in any container beats an exit code in another. The runtime's exit codes mean a class only
        # where the runtime set them: its launcher ran, or it reported.
        runtime_codes = bool(reports) or bool(runs_launcher(pod) if launcher is None else launcher)
        results = [_from_container(name, t, runtime_codes) for name, t in terminated]
        results.sort(key=lambda r: r[0] is None or r[0].reason != "OOMKilled")
        results.append(_from_start(pod))
        return [(c, decisive) for c, decisive in results if c is not None]

    def from_pod_status() -> list[tuple[Classification, bool]]:
        found = _from_pod_status(pod)
        return [(found, True)] if found else []

    def from_node() -> list[tuple[Classification, bool]]:
        # A pod that was never bound cannot have been killed by a node: only its own spec names its node.
        found = _node_status(node) if node_name and isinstance(node, dict) else None
        return [(found, True)] if found else []

    def from_device_reports() -> list[tuple[Classification, bool]]:
        found = classify_node(None, node_reports(node, node_faults)) if node_name else None
        return [(replace(found, node=node_name), True)] if found else []

    def from_logs() -> list[tuple[Classification, bool]]:
        found = [c for _, t in terminated if parse_report(t.get("message")) is None
                 and isinstance(t.get("message"), str) and (c := _from_log(t["message"])) is not None]
        return [(c, c.fault_class != FaultClass.UNKNOWN) for c in found]

    readers = {"termination-message": from_reports, "container-state": from_containers,
               "pod-condition": from_pod_status, "node": from_node, "device-report": from_device_reports,
               "log-tail": from_logs}
    assert tuple(readers) == ORDER, "every source of tandem.faults.precedence has one reader, in its order"
    return readers


def _named_by_the_table(found: Classification) -> bool:
    rule = (found.explanation or {}).get("rule")
    return found.source == "log-tail" and isinstance(rule, int) and 1 <= rule <= 4


def _explained(found: Classification, seen: list[tuple[Classification, bool]]) -> Classification:
    others = [f"{c.source}: {c.fault_class.value}/{c.reason}{'' if decisive else ' (weak)'}"
              for c, decisive in seen if c is not found]
    return replace(found, explanation={**(found.explanation or {}), "decidedBySource": found.source,
                                       "order": list(ORDER), "otherSources": others})


def classify_pod(pod: Obj, node: Obj | None, device_faults: Sequence[DeviceFault], *,
                 launcher: bool | None = None) -> Classification:
    """Why a pod failed (phase Failed) or is lost (on a dead node). `node` is the pod's node when known.
    `launcher`: whether the pod ran Tandem's launcher; None reads it from the pod's spec (`runs_launcher`), and a
    pod whose spec does not say is taken for a custom command. The sources are read in the order of
    tandem.faults.precedence; the first decisive result wins, else the best weak one."""
    pod = _dict(pod)
    node_name = str(_dict(pod.get("spec")).get("nodeName") or "")
    terminated = _terminated(pod)
    reports = [r for _, t in terminated if (r := parse_report(t.get("message"))) is not None]
    counters = next(iter(reports), {})

    def finish(found: Classification) -> Classification:
        return replace(found, step=_count(counters.get("step")), checkpoint_step=_count(counters.get("checkpointStep")),
                       resumed_from=_count(counters.get("resumedFrom")), node=found.node or node_name or None)

    seen: list[tuple[Classification, bool]] = []
    for read in _readers(pod, node, device_faults, terminated, reports, launcher).values():
        said = read()
        seen.extend(said)
        decisive = next((c for c, d in said if d), None)
        if decisive:
            return finish(_explained(decisive, seen))
    weak = [c for c, _ in seen]
    if weak:
        # A symptom (torchrun stopping its workers, a collective that timed out) says more than the bare exit code
        # it ended with, and so does an entry of the signature table that proves no class (CANN's "the last
        # process may still hold the device"): the core ranks them below any rank's root cause.
        return finish(_explained(min(weak, key=lambda c: (not c.symptom, not _named_by_the_table(c))), seen))
    status = _dict(pod.get("status"))
    message = str(status.get("message") or status.get("reason") or "")
    return finish(Classification(FaultClass.UNKNOWN, "Unknown", _short(message or "no source explains the failure"),
                                 "none"))
