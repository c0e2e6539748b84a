"""The device seam (NPU through a fake torch_npu), the watchdog, metrics, data and the model's ops."""

from __future__ import annotations

import types
from pathlib import Path
from typing import Any

import pytest
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


class FakeNpu:
    """Records the calls the runtime makes on `torch_npu.npu`; it runs nothing."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[Any, ...]]] = []

    def __getattr__(self, name: str) -> Any:
        def record(*args: Any) -> Any:
            self.calls.append((name, args))
            return {"memory_allocated": 2**30, "max_memory_allocated": 2**31}.get(name, b"rng")

        return record


def test_npu_path_uses_hccl_npu_devices_and_torch_npu_through_the_seam() -> None:
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
    assert fake.npu.calls[:3] == [("set_device", (3,)), ("synchronize", ()), ("manual_seed_all", (5,))]


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
