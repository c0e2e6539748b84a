"""The accelerator fault reports that device plugins and node health monitors publish, read into one shape.

Pure functions over plain Kubernetes objects (ConfigMaps and Nodes as the API returns them); nothing
here raises on malformed input: a report we cannot read is a report we do not have.

Ascend (Huawei MindCluster). Formats, cited from the public sources:
- `mindx-dl-deviceinfo-<node>` (namespace kube-system), data key `DeviceInfoCfg`, written by the Ascend
  device plugin: `{"DeviceInfo": {"DeviceList": {...}, "UpdateTime": N}, "SuperPodID": .., "CheckCode": ..}`.
  `DeviceList` maps `huawei.com/Ascend910` (also `huawei.com/npu` on Atlas 350/850/950) and its suffixed
  keys to strings: `-Unhealthy` and `-NetworkUnhealthy` are comma-joined chip names, `-Fault` is a JSON
  list of `{fault_type, npu_name, large_model_fault_level, fault_level, fault_handling, fault_code,
  fault_time_and_level_map}`; fault_type is CardUnhealthy, CardNetworkUnhealthy or NodeUnhealthy. The data
  key `ManuallySeparateNPU` lists chips isolated after repeated faults.
  Sources: Ascend/mind-cluster docs/en/scheduling/api/ascend_device_plugin.md (tables 1-3, and the
  example in docs/zh/scheduling/api/ascend_device_plugin.md); the structs in
  component/ascend-device-plugin/pkg/common/proto.go (NodeDeviceInfoCache, DeviceFault) and the keys in
  component/ascend-device-plugin/pkg/common/constants.go.
- `mindx-dl-switchinfo-<node>`, data key `SwitchInfoCfg`: UnifiedBus (switch) faults with a node-level
  `FaultLevel` (NotHandle, SubHealthFault, Separate, RestartRequest) and `NodeStatus`. Same doc, table 2.
- `mindx-dl-nodeinfo-<node>` (namespace mindx-dl), data key `NodeInfo`, written by NodeD:
  `{"NodeInfo": {"FaultDevList": [{DeviceType, DeviceId, FaultCode: [..], FaultLevel}], "NodeStatus": ..},
  "CheckCode": ..}` with FaultLevel NotHandleFault < PreSeparateFault < SeparateFault. Sources:
  Ascend/mind-cluster docs/en/scheduling/api/noded.md; component/ascend-for-volcano/common/k8s/type.go.
- Fault levels (fault_handling, the recommended one of the three equal fields): NotHandleFault,
  RestartRequest, RestartBusiness, FreeRestartNPU, RestartNPU, SeparateNPU, PreSeparateNPU, plus
  ManuallySeparateNPU, SubHealthFault and the older RecoverRestartBusiness; constants in
  component/ascend-device-plugin/pkg/common/fault_code.go. Link-down is fault code 0x81078603
  (LinkDownFaultCode, same file); the fault_code "Disconnected" means the chip's network is unreachable and
  "heartbeatTimeOut" that the node's status was lost (docs/zh/scheduling/api/ascend_device_plugin.md).
  A full Atlas A3 example ConfigMap is in the MindCluster API docs, section "Ascend Device Plugin / 故障信息".

NVIDIA. There is no NVIDIA device-plugin ConfigMap; node health monitors publish node conditions:
- NVSentinel (NVIDIA/NVSentinel docs/INTEGRATIONS.md): condition types GpuXidError / SysLogsXIDError,
  SysLogsSXIDError, SysLogsGPUFallenOff, GpuNvlinkWatch, GpuMemWatch, GpuPcieWatch, ..., NVSwitchFatalError,
  NVSwitchDown; status True = fault; messages carry the codes, e.g.
  "ErrorCode:79 gpu:0 XID error occured Recommended Action=NODE_REBOOT;" (its e2e tests) or
  "[ErrorCode1, ErrorCode2] description - RecommendedAction: ACTION".
- AKS node-problem-detector GPU checks (MicrosoftDocs/azure-aks-docs articles/aks/gpu-health-monitoring.md):
  GPUMissing, GPU XID errors, NVLink status, InfiniBand link flapping.
- Xid numbers: NVLink errors are 74 and 144-150, 155 (leptonai/gpud components/accelerator/nvidia/xid/xid.go,
  after NVIDIA's Xid catalog https://docs.nvidia.com/deploy/xid-errors/); 13, 31, 43, 45 and 68 are
  application errors that leave the GPU healthy (NVIDIA/k8s-device-plugin internal/rm/health.go).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from tandem.faults.xid import XID_NAMES, xid_class, xid_numbers
from tandem.operator.api_types import FaultClass

Obj = dict[str, Any]

DEVICE_INFO_PREFIX = "mindx-dl-deviceinfo-"
NODE_INFO_PREFIX = "mindx-dl-nodeinfo-"
SWITCH_INFO_PREFIX = "mindx-dl-switchinfo-"
ASCEND_PREFIXES = (DEVICE_INFO_PREFIX, NODE_INFO_PREFIX, SWITCH_INFO_PREFIX)


@dataclass(frozen=True)
class DeviceFault:
    """One open accelerator fault on a node, as a device plugin or health monitor reported it."""

    node: str
    fault_class: FaultClass
    reason: str
    message: str
    source: str


# Levels that ask for nothing: the chip keeps working. SubHealthFault is handled by the job's own
# subHealthyStrategy, not by failing it. Any other level (including ones a newer plugin adds) means
# the workload must restart or the chip be isolated, so it counts.
_BENIGN_LEVELS = frozenset({"", "NotHandleFault", "NotHandle", "NormalNPU", "NormalNetwork", "SubHealthFault"})
_LINK_DOWN_CODES = frozenset({"81078603", "disconnected"})
_NODE_LOST_CODES = frozenset({"heartbeattimeout"})
_NODED_BENIGN = frozenset({"", "NotHandleFault", "Healthy"})
_SWITCH_FAULT_LEVELS = frozenset({"Separate", "RestartRequest"})
_PLUGIN = "ascend-device-plugin"


def _dict(value: Any) -> Obj:
    return value if isinstance(value, dict) else {}


def _loads(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return None


def _node_of(configmap: Obj) -> str:
    name = str(_dict(configmap.get("metadata")).get("name") or "")
    for prefix in ASCEND_PREFIXES:
        if name.startswith(prefix):
            return name[len(prefix):]
    return ""


def _chips(value: Any) -> list[str]:
    return [c.strip() for c in value.split(",") if c.strip()] if isinstance(value, str) else []


def _codes(value: Any) -> list[str]:
    if isinstance(value, str):
        return [c.strip() for c in value.split(",") if c.strip()]
    if isinstance(value, list):
        return [str(c) for c in value if c is not None]
    return []


def _level(entry: Obj) -> str:
    for key in ("fault_handling", "fault_level", "large_model_fault_level"):
        value = entry.get(key)
        if isinstance(value, str) and value:
            return value
    return ""


def _chip_faults(node: str, device_list: Obj) -> list[DeviceFault]:
    faults: list[DeviceFault] = []
    seen: set[tuple[str, FaultClass]] = set()
    # The detailed -Fault lists first, so that the plain -Unhealthy lists only add chips they miss.
    for key, value in device_list.items():
        if not isinstance(key, str) or not key.endswith("-Fault"):
            continue
        entries = _loads(value)
        for entry in entries if isinstance(entries, list) else []:
            if not isinstance(entry, dict):
                continue
            level = _level(entry)
            fault_type = str(entry.get("fault_type") or "")
            if level in _BENIGN_LEVELS and fault_type != "NodeUnhealthy":
                continue
            chip = str(entry.get("npu_name") or "")
            codes = _codes(entry.get("fault_code"))
            lowered = {c.lower() for c in codes}
            if fault_type == "NodeUnhealthy" or _NODE_LOST_CODES & lowered:
                cls, reason = FaultClass.NODE, "NodeHardwareFault"
            elif fault_type == "CardNetworkUnhealthy" or _LINK_DOWN_CODES & lowered:
                cls, reason = FaultClass.INTERCONNECT, "NpuLinkFault"
            else:
                cls, reason = FaultClass.DEVICE, "NpuChipFault"
            seen.add((chip, cls))
            label = " ".join(part for part in (fault_type, level) if part) or "fault"
            detail = f"fault codes {','.join(codes)}" if codes else "no fault code"
            faults.append(DeviceFault(node, cls, reason, f"{chip or 'node'}: {label} ({detail})", _PLUGIN))
    for key, value in device_list.items():
        if not isinstance(key, str):
            continue
        if key.endswith("-NetworkUnhealthy"):
            cls, reason, what = FaultClass.INTERCONNECT, "NpuNetworkUnhealthy", "network unhealthy"
        elif key.endswith("-Unhealthy"):
            cls, reason, what = FaultClass.DEVICE, "NpuUnhealthy", "unhealthy"
        else:
            continue
        for chip in _chips(value):
            if (chip, cls) not in seen:
                seen.add((chip, cls))
                faults.append(DeviceFault(node, cls, reason, f"{chip}: {what} ({key})", _PLUGIN))
    return faults


def _device_info_faults(node: str, data: Obj) -> list[DeviceFault]:
    faults: list[DeviceFault] = []
    cfg = _loads(data.get("DeviceInfoCfg"))
    if isinstance(cfg, dict):
        info = cfg.get("DeviceInfo")
        device_list = info.get("DeviceList") if isinstance(info, dict) else None
        if isinstance(device_list, dict):
            faults.extend(_chip_faults(node, device_list))
    for chip in _chips(data.get("ManuallySeparateNPU")):
        faults.append(DeviceFault(node, FaultClass.DEVICE, "NpuManuallySeparated",
                                  f"{chip}: isolated after repeated faults (ManuallySeparateNPU)", _PLUGIN))
    return faults


def _switch_faults(node: str, data: Obj) -> list[DeviceFault]:
    cfg = _loads(data.get("SwitchInfoCfg"))
    if not isinstance(cfg, dict):
        return []
    level = str(cfg.get("FaultLevel") or "")
    if level not in _SWITCH_FAULT_LEVELS and cfg.get("NodeStatus") != "UnHealthy":
        return []
    codes = [c if isinstance(c, str) else str(c.get("AssembledFaultCode") if isinstance(c, dict) else c)
             for c in cfg.get("FaultCode") or [] if c is not None] if isinstance(cfg.get("FaultCode"), list) else []
    return [DeviceFault(node, FaultClass.INTERCONNECT, "UnifiedBusFault",
                        f"UnifiedBus switch fault {level or cfg.get('NodeStatus')} ({', '.join(codes) or 'no code'})",
                        _PLUGIN)]


def _noded_faults(node: str, data: Obj) -> list[DeviceFault]:
    cfg = _loads(data.get("NodeInfo"))
    info = cfg.get("NodeInfo") if isinstance(cfg, dict) else None
    if not isinstance(info, dict):
        return []
    faults: list[DeviceFault] = []
    devices = info.get("FaultDevList")
    for dev in devices if isinstance(devices, list) else []:
        if not isinstance(dev, dict):
            continue
        level = str(dev.get("FaultLevel") or "")
        if level in _NODED_BENIGN:
            continue
        kind = str(dev.get("DeviceType") or "device")
        # NodeD watches the whole server (CPU, memory, disks, NPU boards) over IPMI: only an NPU entry is
        # an accelerator fault, the rest is the node's hardware.
        cls = FaultClass.DEVICE if "NPU" in kind.upper() else FaultClass.NODE
        codes = ",".join(_codes(dev.get("FaultCode"))) or "no code"
        faults.append(DeviceFault(node, cls, "NpuChipFault" if cls == FaultClass.DEVICE else "NodeHardwareFault",
                                  f"{kind} {dev.get('DeviceId', '?')}: {level} ({codes})", "noded"))
    if not faults and info.get("NodeStatus") == "UnHealthy":
        faults.append(DeviceFault(node, FaultClass.NODE, "NodeHardwareFault", "NodeD reports the node UnHealthy",
                                  "noded"))
    return faults


def ascend_faults(configmap: Obj) -> list[DeviceFault]:
    """Open faults in one Ascend MindCluster ConfigMap (device info, switch info or NodeD node info)."""
    if not isinstance(configmap, dict):
        return []
    node = _node_of(configmap)
    data = configmap.get("data")
    if not node or not isinstance(data, dict):
        return []
    return _device_info_faults(node, data) + _switch_faults(node, data) + _noded_faults(node, data)


def _xid_faults(node: str, kind: str, message: str) -> list[DeviceFault]:
    xids = xid_numbers(message)
    source = f"node-condition/{kind}"
    if not xids:
        return [DeviceFault(node, FaultClass.DEVICE, "GpuXid", f"{kind}: {message}".strip(), source)]
    faults = []
    for xid in xids:
        cls = xid_class(xid)
        if cls is None:
            continue
        reason = "NvlinkError" if cls == FaultClass.INTERCONNECT else "GpuXid"
        name = XID_NAMES.get(xid, "")
        faults.append(DeviceFault(node, cls, reason, f"Xid {xid}{f' ({name})' if name else ''}: {message}", source))
    return faults


def _core(kind: str) -> str:
    """The condition type without NVSentinel's "SysLogs" prefix, whose trailing s would make XID look like SXID."""
    low = kind.lower()
    return low[len("syslogs"):] if low.startswith("syslogs") else low


