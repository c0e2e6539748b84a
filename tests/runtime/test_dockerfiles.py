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


def test_the_npu_extra_pins_the_torch_npu_line_the_ascend_image_installs() -> None:
    """torch_npu X.Y.Z needs torch X.Y.Z: the image installs torch-npu==TORCH_VERSION, and the `npu` extra must
    admit that version and no other minor line (an unpinned extra let pip pick a torch_npu for another torch)."""
    import tomllib

    from packaging.requirements import Requirement
    from packaging.version import Version

    text = (RUNTIME / "Dockerfile.ascend").read_text()
    version = Version(re.search(r"^ARG TORCH_VERSION=(\S+)", text, flags=re.MULTILINE).group(1))  # type: ignore[union-attr]
    assert '"torch-npu==${TORCH_VERSION}"' in text
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    (npu,) = (Requirement(r) for r in extras["npu"])
    assert npu.name == "torch-npu" and version in npu.specifier
    assert Version(f"{version.major}.{version.minor + 1}") not in npu.specifier
    assert Version(f"{version.major}.{version.minor}") in npu.specifier


def test_the_ascend_image_loads_torch_npu_only_through_the_device_seam() -> None:
    assert re.search(r"TORCH_DEVICE_BACKEND_AUTOLOAD=0", (RUNTIME / "Dockerfile.ascend").read_text())
