"""Fault injection inside a script that uses nothing of Tandem (`tandem-run --inject-faults`, demos and tests):
tandem-run puts this folder on the command's PYTHONPATH, so every Python process of the command imports its
`sitecustomize` at start-up. That module watches what the process writes to stdout and stderr, and when it
writes a progress line of step N (tandem-run's pattern), the TANDEM_FAULT_INJECT specs of step N fire right
there, in the write, as tandem.sdk.progress fires them in an SDK script: the library's own error raised in the
training loop (an interconnect fault as the collective raises it), or the loop stopped forever (a hang). It
happens in the process itself, at that exact line, so it is as deterministic as the script. It replaces an
image's own sitecustomize for that command: use it for demos and tests only."""

from __future__ import annotations

from pathlib import Path

INJECT_SITE = Path(__file__).parent
PROGRESS_REGEX_ENV = "TANDEM_PROGRESS_REGEX"
