"""Keeping one pod's trouble to that pod: the simulated kubelet handles every pod of every node on
one loop, so an exception raised while it handles one pod (a spec it does not expect, a bug of its
own) would otherwise end the service, kill every running pod and leave every later one Pending.
A real kubelet never stops over one pod; here the pod turns Failed with reason `KubeletError` and
a Warning Event naming the exception, the error is logged, and every other pod carries on."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from tandem.localcluster.store import Obj

KUBELET_ERROR = "KubeletError"
log = logging.getLogger("tandem.localcluster.kubelet")


def describe(exc: BaseException) -> str:
    """The message the failed pod carries: what went wrong, and that it is the double's doing."""
    return f"the local kubelet failed on this pod: {type(exc).__name__}: {exc}"


def pod_name(pod: Obj) -> str:
    meta = pod.get("metadata") or {}
    return f"{meta.get('namespace')}/{meta.get('name')}"


@contextlib.contextmanager
def contained(what: str, fail: Callable[[str], None]) -> Iterator[None]:
    """Run the block for the pod `what` names; an Exception it raises is logged and `fail(message)` reports it on
    that pod. Cancellation (a BaseException) still stops the service, as it should."""
    try:
        yield
    except Exception as exc:
        log.exception("local kubelet: handling pod %s failed", what)
        try:
            fail(describe(exc))
        except Exception:  # reporting may trip on the same broken pod: logged, never raised
            log.exception("local kubelet: could not mark pod %s failed", what)
