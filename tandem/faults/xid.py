"""What an NVIDIA Xid number says (https://docs.nvidia.com/deploy/xid-errors/index.html): NVLink errors are the
interconnect's, application errors (an illegal address, a killed channel) prove nothing about the GPU, the rest are
the device's. Used for kernel log lines (tandem.faults.reading) and GPU health node conditions
(tandem.operator.device_reports)."""

from __future__ import annotations

import re

from tandem.faults.taxonomy import FaultClass

NVLINK_XIDS = frozenset({74, 136, *range(144, 151), 155})
# Application errors: the GPU stays healthy. NVIDIA's k8s-device-plugin skips exactly these
# (https://github.com/NVIDIA/k8s-device-plugin/blob/main/internal/rm/health.go); every other Xid marks it unhealthy.
APPLICATION_XIDS = frozenset({13, 31, 43, 45, 68, 109})
XID_NAMES = {
    48: "double-bit ECC error", 63: "ECC page retirement or row remapping", 64: "ECC page retirement or row "
    "remapping failure", 74: "NVLink error", 79: "GPU has fallen off the bus", 92: "high single-bit ECC error rate",
    94: "contained ECC error", 95: "uncontained ECC error", 119: "GSP RPC timeout", 120: "GSP error",
    140: "unrecovered ECC error",
}  # fmt: skip

_XID_NUMBER = re.compile(
    r"ErrorCode\s*[:=]\s*(\d+)|\bXid\b\s*(?:\([^)]*\))?\s*[:=]?\s*(\d+)|^\s*\[\s*(\d+(?:\s*,\s*\d+)*)\s*\]",
    re.IGNORECASE,
)


def xid_numbers(text: str) -> list[int]:
    """The Xid numbers a condition message or kernel log line names, in order, without repeats."""
    found: list[int] = []
    for match in _XID_NUMBER.finditer(text or ""):
        groups = match.group(1) or match.group(2) or match.group(3) or ""
        for number in re.findall(r"\d+", groups):
            if int(number) not in found:
                found.append(int(number))
    return found


def xid_class(xid: int) -> FaultClass | None:
    """interconnect for NVLink Xids, None for application Xids (the GPU is fine), device otherwise."""
    if xid in NVLINK_XIDS:
        return FaultClass.INTERCONNECT
    if xid in APPLICATION_XIDS:
        return None
    return FaultClass.DEVICE
