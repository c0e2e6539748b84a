"""The runtime Checkpointer's host staging buffers: allocated once and reused by later checkpoints of the same
layout, never overwritten while a write still reads them, replaced when the state's layout changes (a dtype, the
optimizer's parameters), pinned only for a state that lives on an accelerator. In process, CPU, tiny models."""

from __future__ import annotations

import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
import torch.distributed.checkpoint as dcp

from tandem.runtime.checkpoint import Checkpointer
from tandem.runtime.ckpt_layout import inspect, step_dir
from tandem.runtime.device import load_device_layer


def _checkpointer(root: Path, device: Any = None) -> Checkpointer:
    device = device or load_device_layer("cpu", "gloo", 0, 1)
    return Checkpointer(root, rank=0, keep=10, device=device, process_group=None, manifest_extra={"worldSize": 1})


def _save(ckpt: Checkpointer, step: int, model: torch.nn.Module, optim: torch.optim.Optimizer, **kw: Any) -> None:
    ckpt.save(step, model, optim, train={"samplesConsumed": step}, rng={}, blocking=kw.get("blocking", True))


def _train(model: torch.nn.Module, optim: torch.optim.Optimizer) -> None:
    model(torch.randn(3, 4)).square().mean().backward()
    optim.step()
    optim.zero_grad(set_to_none=True)


def _loaded(root: Path, step: int, model: torch.nn.Module, optim: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    _checkpointer(root).load(inspect(step_dir(root, step), step), model, optim)
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def _buffer_pointers(ckpt: Checkpointer) -> list[int]:
    assert ckpt._buffers is not None
    return [t.data_ptr() for t in ckpt._buffers["model"].values()]


def test_successive_saves_reuse_the_buffers_and_write_the_weights_of_their_step(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    optim = torch.optim.AdamW(model.parameters(), lr=0.1)
    ckpt = _checkpointer(tmp_path)
    expected, pointers = {}, []
    for step in (1, 2, 3):
        _train(model, optim)
        expected[step] = _weights(model)
        _save(ckpt, step, model, optim, blocking=False)
        ckpt.wait_staged()
        pointers.append(_buffer_pointers(ckpt))
        _train(model, optim)  # the weights change while the write runs
    ckpt.wait()
    assert pointers[0] == pointers[1] == pointers[2]  # one allocation, reused
    for step, weights in expected.items():
        fresh = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
        loaded = _loaded(tmp_path, step, fresh, torch.optim.AdamW(fresh.parameters(), lr=0.1))
        assert loaded.keys() == weights.keys()
        assert all(torch.equal(loaded[name], weights[name]) for name in weights), step


def test_a_save_waits_for_the_previous_write_before_it_overwrites_the_buffers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_save = dcp.save

    def slow_save(*args: Any, **kwargs: Any) -> Any:
        time.sleep(0.3)  # the write reads the buffers only now: a copy in the meantime would be in the file
        return real_save(*args, **kwargs)

    monkeypatch.setattr(dcp, "save", slow_save)
    model = torch.nn.Linear(4, 4, bias=False)
    optim = torch.optim.SGD(model.parameters(), lr=0.1)
    ckpt = _checkpointer(tmp_path)
    with torch.no_grad():
        model.weight.fill_(1.0)
    _save(ckpt, 1, model, optim, blocking=False)
    ckpt.wait_staged()
    with torch.no_grad():
        model.weight.fill_(2.0)
    _save(ckpt, 2, model, optim, blocking=False)  # checkpoint 1 is still being written
    ckpt.wait()
    monkeypatch.undo()
    for step, value in ((1, 1.0), (2, 2.0)):
        fresh = torch.nn.Linear(4, 4, bias=False)
        loaded = _loaded(tmp_path, step, fresh, torch.optim.SGD(fresh.parameters(), lr=0.1))
        assert torch.equal(loaded["weight"], torch.full((4, 4), value)), step


def test_a_model_cast_to_another_dtype_is_saved_in_that_dtype(tmp_path: Path) -> None:
    model = torch.nn.Linear(4, 4, bias=False)
    ckpt = _checkpointer(tmp_path)
    _save(ckpt, 1, model, torch.optim.SGD(model.parameters(), lr=0.1))
    model.double()
    with torch.no_grad():
        model.weight.fill_(1 / 3)
    _save(ckpt, 2, model, torch.optim.SGD(model.parameters(), lr=0.1))
    metadata = dcp.FileSystemReader(str(step_dir(tmp_path, 2))).read_metadata()
    assert metadata.state_dict_metadata["model.weight"].properties.dtype == torch.float64
    fresh = torch.nn.Linear(4, 4, bias=False).double()
    loaded = _loaded(tmp_path, 2, fresh, torch.optim.SGD(fresh.parameters(), lr=0.1))
    assert torch.equal(loaded["weight"], torch.full((4, 4), 1 / 3, dtype=torch.float64))


def test_an_optimizer_that_gains_parameters_gets_new_buffers(tmp_path: Path) -> None:
    """Layers unfrozen half-way: the optimizer's state gains tensors the first checkpoint had no buffers for."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    optim = torch.optim.AdamW(model[0].parameters(), lr=0.1)
    ckpt = _checkpointer(tmp_path)
    _train(model, optim)
    _save(ckpt, 1, model, optim)
    optim.add_param_group({"params": list(model[1].parameters())})
    _train(model, optim)
    _save(ckpt, 2, model, optim)
    expected = _weights(model)
    fresh = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Linear(4, 2))
    fresh_optim = torch.optim.AdamW(fresh[0].parameters(), lr=0.1)
    fresh_optim.add_param_group({"params": list(fresh[1].parameters())})
    loaded = _loaded(tmp_path, 2, fresh, fresh_optim)
    assert all(torch.equal(loaded[name], expected[name]) for name in expected)
    assert torch.equal(fresh_optim.state[fresh[1].weight]["exp_avg"], optim.state[model[1].weight]["exp_avg"])


def test_a_state_on_the_cpu_is_not_pinned_on_an_accelerator_node(tmp_path: Path) -> None:
    """Pinned memory only speeds a copy from the device; a CPU-resident state (offloaded) is copied as it is."""
    device = SimpleNamespace(accelerator="gpu", synchronize=lambda: None)
    model = torch.nn.Linear(4, 4, bias=False)
    ckpt = _checkpointer(tmp_path, device)
    _save(ckpt, 1, model, torch.optim.SGD(model.parameters(), lr=0.1))
    assert ckpt._buffers is not None and not ckpt._buffers["model"]["weight"].is_pinned()
    fresh = torch.nn.Linear(4, 4, bias=False)
    loaded = _loaded(tmp_path, 1, fresh, torch.optim.SGD(fresh.parameters(), lr=0.1))
    assert torch.equal(loaded["weight"], model.weight.detach())

