"""The device seam: the only module that knows `npu | gpu | cpu` apart.

Everything else asks a `DeviceLayer` for a device string, the distributed backend, the autocast dtype,
to synchronise, for memory statistics and to seed. `torch_npu` is imported only when the accelerator is
`npu`, through `import_module` (tests pass a fake module object there; nothing here pretends a fake
ran on an NPU).
"""

from __future__ import annotations

import importlib
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np
import structlog
import torch

from tandem.chips import GENERATION_ENV, generation_of
from tandem.runtime.faults import FaultError

log = structlog.get_logger("tandem.device")

# Peak dense bf16 FLOP/s per device for the MFU estimate (vendor data sheets).
PEAK_FLOPS = {"npu": 313e12, "gpu": 989e12}


@dataclass
class DeviceLayer:
    accelerator: str
    backend: str
    local_rank: int
    local_world: int
    npu: ModuleType | None = None
    # None: bf16 autocast on accelerators and fp32 on the CPU; True/False forces it either way.
    mixed_precision: bool | None = None
    _module: Any = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.accelerator == "npu":
            if self.npu is None:
                raise FaultError("user", "TorchNpuMissing", "accelerator npu needs torch_npu, which was not loaded")
            self._module = self.npu.npu
        elif self.accelerator == "gpu":
            self._module = torch.cuda
        else:
            self._module = None

    @property
    def device_type(self) -> str:
        return {"npu": "npu", "gpu": "cuda"}.get(self.accelerator, "cpu")

    @property
    def device_string(self) -> str:
        return "cpu" if self.accelerator == "cpu" else f"{self.device_type}:{self.local_rank}"

    @property
    def device(self) -> torch.device:
        # "npu" parses only once torch_npu has registered itself as torch's privateuse1 backend.
        return torch.device(self.device_string)

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """bf16 on accelerators; the CPU trains in fp32 (bf16 autocast on CPU is slow and not bit-stable)."""
        mixed = self.accelerator != "cpu" if self.mixed_precision is None else self.mixed_precision
        return torch.bfloat16 if mixed else None

    @property
    def peak_flops(self) -> float | None:
        return PEAK_FLOPS.get(self.accelerator)

    def setup(self) -> None:
        if self._module is not None:
            self._module.set_device(self.local_rank)
            if self.accelerator == "npu":
                self._note_chip_generation()
        else:
            # One intra-op thread per rank and core: ranks oversubscribing the cores slow each other down,
            # and a fixed thread count keeps CPU results reproducible from run to run.
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.local_world))

    def _note_chip_generation(self) -> None:
        """The chip generation torch_npu reports (`Ascend910B3` is ascend910b), where the kernels look for it
        (TANDEM_CHIP_GENERATION); a pool that names another one is told in the log (the device is right)."""
        found = generation_of(str(self._module.get_device_name(self.local_rank)))
        named = os.environ.get(GENERATION_ENV)
        if found == "unknown":
            return
        if named and generation_of(named) != found:
            log.warning("chip_generation_mismatch", pool=named, device=found,
                        detail="the pool's chipGeneration differs from the device; the kernels follow the device")
        os.environ[GENERATION_ENV] = found

    def synchronize(self) -> None:
        if self._module is not None:
            self._module.synchronize()

    def seed(self, seed: int) -> None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
        torch.manual_seed(seed)
        if self._module is not None:
            self._module.manual_seed_all(seed)

    def rng_state(self) -> dict[str, Any]:
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
        if self._module is not None:
            state["device"] = self._module.get_rng_state()
        return state

    def set_rng_state(self, state: dict[str, Any]) -> None:
        torch.set_rng_state(state["torch"])
        random.setstate(state["python"])
        if self._module is not None and "device" in state:
            self._module.set_rng_state(state["device"])

    def memory_stats(self) -> dict[str, float]:
        if self._module is None:
            return {}
        return {
            "allocated_gib": self._module.memory_allocated() / 2**30,
            "max_allocated_gib": self._module.max_memory_allocated() / 2**30,
        }

    def autocast(self) -> Any:
        dtype = self.autocast_dtype
        return torch.autocast(self.device_type, dtype=dtype, enabled=dtype is not None)


def load_device_layer(
    accelerator: str,
    backend: str,
    local_rank: int,
    local_world: int,
    *,
    mixed_precision: bool | None = None,
    import_module: Callable[[str], ModuleType] = importlib.import_module,
) -> DeviceLayer:
    """The seam: the only place that imports a vendor plugin."""
    npu = None
    if accelerator == "npu":
        try:
            npu = import_module("torch_npu")
        except ImportError as exc:
            raise FaultError(
                "user",
                "TorchNpuMissing",
                f"accelerator npu needs torch_npu and the CANN toolkit in the image: {exc}",
            ) from exc
    return DeviceLayer(accelerator, backend, local_rank, local_world, npu=npu, mixed_precision=mixed_precision)
