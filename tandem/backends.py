"""Which torch.distributed backend an accelerator uses when a pool names none (docs/design.md#acceleratorpool): the
one table the operator (a pool's default) and the runtime (TANDEM_BACKEND's default) both read."""

from __future__ import annotations

DEFAULT_BACKEND: dict[str, str] = {"npu": "hccl", "gpu": "nccl", "cpu": "gloo"}
