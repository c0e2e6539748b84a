"""What a log tail says (operator/logtail.py through classify_log and classify_pod): real error texts people
posted publicly (tests/data/faults/log_tails.yaml), the exception that ended the log and where it was raised,
and which lines are trusted to blame the hardware."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from builders import make_failed_launcher_pod, make_node

from tandem.operator.api_types import FaultClass
from tandem.operator.classify import SYMPTOM_REASONS, Classification, classify_log, classify_pod

DATA = Path(__file__).parents[2] / "data" / "faults"
LOG_TAILS = yaml.safe_load((DATA / "log_tails.yaml").read_text())


failed = make_failed_launcher_pod


def node() -> dict[str, Any]:
    return make_node("n1", "ascend-910b")


# --- real texts --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("entry", LOG_TAILS, ids=[e["id"] for e in LOG_TAILS])
def test_real_log_tails(entry: dict[str, Any]) -> None:
    found = classify_log(entry["text"])
    assert (found.fault_class.value, found.reason) == (entry["class"], entry["reason"]), entry["source"]
    assert found.source == "log-tail" and found.message and len(found.message) <= 1000


@pytest.mark.parametrize("entry", LOG_TAILS, ids=[e["id"] for e in LOG_TAILS])
def test_real_log_tails_in_a_failed_pod(entry: dict[str, Any]) -> None:
    """FallbackToLogsOnError puts the log tail where the report would be; exit code 1 decides nothing. Every
    real hardware text is the library's or the driver's own line: trusted, so it may exclude the node."""
    found = classify_pod(failed(1, "Error", entry["text"]), node(), [])
    assert found == Classification(FaultClass(entry["class"]), entry["reason"], found.message, "log-tail", node="n1")
    assert found.message.strip() and len(found.message) <= 1000
    blames_the_node = entry["class"] in ("interconnect", "device", "node") and entry["reason"] not in SYMPTOM_REASONS
    assert found.excludes_node == blames_the_node


def test_the_real_texts_cover_every_class() -> None:
    real = [e for e in LOG_TAILS if not e.get("composed")]
    counts = {cls: sum(e["class"] == cls for e in real) for cls in ("interconnect", "device", "oom", "storage", "user")}
    assert counts["interconnect"] >= 5 and counts["device"] >= 3 and counts["oom"] >= 3 and counts["user"] >= 3
    assert counts["storage"] >= 5
    assert all(e["source"].startswith("https://") for e in LOG_TAILS)


# --- the log tail: the exception's origin, and how far a text is trusted ----------------------------------------

USER_FRAMES = (
    "Traceback (most recent call last):\n"
    '  File "/workspace/train.py", line 120, in <module>\n'
    "    main()\n"
    '  File "/workspace/train.py", line 96, in collate\n'
    '    input_ids = [f["input_ids"] for f in features]\n'
    "KeyError: 'input_ids'\n"
)


@pytest.mark.parametrize("printed", ["health: 2 CUDA error(s) seen, retrying the batch",
                                     "health: 0 Xid events in the last hour",
                                     "skipping batch 12: CUDA out of memory, trying a smaller one"])
def test_a_user_traceback_after_a_line_that_mentions_the_hardware_is_user(printed: str) -> None:
    """The program printed the words; its last traceback ends in its own KeyError: no restart, no exclusion."""
    found = classify_pod(failed(1, "Error", f"{printed}\n{USER_FRAMES}"), node(), [])
    assert found == Classification(FaultClass.USER, "PythonException",
                                   "KeyError: 'input_ids' (File \"/workspace/train.py\", line 96, in collate)",
                                   "log-tail", node="n1")


def test_a_generic_exception_the_users_code_raises_is_user_whatever_its_message_says() -> None:
    text = ("Traceback (most recent call last):\n"
            '  File "/workspace/train.py", line 120, in <module>\n'
            "    main()\n"
            '  File "/workspace/health.py", line 31, in check\n'
            '    raise RuntimeError(f"CUDA error budget exceeded: {n} Xid events")\n'
            "RuntimeError: CUDA error budget exceeded: 3 Xid events\n")
    assert classify_pod(failed(1, "Error", text), node(), []) == Classification(
        FaultClass.USER, "PythonException",
        'RuntimeError: CUDA error budget exceeded: 3 Xid events (File "/workspace/health.py", line 31, in check)',
        "log-tail", node="n1")


NCCL_REMOTE = next(e["text"] for e in LOG_TAILS if e["id"] == "nccl-remote-error-ib")


def test_the_users_wrapper_around_a_library_error_is_judged_by_its_cause() -> None:
    """`raise RuntimeError(...) from err` in the user's code: the NCCL error under it is the origin."""
    cause = NCCL_REMOTE.splitlines()
    text = "\n".join([
        "Traceback (most recent call last):",
        '  File "/opt/conda/lib/python3.11/site-packages/torch/distributed/c10d_logger.py", line 81, in wrapper',
        "    return func(*args, **kwargs)",
        *cause, "", "The above exception was the direct cause of the following exception:", "",
        "Traceback (most recent call last):",
        '  File "/workspace/train.py", line 140, in step',
        '    raise RuntimeError(f"step {step} failed") from err',
        "RuntimeError: step 12 failed"])
    expected = "\n".join(cause)  # the message is the cause's lines, up to the chain that follows
    assert classify_pod(failed(1, "Error", text), node(), []) == Classification(
        FaultClass.INTERCONNECT, "NcclRemoteError", expected, "log-tail", node="n1")


