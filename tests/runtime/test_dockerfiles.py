"""The runtime images cannot be built here (no Docker engine): they are linted and checked instead.
The hadolint test covers the operator image (operator/Dockerfile) as well; tests/helm checks the rest of it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from linters import hadolint

REPO = Path(__file__).resolve().parents[2]
RUNTIME = REPO / "runtime"
IMAGES = {"Dockerfile.cuda": "[runtime]", "Dockerfile.ascend": "[runtime,npu]"}
DOCKERFILES = [f"runtime/{name}" for name in sorted(IMAGES)] + ["operator/Dockerfile"]


@pytest.mark.parametrize("name", DOCKERFILES)
def test_dockerfile_passes_hadolint(name: str) -> None:
    result = subprocess.run([hadolint(), str(REPO / name)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


@pytest.mark.parametrize(("name", "extras"), sorted(IMAGES.items()))
def test_dockerfile_installs_the_package_with_its_extras_and_runs_as_non_root(name: str, extras: str) -> None:
    text = (RUNTIME / name).read_text()
    assert f'/opt/tandem{extras}"' in text
    users = re.findall(r"^USER\s+(\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert re.search(r'^ENTRYPOINT \["tandem-train"\]', text, flags=re.MULTILINE)
