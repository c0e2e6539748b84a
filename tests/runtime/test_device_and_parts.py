"""The device seam (NPU through a fake torch_npu), the watchdog, metrics, data and the model's ops."""

from __future__ import annotations

import os
import types
from pathlib import Path
from typing import Any

import pytest
import structlog
import structlog.testing
import torch
from waiting import wait_for

from tandem.backends import effective_backend
from tandem.runtime import ops
from tandem.runtime.config import PRESETS, DataConfig
from tandem.runtime.data import EOS, TokenFile, build_token_file, decode, encode
from tandem.runtime.device import load_device_layer
from tandem.runtime.faults import FaultError
from tandem.runtime.metrics import Metrics, step_stats
from tandem.runtime.model import Decoder, parameter_count
from tandem.runtime.watchdog import Beat, Watchdog, overdue


class FakeNpu(types.ModuleType):
    """`torch_npu.npu` as far as the runtime uses it (runtime/device.py), with torch_npu 2.6.0's signatures
    (Ascend/pytorch@v7.1.0-pytorch2.6.0: torch_npu/npu/utils.py, random.py, memory.py, __init__.py). A module with
    these functions and no catch-all: a misspelt or unreal function is an AttributeError, a wrong argument a
    TypeError. It runs nothing; `calls` records (name, the arguments given) for the assertions."""

    def __init__(self, device_name: str = "Ascend910B3", device_count: int = 8) -> None:
        super().__init__("torch_npu.npu")
        self.calls: list[tuple[str, tuple[Any, ...]]] = []
        self._device_name = device_name  # what torch_npu._C._npu_getDeviceName() answers, e.g. an Atlas A2 SoC
        self._device_count = device_count

    def _record(self, name: str, *given: Any) -> None:
        self.calls.append((name, tuple(value for value in given if value is not None)))

    def _index(self, device: int | str | torch.device | None) -> int:
        """torch_npu's _get_device_index(device, optional=True): None is the current device (0 here)."""
        if device is None:
            return 0
        if isinstance(device, torch.device):
            return device.index or 0
        if isinstance(device, str):
            kind, _, index = device.partition(":")
            if kind != "npu" or not (index.isdigit() or index == ""):
                raise ValueError(f"Expected a npu device, but got: {device}")
            return int(index or 0)
        if isinstance(device, int) and not isinstance(device, bool):
            return device
        raise TypeError(f"device must be an int, str or torch.device, not {type(device).__name__}")

    def set_device(self, device: int | str | torch.device) -> None:  # utils.py: set_device(device)
        self._index(device)
        self._record("set_device", device)

    def synchronize(self, device: int | str | torch.device | None = None) -> None:  # utils.py
        self._index(device)
        self._record("synchronize", device)

    def get_device_name(self, device_name: int | str | torch.device | None = None) -> str:  # __init__.py
        if not 0 <= self._index(device_name) < self._device_count:
            raise AssertionError("Invalid device id")
        self._record("get_device_name", device_name)
        return self._device_name

    def manual_seed_all(self, seed: int) -> None:  # random.py: manual_seed_all(seed), seed = int(seed)
        self._record("manual_seed_all", int(seed))

    def get_rng_state(self, device: int | str | torch.device = "npu") -> torch.Tensor:  # random.py -> ByteTensor
        self._index(device)
        self._record("get_rng_state", None if device == "npu" else device)
        return torch.zeros(16, dtype=torch.uint8)

    def set_rng_state(self, new_state: torch.Tensor, device: int | str | torch.device = "npu") -> None:  # random.py
        if not isinstance(new_state, torch.Tensor) or new_state.dtype != torch.uint8:
            raise TypeError("set_rng_state takes the ByteTensor get_rng_state returned")
        self._record("set_rng_state", new_state, None if device == "npu" else device)

    def memory_allocated(self, device: int | str | torch.device | None = None) -> int:  # memory.py, bytes
        self._record("memory_allocated", device)
        return 2**30

    def max_memory_allocated(self, device: int | str | torch.device | None = None) -> int:  # memory.py, bytes
        self._record("max_memory_allocated", device)
        return 2**31


