"""Timestamps of built-in objects, decoded and encoded again as the API server does.

The API server decodes every `metav1.Time` field with Go's `time.Parse(time.RFC3339, ...)` (any
fractional seconds, `Z` or a numeric offset) and writes it back in UTC to the second
(`2026-12-02T10:00:00Z`); a `metav1.MicroTime` field (an Event's `eventTime`, a Lease's
`renewTime`) is parsed with the layout `2006-01-02T15:04:05.000000Z07:00`, which wants exactly six
fractional digits, and written back with six. A value that does not parse is a 400 with Go's
message. Which fields are times comes from the same OpenAPI schemas kubernetes-validate uses."""

from __future__ import annotations

import datetime
import json
import re
from functools import cache
from importlib import resources
from typing import Any

from tandem.localcluster import errors

KUBERNETES_VERSION = "1.32"
TIME_LAYOUT = "2006-01-02T15:04:05Z07:00"
MICRO_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
_TIME_DEF, _MICRO_DEF = "io.k8s.apimachinery.pkg.apis.meta.v1.Time", "io.k8s.apimachinery.pkg.apis.meta.v1.MicroTime"
ITEM, VALUE = "[]", "{}"  # path steps: every list item, every map value
Path = tuple[str, ...]
# Go's layout chunks (the text in its error message) and what each accepts.
_DATE_CHUNKS = (("2006", r"\d{4}"), ("-", "-"), ("01", r"\d{2}"), ("-", "-"), ("02", r"\d{2}"), ("T", "T"),
                ("15", r"\d{2}"), (":", ":"), ("04", r"\d{2}"), (":", ":"), ("05", r"\d{2}"))
_ZONE = ("Z07:00", r"Z|[+-]\d{2}:\d{2}")


class TimeParseError(ValueError):
    """Go's *time.ParseError text."""


# --- which fields are times ------------------------------------------------------------------
def _schema_dir() -> Any:
    return resources.files("kubernetes_validate") / "kubernetes-json-schema" / f"v{KUBERNETES_VERSION}.0-local-strict"


@cache
def _definitions() -> dict[str, Any]:
    return json.loads((_schema_dir() / "_definitions.json").read_text())["$defs"]


def _walk(schema: dict[str, Any], path: Path, seen: frozenset[str], found: list[tuple[Path, bool]]) -> None:
    ref = schema.get("$ref")
    if ref:
        name = ref.rsplit("/", 1)[-1]
        if name in (_TIME_DEF, _MICRO_DEF):
            found.append((path, name == _MICRO_DEF))
        elif name not in seen:  # recursive types (JSONSchemaProps) hold no times worth the loop
            _walk(_definitions().get(name, {}), path, seen | {name}, found)
        return
    for key, child in (schema.get("properties") or {}).items():
        _walk(child, (*path, key), seen, found)
    if isinstance(schema.get("items"), dict):
        _walk(schema["items"], (*path, ITEM), seen, found)
    if isinstance(schema.get("additionalProperties"), dict):
        _walk(schema["additionalProperties"], (*path, VALUE), seen, found)


@cache
def time_fields(kind: str, api_version: str) -> tuple[tuple[Path, bool], ...]:
    """(path, is MicroTime) of every time field of a built-in kind; none for a kind without a schema."""
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # as kubernetes-validate names files
    source = _schema_dir() / f"{kind.lower()}-{group_version}.json"
    if not source.is_file():
        return ()
    found: list[tuple[Path, bool]] = []
    _walk(json.loads(source.read_text()), (), frozenset(), found)
    return tuple(found)


# --- parsing as Go does --------------------------------------------------------------------------
def _fail(value: str, layout: str, rest: str, chunk: str) -> TimeParseError:
    return TimeParseError(f"parsing time {json.dumps(value)} as {json.dumps(layout)}: "
                          f"cannot parse {json.dumps(rest)} as {json.dumps(chunk)}")


def _scan(value: str, micro: bool) -> list[str]:
    """The text each layout chunk matched; raises Go's message at the first one that does not."""
    layout = MICRO_LAYOUT if micro else TIME_LAYOUT
    chunks = list(_DATE_CHUNKS)
    chunks.append((".000000", r"[.,]\d{6}") if micro else ("", r"(?:[.,]\d+)?"))  # Time takes any fraction
    chunks.append(_ZONE)
    parts, at = [], 0
    for chunk, pattern in chunks:
        match = re.compile(pattern).match(value, at)
        if match is None:
            raise _fail(value, layout, value[at:], chunk)
        parts.append(match.group(0))
        at = match.end()
    if at < len(value):
        raise TimeParseError(f"parsing time {json.dumps(value)}: extra text: {json.dumps(value[at:])}")
    return parts


def parse(value: str, micro: bool = False) -> datetime.datetime:
    parts = _scan(value, micro)
    year, month, day, hour, minute, second = (int(parts[i]) for i in (0, 2, 4, 6, 8, 10))
    ranges = (("month", month, 1, 12), ("hour", hour, 0, 23), ("minute", minute, 0, 59), ("second", second, 0, 59))
    for label, number, low, high in ranges:
        if not low <= number <= high:
            raise TimeParseError(f"parsing time {json.dumps(value)}: {label} out of range")
    fraction, zone = parts[11][1:], parts[12]
    offset = datetime.timedelta(0) if zone == "Z" else \
        (1 if zone[0] == "+" else -1) * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
    try:
        moment = datetime.datetime(year, month, day, hour, minute, second, tzinfo=datetime.timezone(offset))
    except ValueError as exc:
        raise TimeParseError(f"parsing time {json.dumps(value)}: day out of range") from exc
    micros = int((fraction + "000000")[:6]) if fraction else 0  # Go keeps nanoseconds; JSON shows at most micros
    return moment.astimezone(datetime.UTC) + datetime.timedelta(microseconds=micros)


def encode(moment: datetime.datetime, micro: bool = False) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if micro else "%Y-%m-%dT%H:%M:%SZ")


def normalise(value: Any, micro: bool = False) -> Any:
    """A time field's value as the API server stores it; null stays null (Go's zero time)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise TimeParseError(f"json: cannot unmarshal {type(value).__name__} into Go value of type string")
    return encode(parse(value, micro), micro)


# --- objects -----------------------------------------------------------------------------------
def _rewrite(node: Any, path: Path, micro: bool) -> Any:
    if not path:
        return normalise(node, micro)
    step, rest = path[0], path[1:]
    if step == ITEM and isinstance(node, list):
        return [_rewrite(item, rest, micro) for item in node]
    if step == VALUE and isinstance(node, dict):
        return {key: _rewrite(item, rest, micro) for key, item in node.items()}
    if isinstance(node, dict) and node.get(step) is not None:
        return {**node, step: _rewrite(node[step], rest, micro)}
    return node


def normalise_object(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """The built-in object with its time fields decoded and encoded again; a 400 for one that
    does not parse, worded as the API server's decoding error."""
    api_version = str(obj.get("apiVersion") or "v1")
    try:
        for path, micro in time_fields(kind, api_version):
            obj = _rewrite(obj, path, micro)
    except TimeParseError as exc:
        version = api_version.rpartition("/")[2]
        raise errors.bad_request(f'{kind} in version "{version}" cannot be handled as a {kind}: {exc}') from exc
    return obj
