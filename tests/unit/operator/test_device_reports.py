"""Reading the accelerator fault reports: Ascend MindCluster ConfigMaps and GPU health node conditions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tandem.operator.api_types import FaultClass
from tandem.operator.classify import classify_node
from tandem.operator.device_reports import (
    DeviceFault,
    ascend_faults,
    faults_by_node,
    node_faults,
    nvidia_faults,
    xid_class,
    xid_numbers,
)

DATA = Path(__file__).parents[2] / "data" / "faults"
ASCEND = yaml.safe_load((DATA / "ascend_configmaps.yaml").read_text())
NVIDIA = yaml.safe_load((DATA / "nvidia_nodes.yaml").read_text())


def _summary(faults: list[DeviceFault]) -> list[tuple[str, str]]:
    return sorted((f.fault_class.value, f.reason) for f in faults)


@pytest.mark.parametrize("case", ASCEND, ids=[c["id"] for c in ASCEND])
def test_ascend_configmaps(case: dict[str, Any]) -> None:
    faults = ascend_faults(case["configmap"])
    assert _summary(faults) == sorted((cls, reason) for cls, reason, _ in case["expect"])
    for cls, reason, named in case["expect"]:
        assert any(f.fault_class == cls and f.reason == reason and named in f.message for f in faults), named
    assert all(f.node == case["node"] for f in faults)
    assert all(f.source in ("ascend-device-plugin", "noded") for f in faults)


@pytest.mark.parametrize("case", NVIDIA, ids=[c["id"] for c in NVIDIA])
def test_gpu_node_conditions(case: dict[str, Any]) -> None:
    node = {"metadata": {"name": "gpu-0"}, "status": {"conditions": case["conditions"]}}
    faults = nvidia_faults(node)
    assert _summary(faults) == sorted((cls, reason) for cls, reason, _ in case["expect"])
    for cls, reason, named in case["expect"]:
        assert any(f.fault_class == cls and f.reason == reason and named in f.message for f in faults), named
    assert all(f.node == "gpu-0" and f.source.startswith("node-condition/") for f in faults)


@pytest.mark.parametrize(
    ("text", "xids"),
    [
        ("ErrorCode:79 gpu:0 XID error occured Recommended Action=NODE_REBOOT;", [79]),
        ("NVRM: Xid (PCI:0000:91:00): 79, pid='<unknown>', name=<unknown>, GPU has fallen off the bus.", [79]),
        ("[48, 145] GPU errors - RecommendedAction: RESTART_VM", [48, 145]),
        ("Xid 63 then Xid 63 again", [63]),
        ("no numbers here", []),
        ("", []),
    ],
)
def test_xid_numbers(text: str, xids: list[int]) -> None:
    assert xid_numbers(text) == xids


@pytest.mark.parametrize(
    ("xid", "cls"),
    [(74, FaultClass.INTERCONNECT), (144, FaultClass.INTERCONNECT), (150, FaultClass.INTERCONNECT),
     (48, FaultClass.DEVICE), (63, FaultClass.DEVICE), (64, FaultClass.DEVICE), (79, FaultClass.DEVICE),
     (92, FaultClass.DEVICE), (94, FaultClass.DEVICE), (95, FaultClass.DEVICE), (119, FaultClass.DEVICE),
     (13, None), (31, None), (43, None), (45, None), (68, None)],
)
def test_xid_classes(xid: int, cls: FaultClass | None) -> None:
    assert xid_class(xid) == cls


def test_node_faults_joins_the_nodes_configmaps_and_conditions() -> None:
    configmaps = [c["configmap"] for c in ASCEND]
    node = {"metadata": {"name": "a3-node-0"}, "status": {"conditions": [
        {"type": "GpuMemWatch", "status": "True", "message": "[DCGM_FR_FAULTY_MEMORY] on GPU 0"}]}}
    faults = node_faults(node, configmaps)
    assert _summary(faults) == [("device", "GpuUnhealthy"), ("device", "NpuChipFault"),
                                ("interconnect", "NpuLinkFault")]
    assert {f.node for f in faults} == {"a3-node-0"}
    assert node_faults({"metadata": {"name": "node-1"}}, configmaps) == []


def test_a_gpu_fault_in_both_the_node_and_the_shared_view_counts_once() -> None:
    """The operator's view (faults_by_node) already holds the node's GPU conditions; classify_node reads
    them from the node too: the message must not claim a second fault."""
    case = NVIDIA[0]
    node = {"metadata": {"name": "gpu-0"}, "status": {"conditions": case["conditions"]}}
    view = faults_by_node([node], [])
    assert view["gpu-0"] == nvidia_faults(node) and len(view["gpu-0"]) == len(case["expect"]) == 1
    found = classify_node(node, view["gpu-0"])
    assert found is not None and "more)" not in found.message


def test_node_faults_ignores_other_nodes_with_a_shared_prefix() -> None:
    configmap = {"metadata": {"name": "mindx-dl-deviceinfo-node-10"},
                 "data": {"ManuallySeparateNPU": "Ascend910-0"}}
    assert node_faults({"metadata": {"name": "node-1"}}, [configmap]) == []
    assert len(node_faults({"metadata": {"name": "node-10"}}, [configmap])) == 1


@pytest.mark.parametrize(
    "garbage",
    [None, {}, [], "x", 3, {"metadata": None}, {"metadata": {"name": "mindx-dl-deviceinfo-n"}, "data": None},
     {"metadata": {"name": "mindx-dl-deviceinfo-n"}, "data": {"DeviceInfoCfg": "[1, 2]"}},
     {"metadata": {"name": "mindx-dl-deviceinfo-n"}, "data": {"DeviceInfoCfg": '{"DeviceInfo": []}'}},
     {"metadata": {"name": "mindx-dl-deviceinfo-n"},
      "data": {"DeviceInfoCfg": '{"DeviceInfo": {"DeviceList": {"huawei.com/Ascend910-Fault": "[1, null, \\"x\\"]",'
                                ' "huawei.com/Ascend910-Unhealthy": 7}}}'}},
     {"metadata": {"name": "mindx-dl-nodeinfo-n"}, "data": {"NodeInfo": '{"NodeInfo": {"FaultDevList": [1, {}]}}'}},
     {"metadata": {"name": "mindx-dl-switchinfo-n"}, "data": {"SwitchInfoCfg": '{"FaultCode": 5}'}}],
)
def test_malformed_reports_are_no_faults(garbage: Any) -> None:
    assert ascend_faults(garbage) == []
    assert nvidia_faults(garbage) == []
    assert node_faults(garbage, [garbage]) == []


@pytest.mark.parametrize(
    "conditions",
    [None, "x", [None, 1, "Ready"], [{"type": None, "status": "True"}], [{"status": "True", "message": None}]],
)
def test_malformed_conditions_are_no_faults(conditions: Any) -> None:
    assert nvidia_faults({"metadata": {"name": "n"}, "status": {"conditions": conditions}}) == []


CHIP = DeviceFault("n1", FaultClass.DEVICE, "NpuChipFault", "Ascend910-4: SeparateNPU", "ascend-device-plugin")
LINK = DeviceFault("n1", FaultClass.INTERCONNECT, "NpuLinkFault", "Ascend910-0: 81078603", "ascend-device-plugin")


def _node(name: str = "n1", ready: str = "True", **extra: Any) -> dict[str, Any]:
    return {"metadata": {"name": name, **extra}, "status": {"conditions": [{"type": "Ready", "status": ready}]}}


@pytest.mark.parametrize(
    ("node", "faults", "expected"),
    [
        (_node(), [], None),
        (None, [], None),
        (_node(ready="False"), [CHIP], ("node", "NodeNotReady", "node")),
        (_node(ready="Unknown"), [], ("node", "NodeUnreachable", "node")),
        (_node(), [LINK, CHIP], ("device", "NpuChipFault", "device-report")),
        (_node(), [LINK], ("interconnect", "NpuLinkFault", "device-report")),
        (None, [LINK], ("interconnect", "NpuLinkFault", "device-report")),
        (_node("n2"), [LINK], None),
        (_node(deletionTimestamp="2026-11-23T12:00:00Z"), [], ("node", "NodeDeleted", "node")),
        ({"metadata": {"name": "n1"}, "status": {"conditions": [{"type": "NetworkUnavailable", "status": "True"}]}},
         [], ("node", "NetworkUnavailable", "node")),
    ],
)
def test_is_the_node_faulty(node: dict[str, Any] | None, faults: list[DeviceFault],
                            expected: tuple[str, str, str] | None) -> None:
    """classify_node: what the pools' faultyNodes and the classification of pods on a dead node use."""
    found = classify_node(node, faults)
    assert ((found.fault_class.value, found.reason, found.source) if found else None) == expected
    assert found is None or found.node in ("n1", "n2")


