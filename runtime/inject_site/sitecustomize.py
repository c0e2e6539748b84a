"""Imported at start-up by every Python process of a command run with `tandem-run --inject-faults`
(tandem.runtime.inject_site says why): fires TANDEM_FAULT_INJECT when the process prints a progress line."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import Any, TextIO


class _Watched:
    """A text stream that passes every write through, then, once a progress line is complete (its newline
    written, so the supervisor reads it whole), fires the injected faults of its step."""

    def __init__(self, inner: TextIO, step_of: Callable[[str], int | None], fire: Callable[[int], None]) -> None:
        self._inner, self._step_of, self._fire, self._line = inner, step_of, fire, ""

    def write(self, text: str) -> int:
        written = self._inner.write(text)
        *complete, self._line = (self._line + text).split("\n")
        for line in complete:
            step = self._step_of(line)
            if step is not None:
                self._inner.flush()
                self._fire(step)
        return written

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _install() -> None:
    text = os.environ.get("TANDEM_FAULT_INJECT", "")
    if not text:
        return
    from tandem.runtime.inject_site import PROGRESS_REGEX_ENV
    from tandem.runtime.run import DEFAULT_PROGRESS, progress_step
    from tandem.sdk import _inject

    pattern = re.compile(os.environ[PROGRESS_REGEX_ENV]) if os.environ.get(PROGRESS_REGEX_ENV) else DEFAULT_PROGRESS

    def fire(step: int) -> None:
        if "torch.distributed.run" in sys.modules and "RANK" not in os.environ:
            return  # torchrun's agent: only its workers train
        _inject(step)

    def step_of(line: str) -> int | None:
        return progress_step(pattern, line)

    sys.stdout = _Watched(sys.stdout, step_of, fire)  # type: ignore[assignment]
    sys.stderr = _Watched(sys.stderr, step_of, fire)  # type: ignore[assignment]


_install()
