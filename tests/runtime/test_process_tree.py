"""tandem.runtime.process_tree on real processes: the tree below a process crosses sessions, and ending it kills only
the processes it noted (a pid that now names another process is left alone)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace

from tandem.runtime import process_tree

CHILD = """
import subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"], start_new_session=True)
print(grandchild.pid, flush=True)
time.sleep(120)
"""


def _gone(pid: int, within: float = 10.0) -> bool:
    deadline = time.monotonic() + within  # a SIGKILLed process is gone within milliseconds
    while process_tree._stat(pid) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    return process_tree._stat(pid) is None


def test_the_tree_crosses_sessions_and_ending_it_kills_only_what_it_noted() -> None:
    child = subprocess.Popen([sys.executable, "-P", "-c", CHILD], stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    grandchild = int(child.stdout.readline())
    try:
        below = process_tree.tree(child.pid)
        assert [p.pid for p in below] == [grandchild]
        stale = replace(below[0], started=below[0].started + 1)  # the same pid, another process
        assert process_tree.end([stale]) == [] and process_tree._stat(grandchild) is not None
        child.kill()
        child.wait()
        assert process_tree.tree(child.pid) == []  # an orphan is no longer below its dead parent...
        assert process_tree.end(below) == [grandchild] and _gone(grandchild)  # ...but the noted tree still ends it
    finally:
        child.kill()
        if process_tree._stat(grandchild) is not None:
            os.kill(grandchild, signal.SIGKILL)
