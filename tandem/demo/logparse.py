"""The runtime's log lines as records (pure).

The runtime logs with structlog: `key=repr(value)` pairs (`timestamp='...' level='info' event='step'
step=20 loss='4.21' rank=0`), or one JSON object per line with TANDEM_LOG_FORMAT=json. Anything
else in a pod's log (a traceback, torch's warnings) is not a record and is skipped."""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

# A value is a quoted Python repr (escapes included) or a bare token up to the next space.
_PAIR = re.compile(r"""(\w+)=('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\S+)""")


@dataclass(frozen=True)
class LogRecord:
    time: float  # seconds since the epoch, from the line's own timestamp (microseconds)
    event: str
    rank: int | None = None
    fields: dict[str, Any] = field(default_factory=dict)

    @property
    def step(self) -> int | None:
        value = self.fields.get("step")
        return value if isinstance(value, int) else None

    @property
    def loss(self) -> float | None:
        # The runtime logs repr(float) as a string so that no digit is lost on the way.
        try:
            return float(self.fields["loss"])
        except (KeyError, TypeError, ValueError):
            return None


def _value(text: str) -> Any:
    if text[:1] in ("'", '"'):
        try:
            return ast.literal_eval(text)
        except (ValueError, SyntaxError):
            return text.strip("'\"")
    if text == "None":
        return None
    if text in ("True", "False"):
        return text == "True"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_time(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (ValueError, AttributeError):
        return None


def parse_line(line: str) -> LogRecord | None:
    """One log line -> a record, or None when the line is not one of the runtime's events."""
    line = line.strip()
    if not line:
        return None
    fields: dict[str, Any]
    if line.startswith("{"):
        try:
            fields = json.loads(line)
        except ValueError:
            return None
        if not isinstance(fields, dict):
            return None
    else:
        if not line.startswith("timestamp="):
            return None
        fields = {key: _value(raw) for key, raw in _PAIR.findall(line)}
    event, stamp = fields.pop("event", None), fields.pop("timestamp", None)
    when = parse_time(stamp) if isinstance(stamp, str) else None
    if not isinstance(event, str) or when is None:
        return None
    rank = fields.pop("rank", None)
    return LogRecord(time=when, event=event, rank=rank if isinstance(rank, int) else None, fields=fields)


def parse_lines(text: str) -> list[LogRecord]:
    return [record for line in text.splitlines() if (record := parse_line(line)) is not None]