def test_a_nodes_verdict_is_remembered_per_version_and_fault_reports(monkeypatch: Any) -> None:
    """Every admission asks every node of a pool whether it is faulty: asked again about the same version of a node
    with the same reports, the verdict is not worked out again; a new version, or a new report, is."""
    from builders import make_node

    from tandem.operator import detect
    from tandem.operator.api import FaultClass
    from tandem.operator.device_reports import DeviceFault

    worked: list[str] = []
    real = detect.classify_node
    monkeypatch.setattr(detect, "classify_node", lambda node, faults: worked.append(node["metadata"]["name"]) or real(
        node, faults))
    monkeypatch.setattr(detect, "_VERDICTS", {})
    ready, down = make_node("n-1", "ascend-910b"), make_node("n-1", "ascend-910b", ready=False)
    ready["metadata"]["resourceVersion"], down["metadata"]["resourceVersion"] = "5", "6"
    chip = DeviceFault("n-1", FaultClass.DEVICE, "ChipFault", "chip 3: 80E18005", "device-plugin")
    verdicts = [detect.faulty_node(ready, {}), detect.faulty_node(ready, {}), detect.faulty_node(down, {}),
                detect.faulty_node(ready, {"n-1": [chip]}), detect.faulty_node(ready, {"n-1": [chip]})]
    assert [None if v is None else v.fault_class for v in verdicts] == [
        None, None, FaultClass.NODE, FaultClass.DEVICE, FaultClass.DEVICE]
    assert worked == ["n-1"] * 3
