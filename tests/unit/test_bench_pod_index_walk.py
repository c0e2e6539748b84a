"""bench/pod_index_walk.py runs and times what it says: the other jobs' pods it walks are every pod but the job's
own."""

from __future__ import annotations

import io
from contextlib import redirect_stdout

from bench_modules import bench_module

from tandem.operator.pod_index import PodIndex


def test_the_walk_is_every_other_jobs_pod_and_the_bench_prints_its_ratio() -> None:
    bench = bench_module("pod_index_walk")
    index = PodIndex()
    index.seed([bench.pod(j, r) for j in range(3) for r in range(2)])
    assert sorted(p["metadata"]["name"] for p in index.others([], "job-1")) == [
        "job0-a1-0", "job0-a1-1", "job2-a1-0", "job2-a1-1"]
    out = io.StringIO()
    with redirect_stdout(out):
        bench.main(["--jobs", "5", "--pods", "2"])
    assert "5 jobs x 2 pods in the index (10 pods)" in out.getvalue()
    assert "steady reconcile's pod reads, before / now:" in out.getvalue()
