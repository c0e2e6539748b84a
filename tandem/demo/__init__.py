"""`tandem demo` (docs/design.md#the-demo-story): a job survives two HCCL faults and fails over to NVIDIA.

plan.py (the script), logparse.py / model.py / analysis.py (pure: log lines, observations, recovery
phases, the verdict), observe.py (watches and log files), view.py (the terminal), report.py (the
report folder), story.py (the shell that runs it all)."""

from tandem.demo.story import run_demo

__all__ = ["run_demo"]
