"""Fixtures for the operator core's tests."""

from __future__ import annotations

from typing import Any

import pytest
from builders import make_node, make_pool

from tandem.operator.api import AcceleratorPool


@pytest.fixture
def pools() -> dict[str, AcceleratorPool]:
    return {"ascend-910b": make_pool(), "h20": make_pool("h20", "gpu", devices=4)}


@pytest.fixture
def nodes() -> list[dict[str, Any]]:
    return [make_node(f"ascend-{i}", "ascend-910b") for i in range(2)] + [make_node("h20-0", "h20")]
