"""How a log is read (tandem.faults.reading), case by case: each case is a real text (or real lines joined, the
source named) and the whole decision: class, reason, the rule of the reading order that decided, and the table
entry that did (None where no entry decided)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from tandem.faults import read_log

NCCL_ROCE_INFO = "node1:5330:7970 [3] NCCL INFO NET/IB : Using [0]mlx5_0:1/RoCE [RO]; OOB eth0:10.0.0.1<0>"
# nvidia-smi -q of a GPU whose memory is sound (the layout of leptonai/gpud#80, no rows remapped).
HEALTHY_REMAPPED_ROWS = ("    Remapped Rows\n        Correctable Error                 : 0\n"
                         "        Uncorrectable Error               : 0\n"
                         "        Pending                           : No")

# The cases, as data: tests/data/faults/reading_cases.yaml (id, text, source, the expected class, reason, rule and
# entry id).
READING_CASES = Path(__file__).parents[2] / "data" / "faults" / "reading_cases.yaml"
CASES = [(case["id"], case["text"], case["source"], tuple(case["expected"].values()))
         for group in yaml.safe_load(READING_CASES.read_text()) for case in group["cases"]]


@pytest.mark.parametrize(("text", "source", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_whole_decision(text: str, source: str, expected: tuple[str, str, int, str | None]) -> None:
    reading = read_log(text)
    assert reading is not None, source
    decided = (reading.fault_class.value, reading.reason, reading.rule,
               reading.entry.signature.id if reading.entry else None)
    assert decided == expected, source


@pytest.mark.parametrize("text", ["", "  \n", "epoch 3 loss 1.23\nepoch 4 loss 1.19", NCCL_ROCE_INFO,
                                  "[INFO] 2024-05-21 HCCL RoCE link up: rank 3 ok", HEALTHY_REMAPPED_ROWS,
                                  "I1228 03:09:48.1 1 rollout.go:12] node gpu-3 NodeNotReady earlier, now Ready",
                                  "INFO: retrying: the device was unhealthy a minute ago"])
def test_output_without_an_error_holds_no_evidence(text: str) -> None:
    assert read_log(text) is None


def test_an_exception_the_program_printed_and_went_on_from_is_not_its_end() -> None:
    """A handled error the program logged is followed by more of its output: only the last words of a text, or a
    line under a traceback, are an exception that ended the process."""
    reading = read_log("epoch 1 loss 0.71\nValueError: sample 17 has no label, skipped\nepoch 2 loss 0.64\nKilled")
    assert reading is None or reading.fault_class.value != "user"


def test_a_peers_heartbeat_is_not_this_devices() -> None:
    """HCCL's cluster heartbeat names a peer rank that went silent: the device vocabulary ("heartbeat lost") must not
    read it as this node's device (hicann/hccl docs, fault_diagnosis: the possible reasons are the peer's process
    or the network)."""
    reading = read_log(
        "[ERROR]HCCL(835695,all_reduce_test):2025-10-23-17:28:06.049.385[task_exception_handler.cc:610][835695]"
        "Cluster Exception Location[IP/ID]:[127.10.0.1/1], Arrival Time:[Thu Oct 23 17:25:58 2025], Discoverer:"
        "[127.10.0.1/2], ExceptionType:[Heartbeat Lost Occurred], Possible Reason:1. Process has exited, 2. Network "
        "Disconnected")
    assert reading is None or reading.fault_class.value != "device"


def test_the_explanation_names_the_entry_its_source_and_the_other_matches() -> None:
    text = ("RuntimeError: npuSynchronizeDevice:compiler_depend.ts:479 NPU function error: "
            "AclrtSynchronizeDeviceWithTimeout, error code is 507010\nDevice[1] lost heartbeat.")
    explained = read_log(text).explain()
    assert explained["entry"]["id"] == "ascend-device-lost"
    assert explained["entry"]["source"].startswith("https://") and explained["rule"] == 1
    generic = "npu-error-generic (unknown/NpuError, weak, ascend) at line 1"
    assert any(m.startswith(generic) for m in explained["matches"])


def test_a_long_log_reads_in_one_pass() -> None:
    """A whole `kubectl logs` output: 200k lines of progress, then the fault."""
    progress = "\n".join(f"[INFO] step {n} loss 1.{n % 97:02d} tokens/s 51234" for n in range(200_000))
    reading = read_log(progress + "\nEI0006: 2024-08-05 Getting socket times out. Reason: Remote Rank did not send")
    assert reading is not None and (reading.fault_class.value, reading.reason) == ("interconnect", "HcclSocketTimeout")
    assert reading.matches[0].line.number == 200_000


def test_a_runaway_line_is_read_only_so_far() -> None:
    """A line of megabytes (a tenant's runaway print, a binary blob) is cut at MAX_LINE for matching: the fault at
    its start still counts, and a repeated keyword cannot make a pattern scan it quadratically."""
    reading = read_log("EI0006: Getting socket times out. " + "x" * 2_000_000)
    assert reading is not None and reading.reason == "HcclSocketTimeout"
    assert read_log("HCCL " * 200_000) is None
    assert read_log("which was running pod " * 100_000) is None


@pytest.mark.parametrize("name", ["Exception", "BaseException"])
def test_pythons_own_base_classes_end_a_traceback_too(name: str) -> None:
    """`raise Exception("...")` is the commonest exception a job's own code throws in its own words, and Python prints
    it without an Error suffix: it ends the traceback like any other (user: rule 2, raised in the job's code)."""
    text = ('Traceback (most recent call last):\n  File "/workspace/train.py", line 12, in main\n'
            f'    raise {name}("the tokenizer does not match the checkpoint")\n'
            f"{name}: the tokenizer does not match the checkpoint\n")
    reading = read_log(text)
    assert reading is not None
    assert (reading.fault_class.value, reading.reason, reading.rule, reading.entry) == ("user", "PythonException", 2,
                                                                                        None)


def test_a_bare_error_word_under_a_frame_is_no_exception() -> None:
    """Python has no class named `Error`: "Error: ..." under a traceback is another program's output, not the
    exception that ended it."""
    text = ('Traceback (most recent call last):\n  File "/workspace/train.py", line 12, in main\n    run(cmd)\n'
            "Error: No such container: trainer-0\n")
    reading = read_log(text)
    assert reading is None or reading.exception is None


def test_a_calledprocesserror_of_the_jobs_own_command_is_still_its_last_words() -> None:
    """Only a launcher's CalledProcessError (accelerate launch, torch.distributed.launch) stands for a worker that
    failed above it; the job's own `subprocess.run(..., check=True)` failing is the job's end."""
    text = ('Traceback (most recent call last):\n  File "/workspace/train.py", line 12, in main\n    x = cfg["steps"]\n'
            "KeyError: 'steps'\n"
            'Traceback (most recent call last):\n  File "/workspace/prepare.py", line 30, in <module>\n'
            '    subprocess.run(["tar", "xf", "/data/shards.tar"], check=True)\n'
            '  File "/usr/lib/python3.10/subprocess.py", line 526, in run\n'
            "    raise CalledProcessError(retcode, process.args,\n"
            "subprocess.CalledProcessError: Command '['tar', 'xf', '/data/shards.tar']' returned non-zero exit "
            "status 2.\n")
    reading = read_log(text)
    assert reading is not None and reading.exception is not None
    assert (reading.fault_class.value, reading.exception.name) == ("unknown", "CalledProcessError")


# One log as it reaches `tandem classify --log` by different roads. `kubectl logs --timestamps` puts an RFC 3339
# timestamp with nanoseconds before every line, `kubectl logs --prefix` the pod and container ("[pod/x/trainer] ");
# the kubelet's own files under /var/log/pods add the stream and a partial-line tag (the CRI logging format:
# "2016-10-06T00:17:09.669794202Z stdout F ..."); Open MPI's `mpirun --tag-output` (Kubeflow's MPIJob, Horovod) tags
# each line with the job and rank ("[1,0]<stderr>:"); a structured logger (structlog's JSONRenderer,
# python-json-logger) writes a traceback as one escaped JSON string; a TTY, FORCE_COLOR or Python 3.13's coloured
# tracebacks (Lib/_colorize.py) put ANSI escapes around words.
ROADS: dict[str, Callable[[str], str]] = {
    "kubectl-timestamps": lambda text: "\n".join(f"2024-05-01T10:00:0{n % 10}.123456789Z {line}"
                                                 for n, line in enumerate(text.splitlines())),
    "cri-log-file": lambda text: "\n".join(f"2024-05-01T10:00:00.123456789+00:00 stderr F {line}"
                                           for line in text.splitlines()),
    "kubectl-logs-prefix": lambda text: "\n".join(f"[pod/llama-a1-{n % 2}/trainer] {line}"
                                                  for n, line in enumerate(text.splitlines())),
    "mpirun-tag-output": lambda text: "\n".join(f"[1,{n % 2}]<stderr>:{line}"
                                                for n, line in enumerate(text.splitlines())),
    "a-json-log-line": lambda text: json.dumps({"timestamp": "2024-05-01T10:00:00Z", "level": "error",
                                                "event": "training failed", "exception": text}),
    "ansi-colours": lambda text: re.sub(r"^(\w+Error)(: )", "\x1b[1;35m\\1\x1b[0m\\2\x1b[35m", text,
                                        flags=re.M).replace("\n", "\x1b[0m\n").replace("ERROR", "\x1b[31mERROR\x1b[0m"),
}
ROAD_TEXTS = {
    "the-jobs-own-check": ('Traceback (most recent call last):\n  File "/workspace/train.py", line 50, in main\n'
                           '    raise ValueError("lr must be positive")\nValueError: lr must be positive'),
    "an-eio-on-a-dataset-file": ('Traceback (most recent call last):\n  File "/workspace/data.py", line 20, in load\n'
                                 '    with open(path, "rb") as f:\n'
                                 "OSError: [Errno 5] Input/output error: '/data/shard-00017.tar'"),
    "an-info-line-and-a-symptom": (
        NCCL_ROCE_INFO + "\n[rank0]:[E501 10:00:00.000 ProcessGroupNCCL.cpp:616] [Rank 0] Watchdog caught collective "
        "operation timeout: WorkNCCL(SeqNum=12, OpType=ALLREDUCE, NumelIn=1, NumelOut=1, Timeout(ms)=600000) ran for "
        "600005 milliseconds before timing out."),
}


@pytest.mark.parametrize("road", ROADS)
@pytest.mark.parametrize("name", ROAD_TEXTS)
def test_the_same_log_by_any_road_gets_the_same_decision(road: str, name: str) -> None:
    plain, carried = read_log(ROAD_TEXTS[name]), read_log(ROADS[road](ROAD_TEXTS[name]))
    assert plain is not None and carried is not None
    assert ((carried.fault_class, carried.reason, carried.rule, carried.entry and carried.entry.signature.id)
            == (plain.fault_class, plain.reason, plain.rule, plain.entry and plain.entry.signature.id))


# Python prints an exception it could not raise (in a __del__, an atexit callback, a finalizer) under "Exception
# ignored in: ..." and goes on (sys.unraisablehook): it never ended the process. The DataLoader's shutdown at exit is
# the commonest (pytorch/pytorch#11599's text below).
DATALOADER = "/private/home/ssnl/miniconda3/lib/python3.7/site-packages/torch/utils/data/dataloader.py"
IGNORED_AT_EXIT = "\n".join([
    "Exception ignored in: <function _DataLoaderIter.__del__ at 0x7fa06963cf28>",
    "Traceback (most recent call last):",
    f'  File "{DATALOADER}", line 405, in __del__',
    "    self._shutdown_workers()",
    f'  File "{DATALOADER}", line 401, in _shutdown_workers',
    "    self.pin_memory_thread.join()",
    "AttributeError: '_DataLoaderIter' object has no attribute 'pin_memory_thread'",
])


@pytest.mark.parametrize(("before", "expected"), [
    ("", None),
    (ROAD_TEXTS["the-jobs-own-check"] + "\n", ("user", "PythonException", 2)),
    (ROAD_TEXTS["an-info-line-and-a-symptom"] + "\n", ("interconnect", "CollectiveTimeout", 3)),
])
@pytest.mark.parametrize("chained", [False, True])
def test_an_exception_python_ignored_at_exit_never_ended_the_process(before: str, expected: tuple[str, str, int] | None,
                                                                      chained: bool) -> None:
    ignored = IGNORED_AT_EXIT
    if chained:  # the ignored exception's own chain is ignored too, and takes no real exception for its cause
        ignored += ("\n\nDuring handling of the above exception, another exception occurred:\n\n"
                    'Traceback (most recent call last):\n'
                    '  File "/usr/lib/python3.10/weakref.py", line 667, in _exitfunc\n'
                    "    f()\nKeyError: 'pin_memory_thread'")
    reading = read_log(before + ignored)
    decided = reading and (reading.fault_class.value, reading.reason, reading.rule)
    assert decided == expected
