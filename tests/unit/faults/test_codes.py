"""The error-code table (tandem/faults/codes.yaml): every code read where a log reports it, in any phrasing; the table
is data a newcomer edits, so a malformed entry is refused naming the entry and the field; every entry cites its
source; and a code's entry takes its place in the signature table's precedence."""

from __future__ import annotations

import pytest

from tandem.faults import read_log
from tandem.faults.codes import FAMILIES, CodeTableError, code_table, codes_in, parse_codes
from tandem.faults.signatures import matching, table
from tandem.faults.taxonomy import FaultClass

GOOD = """
- code: "507033"
  name: ACL_ERROR_RT_DEV_SETUP_ERROR
  family: acl-runtime
  meaning: the device could not be set up
  class: device
  reason: DeviceSetupFailed
  strength: strong
  source: https://www.hiascend.com/document/detail/en/canncommercial/800/apiref/appdevgapi/aclcppdevg_03_1345.html
"""


@pytest.mark.parametrize(("line", "codes"), [
    # torch_npu's wrapper of an ACL call (https://github.com/Ascend/pytorch/issues/67)
    ("RuntimeError: npuSynchronizeDevice:compiler_depend.ts:467 NPU function error: AclrtSynchronizeDevice, "
     "error code is 507033", ["507033"]),
    ("[ERROR] RUNTIME(1234,python):2024-01-01-00:00:00.000 [runtime.cc:100]rtSetDevice failed, runtime result = 507010",
     ["507010"]),
    ("aclrtSetDevice failed, ret=107001", ["107001"]),
    ("ErrCode=207001, memory allocation failed", ["207001"]),
    # a bare six-digit code counts only on a line that says something failed
    ("Kernel launch failed: 507015", ["507015"]),
    ("step 507015 loss 1.23", []),
    ("[PID: 2113] 2024-11-02 EI0006: Getting socket times out. Reason: Remote Rank did not send", ["EI0006"]),
    ("EL0004: [PID: 1] Failed to allocate memory. [ERR00100] PTA call acl api failed", ["EL0004", "ERR00100"]),
    ("HcclAllReduce(x, y), error code is 9", ["hccl:9"]),
    # not codes: a log's own numbers, a glog level with its date, hex words
    ("E0818 16:33:56.123 ProcessGroupNCCL.cpp:1234] timeout", []),
    ("lr 1E-4, EPOCH1 done, id E1234X", []),
    # process ids pass 100000 on a busy host: CANN's log header, "pid", torch's field after the time
    ("[ERROR] HCCL(507011,python3):2025-04-08-18:07:20.444.436 [hccl.cc:12][PID: 507012] connect failed, pid 507013",
     []),
    ("E1203 09:28:00.107000 507011 torch/distributed/elastic/multiprocessing/api.py:1002] failed (exitcode: 1)", []),
    ("aclrtSynchronizeStream failed (507011)", ["507011"]),
])
def test_the_codes_a_line_reports(line: str, codes: list[str]) -> None:
    assert codes_in(line) == codes


def test_the_shipped_code_table_loads_and_cites_its_sources() -> None:
    codes = code_table()
    assert len(codes) >= 100
    assert {entry.family for entry in codes.values()} <= set(FAMILIES)
    assert all(entry.source.startswith("https://") and entry.meaning for entry in codes.values())
    # a code that proves nothing never outranks the other evidence
    assert all(entry.strength == "weak" for entry in codes.values() if entry.fault_class == FaultClass.UNKNOWN)


@pytest.mark.parametrize(("change", "names"), [
    (("class: device", "class: chip"), "code entry 0 (507033): 'chip' is not a valid FaultClass"),
    (("family: acl-runtime", "family: cuda"), "code entry 0 (507033): family 'cuda'"),
    (("strength: strong", "strength: loud"), "code entry 0 (507033): strength 'loud'"),
    (("source: https://", "source: http://"), "code entry 0 (507033): source"),
    (("  reason: DeviceSetupFailed\n", ""), "code entry 0 (507033): reason is missing"),
    (("class: device", "class: unknown"), "code entry 0 (507033): an unknown code is weak"),
    (("  family: acl-runtime\n", "  family: acl-runtime\n  colour: red\n"), "unknown fields ['colour']"),
])
def test_a_malformed_code_entry_is_refused_naming_the_entry_and_the_field(change: tuple[str, str], names: str) -> None:
    assert len(parse_codes(GOOD)) == 1
    with pytest.raises(CodeTableError) as error:
        parse_codes(GOOD.replace(*change))
    assert names in str(error.value)


def test_a_code_listed_twice_is_refused() -> None:
    with pytest.raises(CodeTableError, match=r"codes listed more than once: \['507033'\]"):
        parse_codes(GOOD + GOOD)


def test_code_entries_stand_where_the_signature_table_places_them() -> None:
    entries = table()
    assert [s.order for s in entries] == list(range(len(entries)))
    coded = [s.order for s in entries if s.code]
    assert coded == list(range(coded[0], coded[-1] + 1))  # one block
    ids = [s.id for s in entries]
    # after every phrase that names a root cause, before the texts that prove nothing and the families' fallbacks
    assert ids.index("checkpoint-unreadable") < coded[0] and coded[-1] < ids.index("no-visible-devices")
    line = "RuntimeError: NPU function error: AclrtSetDevice, error code is 507033"
    assert [s.id for s in matching(line)][:2] == ["ascend-device-setup", "code-507033"]


def test_a_code_decides_where_no_phrase_names_it_and_explain_says_which_code() -> None:
    """A CANN message code no phrase entry names (E39009, the AI CPU scheduler lost the device: hicann/runtime's
    error_code.json), in the format CANN prints its codes ("Exxxxx: [PID: ...] time text") under torch_npu's
    wrapper line: the code decides, and --explain names it and its table."""
    reading = read_log("[ERROR] 2025-01-02-03:04:05 (PID:77, Device:3, RankID:3) ERR00100 PTA call acl api failed\n"
                       "E39009: [PID: 77] 2025-01-02-03:04:05.123.456 Failed to connect to the device.")
    assert reading is not None
    assert (reading.fault_class.value, reading.reason, reading.rule) == ("device", "DeviceLost", 1)
    entry = reading.explain()["entry"]
    assert (entry["id"], entry["code"], entry["table"]) == ("code-E39009", "E39009", "tandem/faults/codes.yaml")
