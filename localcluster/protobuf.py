"""Kubernetes protobuf bodies (`application/vnd.kubernetes.protobuf`) decoded to the JSON the API
server would have seen: client-go's typed clientset sends built-in objects this way since 1.32, so
`kubectl create configmap|namespace|service|quota` and `kubectl run` do. client-go falls back to
JSON after a 415 only for CBOR, never for protobuf, so the double must read it.

The wire format (https://kubernetes.io/docs/reference/using-api/api-concepts/#protobuf-encoding):
the magic `k8s\\0`, then a runtime.Unknown {typeMeta {apiVersion, kind}, raw, contentEncoding,
contentType} whose `raw` is the object's message. Messages are read with protobuf_types.yaml
(protobuf_gen.py made it from the Go types): field numbers, JSON names, and the Go shape that
decides what encoding/json would write (a non-pointer zero value under `omitempty` is left out,
gogo-protobuf sends those anyway; a pointer sent is kept even when zero)."""

from __future__ import annotations

import base64
import datetime
import functools
import json
import struct
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from tandem.localcluster import errors

MAGIC = b"k8s\x00"
Field = tuple[str, str, str]  # JSON name, type, flags
WireField = tuple[int, int, Any]  # number, wire type, value (int or bytes)


@functools.cache
def _table() -> tuple[dict[str, str], dict[str, dict[int, Field]]]:
    data = yaml.safe_load((Path(__file__).with_name("protobuf_types.yaml")).read_text())
    messages = {}
    for name, fields in data["messages"].items():
        parsed = [line.split(" ") for line in fields or []]
        messages[name] = {int(number): (json_name, kind, flags) for number, json_name, kind, flags in parsed}
    return data["kinds"], messages


class _Malformed(ValueError):
    pass


def decode_object(raw: bytes) -> dict[str, Any]:
    """The object in a protobuf request body; 400 BadRequest when it does not decode (as the
    server's protobuf serializer refuses it), 415 for a kind the table does not hold."""
    if not raw.startswith(MAGIC):
        raise errors.bad_request("provided data does not appear to be a protobuf message, expected prefix "
                                 '"k8s\\x00"')
    try:
        envelope = {number: value for number, _, value in _fields(raw[len(MAGIC):])}
        type_meta = {number: value for number, _, value in _fields(envelope.get(1, b""))}
        api_version, kind = (type_meta.get(n, b"").decode() for n in (1, 2))
        kinds, _ = _table()
        if kind not in kinds:
            raise errors.KubernetesError(
                status=415, reason="UnsupportedMediaType", details={},
                message=f"the local API cannot decode {kind or 'this object'} from protobuf: send it as "
                        "application/json")
        obj = _message(kinds[kind], envelope.get(2, b""))
    except (ValueError, OverflowError, OSError, struct.error, IndexError) as exc:  # _Malformed is a ValueError
        raise errors.bad_request(f"the request body is not a valid protobuf message: {exc}") from exc
    return {"apiVersion": api_version, "kind": kind, **obj}


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data) or shift > 63:
            raise _Malformed("truncated varint")
        byte = data[pos]
        result |= (byte & 0x7F) << shift
        pos, shift = pos + 1, shift + 7
        if not byte & 0x80:
            return result, pos


def _fields(data: bytes) -> Iterator[WireField]:
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 1:
            value, pos = data[pos:pos + 8], pos + 8
        elif wire == 2:
            length, pos = _varint(data, pos)
            value, pos = data[pos:pos + length], pos + length
        elif wire == 5:
            value, pos = data[pos:pos + 4], pos + 4
        else:
            raise _Malformed(f"unsupported wire type {wire}")
        if pos > len(data):
            raise _Malformed("truncated field")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _scalar(kind: str, wire: int, value: Any) -> Any:
    if kind == "string":
        return bytes(value).decode()
    if kind == "bytes":
        return base64.b64encode(bytes(value)).decode()
    if kind == "bool":
        return bool(value)
    if kind == "int":
        return _signed(value)
    if kind == "float":
        return struct.unpack("<d", value)[0] if wire == 1 else float(value)
    return _special(kind, bytes(value))


