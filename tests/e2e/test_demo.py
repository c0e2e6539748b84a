"""`tandem demo --fast` end to end: a local cluster, the operator subprocess, the real runtime."""

import subprocess
import sys
from pathlib import Path

import yaml


def test_demo_job_trains_to_success(tmp_path: Path) -> None:
    tandem = str(Path(sys.executable).with_name("tandem"))
    result = subprocess.run([tandem, "demo", "--fast", "--report", str(tmp_path)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "llama-demo Succeeded" in result.stdout
    job = yaml.safe_load((tmp_path / "trainingjob.yaml").read_text())
    assert job["status"]["phase"] == "Succeeded" and job["status"]["pool"] == "ascend-910b"
    assert "Traceback" not in (tmp_path / "operator.log").read_text()
