"""tests/helm: the chart rendered by Helm's engine, and the operator run the way it would deploy."""

from __future__ import annotations

import sys
from pathlib import Path

# The test modules here share helm_support.py; with --import-mode=importlib their folder is not on sys.path.
sys.path.insert(0, str(Path(__file__).parent))