def _values(kind: str, wire: int, value: Any) -> list[Any]:
    """One wire field's values: several for a packed repeated scalar."""
    expected = (0, 2) if kind in ("int", "bool") else (1, 0) if kind == "float" else (2,)
    if wire not in expected:
        raise _Malformed(f"wire type {wire} for a field of type {kind}")
    if wire == 2 and kind in ("int", "bool"):
        items, pos = [], 0
        while pos < len(value):
            item, pos = _varint(value, pos)
            items.append(_scalar(kind, 0, item))
        return items
    if kind.startswith("map:"):
        entry = {number: item for number, _, item in _fields(value)}
        value_kind = kind[4:]
        return [(bytes(entry.get(1, b"")).decode(), _decode(value_kind, 2, entry.get(2, b"")))]
    return [_decode(kind, wire, value)]


def _decode(kind: str, wire: int, value: Any) -> Any:
    return _message(kind, value) if "." in kind else _scalar(kind, wire, value)


def _message(name: str, data: bytes) -> dict[str, Any]:
    fields = _table()[1][name]
    seen: dict[int, list[Any]] = {}
    for number, wire, value in _fields(data):
        if number in fields:  # a field newer than the table: skipped, as an old server would
            seen.setdefault(number, []).extend(_values(fields[number][1], wire, value))
    result: dict[str, Any] = {}
    for number, values in seen.items():
        json_name, kind, flags = fields[number]
        value = dict(values) if kind.startswith("map:") else values if "r" in flags else values[-1]
        if _kept(value, kind, flags):
            if "i" in flags:
                result.update(value)
            else:
                result[json_name] = value
    return result


def _kept(value: Any, kind: str, flags: str) -> bool:
    """Whether encoding/json would have written this field: a pointer sent is kept whatever its
    value; a zero scalar is left out under omitempty. Empty lists, maps and structs are left out
    too (encoding/json writes `null` or `{}` for some, which the JSON clients never send), and so
    is a zero IntOrString (the defaulting that follows treats it as unset)."""
    if value is None:
        return False
    if "p" in flags and "r" not in flags:
        return True
    if "r" in flags or kind.startswith("map:") or "." in kind:
        return bool(value)
    if kind == "IntOrString":
        return value != 0
    return "o" not in flags or (value != "" and value != 0)


def _special(kind: str, data: bytes) -> Any:
    """The types whose protobuf message is not their JSON (their MarshalJSON / ProtoTime)."""
    values = {number: value for number, _, value in _fields(data)}
    if kind in ("Time", "MicroTime"):
        seconds, nanos = _signed(values.get(1, 0)), values.get(2, 0)
        if not seconds and not nanos:
            return None
        moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC).replace(microsecond=nanos // 1000)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ" if kind == "MicroTime" else "%Y-%m-%dT%H:%M:%SZ")
    if kind == "Quantity":
        return bytes(values.get(1, b"")).decode() or None
    if kind == "IntOrString":
        return bytes(values.get(3, b"")).decode() if values.get(1) == 1 else _signed(values.get(2, 0))
    if kind in ("FieldsV1", "RawExtension"):
        raw = bytes(values.get(1, b""))
        return json.loads(raw) if raw else None
    if kind == "Duration":
        return _duration(_signed(values.get(1, 0)))
    raise _Malformed(f"unknown type {kind}")


def _duration(nanoseconds: int) -> str:
    """time.Duration.String() for whole seconds and above (what metav1.Duration fields carry)."""
    seconds = nanoseconds // 1_000_000_000
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m{seconds}s"
    return f"{minutes}m{seconds}s" if minutes else f"{seconds}s"