def _condition_class(kind: str) -> tuple[FaultClass, str] | None:
    """What a True node condition of this type says, for the GPU health conditions we know of."""
    low = _core(kind)
    if "nonfatal" in low or low in ("dcgmerror", "cspmaintenance"):
        return None
    if "sxid" in low or "nvswitch" in low or "nvlink" in low or "infiniband" in low:
        return FaultClass.INTERCONNECT, "NvlinkError" if "nvlink" in low else "GpuFabricError"
    if "fallenoff" in low or low == "gpumissing":
        return FaultClass.DEVICE, "GpuLost"
    if low.startswith("gpu"):
        return FaultClass.DEVICE, "GpuUnhealthy"
    return None


def nvidia_faults(node: Obj) -> list[DeviceFault]:
    """Open GPU faults a node's conditions report (NVSentinel, node-problem-detector GPU checks)."""
    if not isinstance(node, dict):
        return []
    name = str(_dict(node.get("metadata")).get("name") or "")
    conditions = _dict(node.get("status")).get("conditions")
    faults: list[DeviceFault] = []
    for cond in conditions if isinstance(conditions, list) else []:
        if not isinstance(cond, dict) or cond.get("status") != "True":
            continue
        kind = str(cond.get("type") or "")
        message = str(cond.get("message") or cond.get("reason") or "")
        low = _core(kind)
        if "xid" in low and "sxid" not in low:
            faults.extend(_xid_faults(name, kind, message))
            continue
        found = _condition_class(kind)
        if found:
            faults.append(DeviceFault(name, found[0], found[1], f"{kind}: {message}".strip(), f"node-condition/{kind}"))
    return faults


