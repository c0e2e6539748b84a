"""In-place restart: the protocol between the operator and the supervisor in each pod (`tandem-train`,
`tandem-run`). One module, imported by both sides, with no Kubernetes client and no torch.

Operator -> supervisor: the pod's `tandem.dev/attempt` label. The operator restarts a gang in place by
patching the label of every pod that stays to the new attempt; the kubelet writes the pod's labels into a
downward API volume (`TANDEM_POD_LABELS`), and the supervisor, which polls that file, stops its workers and
starts the new attempt's from the newest checkpoint. One verb more for the operator (patch on pods), no network
path into the pod, no token, no API access for the pod: whoever may patch the pod may already delete it.

Supervisor -> operator: one JSON line on the container's output, `tandem-supervisor: {...}` (the operator
already reads pod logs), and the container's readiness (an exec probe on `TANDEM_READY_FILE`), which makes
the kubelet update the pod, and so wakes the operator, when a supervisor's workers fault or reach their first
step. The log line says what happened; the readiness only rings the bell.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

ATTEMPT_LABEL = "tandem.dev/attempt"
# Set by the operator on the pods whose supervisor takes part (a Tandem launcher with in-place restart on).
IN_PLACE_ANNOTATION = "tandem.dev/in-place-restart"

# The contract's paths and variables (pods that take part only).
POD_INFO_DIR = "/etc/tandem/pod"  # the downward API volume: its `labels` file
POD_LABELS_ENV = "TANDEM_POD_LABELS"
SUPERVISOR_DIR = "/var/run/tandem"  # an emptyDir: the ready file
READY_FILE_ENV = "TANDEM_READY_FILE"
# How long a supervisor whose workers faulted waits for the operator before it exits with the fault (the
# operator's deadline, so an operator that is away ends in an ordinary full restart).
WAIT_ENV = "TANDEM_IN_PLACE_WAIT_SECONDS"

# Faults after which a supervisor keeps its pod and waits for the operator: nothing says the node is bad.
# After any other class it exits as before (the pod fails, and moves if the operator says so).
WAITS_IN_PLACE = frozenset({"interconnect", "unknown"})
# Faults the operator may answer with an in-place restart of the pods that stay (the pod where it was seen
# moves when its node is faulty, excluded or gone). oom and storage restart in full: a fresh pod and the
# longer storage backoff are the point there; user faults fail the job.
RESTARTS_IN_PLACE = frozenset({"interconnect", "device", "node", "unknown"})

LINE_PREFIX = "tandem-supervisor: "
_LINE = re.compile(r"tandem-supervisor: (\{.*\})\s*$")

State = Literal["faulted", "restarting", "stepping"]


@dataclass(frozen=True)
class SupervisorReport:
    """The newest thing a pod's supervisor said: its workers `faulted` (with the fault, waiting for the
    operator), a new attempt is `restarting`, or the attempt's workers are `stepping` (past their first step)."""

    attempt: int
    state: State
    fault: dict[str, Any] | None = None  # the termination message's fields: class, reason, message, rank, step...
    step: int | None = None

    def line(self) -> str:
        body: dict[str, Any] = {"attempt": self.attempt, "state": self.state}
        if self.fault is not None:
            body["fault"] = self.fault
        if self.step is not None:
            body["step"] = self.step
        return LINE_PREFIX + json.dumps(body, sort_keys=True, separators=(",", ":"))


def last_report(log_text: str) -> SupervisorReport | None:
    """The newest well-formed supervisor line in a log; other output and malformed lines are ignored. A job's
    own program could print such a line, but it only speaks for its own job, which it can crash anyway."""
    for line in reversed(log_text.splitlines()):
        found = _LINE.search(line)
        if found is None:
            continue
        try:
            body = json.loads(found.group(1))
            attempt, state = body["attempt"], body["state"]
            fault, step = body.get("fault"), body.get("step")
        except (ValueError, KeyError, TypeError):
            continue
        if (isinstance(attempt, int) and not isinstance(attempt, bool) and attempt >= 1
                and state in ("faulted", "restarting", "stepping")
                and (fault is None or isinstance(fault, dict)) and (step is None or isinstance(step, int))):
            return SupervisorReport(attempt, state, fault, step)
    return None


def attempt_in_labels(text: str) -> int | None:
    """The attempt in a downward API labels file (`key="value"` lines, values quoted and escaped)."""
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == ATTEMPT_LABEL:
            try:
                raw = json.loads(value.strip())
            except ValueError:
                return None
            return int(raw) if isinstance(raw, str) and raw.isdigit() else None
    return None


def attempt_token(uid: str, attempt: int) -> str:
    """The attempt's fence token (TANDEM_ATTEMPT_TOKEN): the operator sets it on new pods; a supervisor that
    restarts in place as a newer attempt derives the same one."""
    return hashlib.sha256(f"{uid}/{attempt}".encode()).hexdigest()[:32]