def test_hardware_words_that_no_library_printed_prove_no_class() -> None:
    """Issue 15: device and interconnect need a line the stack printed; the program's own words give unknown."""
    text = "health: 2 CUDA error(s) seen, retrying the batch\nstopping at step 13"
    found = classify_pod(failed(1, "Error", text), node(), [])
    assert found == Classification(FaultClass.UNKNOWN, "CudaError", text, "log-tail", node="n1")
    assert not found.excludes_node


def test_the_drivers_own_line_beats_the_users_exception() -> None:
    """A GPU that fell off the bus (NVRM, the kernel driver) explains the job's end better than its KeyError."""
    xid = next(e["text"] for e in LOG_TAILS if e["id"] == "gpu-xid-79-fallen-off-bus").strip()
    found = classify_pod(failed(1, "Error", f"{USER_FRAMES}{xid}"), node(), [])
    from_the_xid_line = xid.split("\n", 2)[2]
    assert found == Classification(FaultClass.DEVICE, "GpuLost", from_the_xid_line, "log-tail", node="n1")
    assert found.excludes_node


def test_a_symptom_is_trusted_text_but_never_blames_its_own_node() -> None:
    found = classify_log(next(e["text"] for e in LOG_TAILS if e["id"] == "hccl-ei0006-ppo"))
    assert (found.fault_class, found.reason, found.confident, found.symptom) == (
        FaultClass.INTERCONNECT, "HcclSocketTimeout", True, True)
    assert not found.excludes_node


# --- logs that decide little --------------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \n", "epoch 3 loss 1.23\nepoch 4 loss 1.19\n"])
def test_unrecognized_logs(text: str) -> None:
    found = classify_log(text)
    assert found.fault_class == FaultClass.UNKNOWN and found.reason in ("NoLog", "Unrecognized")


def test_a_native_crash_is_named_but_proves_no_class() -> None:
    """The shell's crash line says what the process died of, not why: a restart, nobody blamed."""
    found = classify_log("Segmentation fault")
    assert (found.fault_class, found.reason, found.excludes_node) == (FaultClass.UNKNOWN, "Segfault", False)


def test_non_user_traceback_is_unknown_named_after_the_exception() -> None:
    text = 'Traceback (most recent call last):\n  File "train.py", line 3, in <module>\n    go()\nRuntimeError: boom'
    assert (classify_log(text).fault_class, classify_log(text).reason) == (FaultClass.UNKNOWN, "RuntimeError")


@pytest.mark.parametrize(("where", "expected"), [
    ("/usr/lib/python3/dist-packages/a.py", Classification(FaultClass.UNKNOWN, "SystemError", "SystemError: x",
                                                          "log-tail")),
    ("/workspace/a.py", Classification(FaultClass.USER, "PythonException",
                                       "KeyError: 'k' (File \"/workspace/a.py\", line 1, in f)", "log-tail")),
])
def test_a_user_error_replaced_by_another_exception(where: str, expected: Classification) -> None:
    """A library that handled the KeyError and raised something else failed for its own reason; the job's own
    code raising while it handled its KeyError failed for the KeyError."""
    text = (f'Traceback (most recent call last):\n  File "{where}", line 1, in f\n    d["k"]\nKeyError: \'k\'\n\n'
            "During handling of the above exception, another exception occurred:\n\n"
            f'Traceback (most recent call last):\n  File "{where}", line 3, in f\n    raise SystemError("x")\n'
            "SystemError: x")
    assert classify_log(text) == expected


def test_application_xid_in_a_log_is_not_a_device_fault() -> None:
    text = "NVRM: Xid (PCI:0000:3b:00): 13, pid=1234, name=python3, Graphics SM Warp Exception"
    assert classify_log(text).fault_class == FaultClass.UNKNOWN