def _configmap_node(configmap: Any) -> str:
    return _node_of(configmap) if isinstance(configmap, dict) else ""


def is_device_plugin_report(configmap: Obj) -> bool:
    """One of the Ascend device plugin's per-node ConfigMaps (device info, switch info): what the operator
    polls in the plugin's namespace. NodeD's node info lives in another namespace (mindx-dl)."""
    return str(_dict(configmap.get("metadata")).get("name") or "").startswith((DEVICE_INFO_PREFIX, SWITCH_INFO_PREFIX))


def faults_by_node(nodes: Sequence[Obj], configmaps: Sequence[Obj]) -> dict[str, list[DeviceFault]]:
    """node_faults for every node, each given only its own ConfigMaps (grouped once, not nodes x ConfigMaps)."""
    by_node: dict[str, list[Obj]] = {}
    for configmap in configmaps:
        by_node.setdefault(_configmap_node(configmap), []).append(configmap)
    return {n["metadata"]["name"]: node_faults(n, by_node.get(n["metadata"]["name"], [])) for n in nodes}


def node_faults(node: Obj, configmaps: Sequence[Obj] | Iterable[Obj]) -> list[DeviceFault]:
    """Everything open for one node: its Ascend ConfigMaps (of all the ones given) and its GPU conditions."""
    name = str(_dict(_dict(node).get("metadata")).get("name") or "")
    faults: list[DeviceFault] = []
    for configmap in configmaps or []:
        if name and _configmap_node(configmap) == name:
            faults.extend(ascend_faults(configmap))
    faults.extend(nvidia_faults(node))
    return faults
