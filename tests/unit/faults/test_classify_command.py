"""`tandem classify` on what users have at hand: a whole `kubectl logs` output, a folder of rank logs, a Pod; and
`--explain`, which says which source and which table entry decided and what else matched."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tandem.cli import main

EI0006 = ("[rank1]: RuntimeError: InnerRunOpApi:torch_npu/csrc/framework/OpParamMaker.cpp:281 OPS function error: "
          "HcclAllreduce, error code is 6\n[rank1]: EI0006: [PID: 1292363] 2025-04-08-18:07:20.444.436 Getting socket "
          "times out. Reason: Remote Rank did not send the data in time.\n")  # vllm-project/vllm-ascend#486
USER = ('Traceback (most recent call last):\n  File "/workspace/train.py", line 3, in <module>\n'
        '    raise ValueError("lr must be positive")\nValueError: lr must be positive\n')


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> dict:
    assert main(["classify", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_whole_log_with_explain(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    log = tmp_path / "kubectl-logs.txt"
    log.write_text("".join(f"[INFO] step {n} loss 2.{n:03d}\n" for n in range(5000)) + EI0006)
    out = _run(capsys, "--log", str(log), "--explain")
    assert (out["class"], out["reason"]) == ("interconnect", "HcclSocketTimeout")
    explain = out["explain"]
    assert (explain["source"], explain["rule"], explain["entry"]["id"]) == ("log-tail", 3, "hccl-socket-timeout")
    assert explain["entry"]["source"].startswith("https://") and explain["entry"]["table"].endswith("signatures.yaml")
    assert explain["decidedBy"].endswith("at line 5002 [library] -> interconnect")
    bare_code = "hccl-error-code (unknown/HcclError, weak, ascend) at line 5001"
    assert any(m.startswith(bare_code) for m in explain["matches"])
    assert set(_run(capsys, "--log", str(log))) == {"class", "reason", "message"}  # no --explain: as before


def test_a_folder_of_rank_logs_names_the_root_cause_and_its_file(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "rank-0.log").write_text(EI0006)  # rank 0 waited for its peer: a symptom
    (tmp_path / "rank-1.log").write_text(USER)  # rank 1's own bug: the cause
    (tmp_path / ".hidden").write_text("CUDA out of memory")
    (tmp_path / "sub").mkdir()
    out = _run(capsys, "--log", str(tmp_path), "--explain")
    assert (out["class"], out["reason"], out["file"]) == ("user", "PythonException", "rank-1.log")
    assert {name: (v["class"], v["reason"]) for name, v in out["files"].items()} == {
        "rank-0.log": ("interconnect", "HcclSocketTimeout"), "rank-1.log": ("user", "PythonException")}
    assert out["explain"]["exception"] == {"name": "ValueError", "line": 4, "raisedByUser": True,
                                           "frame": 'File "/workspace/train.py", line 3, in <module>'}


def test_an_empty_folder_is_an_error_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["classify", "--log", str(tmp_path)]) == 2
    assert f"{tmp_path}: no log files in it" in capsys.readouterr().err


def test_a_pod_with_explain_names_the_source_and_the_others(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "llama-a1-0"},
           "spec": {"containers": [{"name": "trainer", "command": ["python", "train.py"]}]},
           "status": {"phase": "Failed", "containerStatuses": [{"name": "trainer", "state": {"terminated": {
               "exitCode": 3, "reason": "Error", "message": EI0006}}}]}}
    path = tmp_path / "pod.json"
    path.write_text(json.dumps(pod))
    out = _run(capsys, "--pod", str(path), "--explain")
    # Exit code 3 of a custom command names no class; the log tail decides.
    assert (out["class"], out["reason"]) == ("interconnect", "HcclSocketTimeout")
    assert out["explain"]["decidedBySource"] == "log-tail" and out["explain"]["order"][0] == "termination-message"
    assert out["explain"]["otherSources"] == ["container-state: unknown/ExitCode (weak)"]
