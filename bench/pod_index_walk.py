"""What a reconcile pays to read pods from the operator's pod index (operator/pod_index.py), at cluster sizes the
scale bench cannot reach here: its own job's pods (every reconcile), and the walk over every other job's pods that
a decision needing room reads (a new attempt, a fault, a long wait). Before, every reconcile walked; now the walk
is lazy (`PodIndex.others`) and a steady reconcile never takes it. Both are timed in the same run, per reconcile.

    .venv/bin/python -P bench/pod_index_walk.py [--jobs 500] [--pods 8]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

from tandem.operator.pod_index import PodIndex
from tandem.operator.podspec import ATTEMPT_LABEL, JOB_LABEL, owned_by


def pod(job: int, rank: int) -> dict[str, Any]:
    return {"metadata": {"namespace": "default", "name": f"job{job}-a1-{rank}", "uid": f"pod-{job}-{rank}",
                         "resourceVersion": "1", "labels": {JOB_LABEL: f"job{job}", ATTEMPT_LABEL: "1"},
                         "ownerReferences": [{"uid": f"job-{job}", "controller": True}]},
            "spec": {"nodeName": f"node-{job}-{rank}"}, "status": {"phase": "Running"}}


def per_call(action: Callable[[], object], repeat: int) -> float:
    """Milliseconds per call, the best of three rounds."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for _ in range(repeat):
            action()
        best = min(best, (time.perf_counter() - start) / repeat * 1e3)
    return best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=500)
    parser.add_argument("--pods", type=int, default=8)
    args = parser.parse_args(argv)
    index = PodIndex()
    index.seed([pod(j, r) for j in range(args.jobs) for r in range(args.pods)])
    uid = "job-7"
    own = per_call(lambda: index.job_pods("default", "job7", uid), 1000)
    before = per_call(lambda: [p for p in index.pods([]) if not owned_by(p, uid)], 50)
    unread = per_call(lambda: index.others([], uid), 1000)
    read = per_call(lambda: list(index.others([], uid)), 50)
    print(f"{args.jobs} jobs x {args.pods} pods in the index ({args.jobs * args.pods} pods), ms per reconcile:")
    print(f"  its own pods (job_pods): {own:.3f}")
    print(f"  other jobs' pods, walked by every reconcile (before): {before:.2f}")
    print(f"  other jobs' pods, not read (a steady reconcile now): {unread:.4f}")
    print(f"  other jobs' pods, read (a decision that needs room, now): {read:.2f}")
    print(f"steady reconcile's pod reads, before / now: {(own + before) / (own + unread):.0f}x")


if __name__ == "__main__":
    main()
