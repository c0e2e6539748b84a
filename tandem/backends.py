"""Which torch.distributed backend an accelerator uses when a pool names none (docs/design.md#acceleratorpool): the
one table the operator (a pool's default) and the runtime (TANDEM_BACKEND's default) both read."""

from __future__ import annotations

DEFAULT_BACKEND: dict[str, str] = {"npu": "hccl", "gpu": "nccl", "cpu": "gloo"}


def effective_backend(accelerator: str, backend: str | None) -> str:
    """What a process on `accelerator` runs: a CPU only runs gloo (a pool that asks a CPU for hccl or nccl is a
    local stand-in); otherwise the pool's backend, or the accelerator's default."""
    if accelerator == "cpu":
        return "gloo"
    return backend or DEFAULT_BACKEND.get(accelerator, "gloo")