def test_npu_path_uses_hccl_npu_devices_and_torch_npu_through_the_seam(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TANDEM_CHIP_GENERATION", raising=False)
    fake = types.SimpleNamespace(npu=FakeNpu())
    imported: list[str] = []

    def import_module(name: str) -> Any:
        imported.append(name)
        return fake

    layer = load_device_layer("npu", "hccl", local_rank=3, local_world=8, import_module=import_module)
    assert imported == ["torch_npu"]
    assert (layer.backend, layer.device_type, layer.device_string) == ("hccl", "npu", "npu:3")
    assert layer.autocast_dtype == torch.bfloat16 and layer.peak_flops
    assert effective_backend("npu", layer.backend) == "hccl"
    layer.setup()
    layer.synchronize()
    layer.seed(5)
    assert layer.memory_stats() == {"allocated_gib": 1.0, "max_allocated_gib": 2.0}
    assert fake.npu.calls[:4] == [("set_device", (3,)), ("get_device_name", (3,)), ("synchronize", ()),
                                  ("manual_seed_all", (5,))]
    # The pool named no generation: the device's name (Ascend910B3) tells the kernels.
    assert os.environ["TANDEM_CHIP_GENERATION"] == "ascend910b"


def test_a_pool_that_names_another_generation_is_told_and_the_device_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANDEM_CHIP_GENERATION", "ascend910")
    fake = types.SimpleNamespace(npu=FakeNpu())
    layer = load_device_layer("npu", "hccl", local_rank=0, local_world=8, import_module=lambda name: fake)
    with structlog.testing.capture_logs() as logs:
        layer.setup()
    assert os.environ["TANDEM_CHIP_GENERATION"] == "ascend910b"
    assert [(e["event"], e["pool"], e["device"]) for e in logs] == [
        ("chip_generation_mismatch", "ascend910", "ascend910b")]


def test_missing_torch_npu_is_a_user_fault_not_a_traceback() -> None:
    def import_module(name: str) -> Any:
        raise ModuleNotFoundError(f"No module named {name!r}")

    with pytest.raises(FaultError) as err:
        load_device_layer("npu", "hccl", 0, 1, import_module=import_module)
    assert (err.value.cls, err.value.reason) == ("user", "TorchNpuMissing")


def test_cpu_and_gpu_never_import_torch_npu() -> None:
    def import_module(name: str) -> Any:
        raise AssertionError(f"imported {name}")

    cpu = load_device_layer("cpu", "gloo", 0, 2, import_module=import_module)
    assert (str(cpu.device), cpu.autocast_dtype, cpu.memory_stats()) == ("cpu", None, {})
    gpu = load_device_layer("gpu", "nccl", 1, 8, import_module=import_module)
    assert (str(gpu.device), gpu.autocast_dtype) == ("cuda:1", torch.bfloat16)
    assert effective_backend("cpu", "hccl") == "gloo"


def test_watchdog_fires_on_a_stalled_beat_only() -> None:
    now = [100.0]
    beat = Beat("collective", 7, at=100.0, wall=0.0)
    assert not overdue(beat, 104.9, 5) and overdue(beat, 105.1, 5)
    fired: list[tuple[Beat, float]] = []
    dog = Watchdog(0.2, lambda b, idle: fired.append((b, idle)), clock=lambda: now[0])
    dog.start()
    dog.beat("collective", 7)
    now[0] += 1.0
    wait_for(lambda: fired, timeout=5, what="the watchdog to fire")
    assert fired and fired[0][0].step == 7 and fired[0][1] >= 1.0
    dog.stop()


def test_metrics_log_fields_and_prometheus_text() -> None:
    stats = step_stats(step=3, loss=2.5, tokens=4096, seconds=2.0, flops_per_token=1e9, world=4,
                       peak_flops=1e12, stall=0.01)  # fmt: skip
    assert (stats.tokens_per_second, stats.mfu) == (2048.0, pytest.approx(2048 * 1e9 / 4e12))
    assert step_stats(step=1, loss=1, tokens=1, seconds=1, flops_per_token=1, world=1, peak_flops=None,
                      stall=0).mfu is None  # fmt: skip
    metrics = Metrics()
    metrics.observe(stats)
    text = metrics.text()
    for line in ("tandem_train_step 3.0", "tandem_train_loss 2.5", "tandem_train_tokens_per_second 2048.0",
                 "tandem_train_checkpoint_stall_seconds 0.01"):  # fmt: skip
        assert line in text


def test_tokenizer_and_token_file(tmp_path: Path) -> None:
    assert decode(encode("héllo ✓")) == "héllo ✓"
    corpus = tmp_path / "texts"
    corpus.mkdir()
    (corpus / "a.txt").write_text("alpha " * 200)
    (corpus / "b.txt").write_text("beta " * 200)
    path = build_token_file(DataConfig(path=str(corpus), maxBytes=1500), tmp_path / "data")
    assert build_token_file(DataConfig(path=str(corpus), maxBytes=1500), tmp_path / "data") == path  # reused
    tokens = TokenFile(path, seq_len=16, seed=1, shuffle=False)
    assert tokens.tokens.size == 1502 and int(tokens.tokens[1200]) == EOS
    x, y = tokens.batch([0, 1])
    assert x.shape == (2, 16) and (x[:, 1:] == y[:, :-1]).all() and decode(x[0]) == "alpha alpha alph"
    with pytest.raises(FaultError):
        build_token_file(DataConfig(path=str(tmp_path / "missing")), tmp_path / "d2")


def test_the_stdlib_corpus_builds(tmp_path: Path) -> None:
    path = build_token_file(DataConfig(maxBytes=50_000), tmp_path)
    assert TokenFile(path, 32, 0, True).tokens.size > 50_000


def test_two_nodes_build_the_token_file_at_once_on_the_shared_volume(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Every node's launcher builds it before its workers start, and each is pid 1 in its pod: temporary files
    named after the pid were one file for both, and the launcher that renamed second lost it (FileNotFoundError, a
    `storage` fault of the whole first attempt)."""
    import os
    import threading

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("hello tandem " * 2000)
    monkeypatch.setattr(os, "getpid", lambda: 1)
    real_replace = os.replace
    b_renaming, a_done = threading.Event(), threading.Event()

    def replace(source: Any, target: Any) -> None:  # node B is about to rename when node A builds and renames
        if threading.current_thread().name == "node-b" and not a_done.is_set():
            b_renaming.set()
            a_done.wait(30)
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace)
    errors: dict[str, BaseException] = {}

    def build(node: str) -> None:
        try:
            build_token_file(DataConfig(path=str(corpus)), tmp_path / "volume" / "data")
        except BaseException as error:
            errors[node] = error
        finally:
            if node == "node-a":
                a_done.set()

    b = threading.Thread(target=build, args=("node-b",), name="node-b")
    b.start()
    assert b_renaming.wait(30)
    a = threading.Thread(target=build, args=("node-a",), name="node-a")
    a.start()
    a.join(30)
    b.join(30)
    assert errors == {}
    folder = tmp_path / "volume" / "data"  # the token file and its meta, no temporary file left behind
    assert sorted(p.suffix for p in folder.iterdir()) == [".json", ".u16"]


def test_model_calls_every_op_through_the_ops_module(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: dict[str, int] = {}
    for name in ("rms_norm", "swiglu", "apply_rope", "attention", "linear_cross_entropy"):
        original = getattr(ops, name)

        def counted(*args: Any, _name: str = name, _original: Any = original) -> Any:
            calls[_name] = calls.get(_name, 0) + 1
            return _original(*args)

        monkeypatch.setattr(ops, name, counted)
    size = PRESETS["test"]
    torch.manual_seed(0)
    model = Decoder(size)
    assert sum(p.numel() for p in model.parameters()) == parameter_count(size) < 200_000
    tokens = torch.randint(0, size.vocab, (2, 16))
    loss = model(tokens[:, :-1], tokens[:, 1:])
    loss.backward()
    assert 5.0 < loss.item() < 6.0  # ~ln(258) at initialisation
    layers = size.layers
    assert calls == {"rms_norm": 2 * layers + 1, "swiglu": layers, "apply_rope": 2 * layers, "attention": layers,
                     "linear_cross_entropy": 1}  # fmt: skip
