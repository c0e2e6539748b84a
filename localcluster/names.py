"""Names, label keys and values, and the few file-like fields of built-in objects, validated as
the API server of Kubernetes 1.32 validates them (k8s.io/apimachinery/pkg/util/validation and
the core/v1 validation of ObjectMeta, pods and ConfigMaps), with its error texts.

Each `is_*` function returns the API server's messages for one value (empty: valid); the
`*_causes` functions turn them into `Status` causes naming the field, as `field.Invalid` does.
A name refused here can never exist in a real cluster, which the kubelet relies on: a claim,
volume or key that passed these checks cannot name a folder outside the ones it maps."""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Callable, Iterable
from typing import Any

Cause = dict[str, str]
NameCheck = Callable[[str], list[str]]
NameFn = Callable[[str, bool], list[str]]  # (name, is a generateName prefix) -> messages

DNS1123_LABEL_FMT = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS1123_SUBDOMAIN_FMT = DNS1123_LABEL_FMT + r"(\." + DNS1123_LABEL_FMT + r")*"
DNS1035_LABEL_FMT = r"[a-z]([-a-z0-9]*[a-z0-9])?"
QUALIFIED_NAME_FMT = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE_FMT = f"({QUALIFIED_NAME_FMT})?"
CONFIG_MAP_KEY_FMT = r"[-._a-zA-Z0-9]+"

_DNS1123_LABEL_MSG = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
                      "start and end with an alphanumeric character")
_DNS1123_SUBDOMAIN_MSG = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or "
                          "'.', and must start and end with an alphanumeric character")
_DNS1035_LABEL_MSG = ("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an "
                      "alphabetic character, and end with an alphanumeric character")
_QUALIFIED_NAME_MSG = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
                       "alphanumeric character")
_LABEL_VALUE_MSG = ("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                    "and must start and end with an alphanumeric character")
_CONFIG_MAP_KEY_MSG = "a valid config key must consist of alphanumeric characters, '-', '_' or '.'"
# SimpleNameGenerator: at most 58 characters of generateName, then 5 of these.
_GENERATED_LENGTH, _GENERATED_ALPHABET = 5, "bcdfghjklmnpqrstvwxz2456789"


def regex_error(message: str, fmt: str, *examples: str) -> str:
    """validation.RegexError, spacing included ("(e.g. 'my-name',  or 'abc-123', ...")."""
    if not examples:
        return f"{message} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{fmt}')"


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _matches(fmt: str, value: str) -> bool:
    return re.fullmatch(fmt, value) is not None


def _dns_name(value: str, limit: int, fmt: str, message: str, *examples: str) -> list[str]:
    """apimachinery's IsDNS1123Label / IsDNS1123Subdomain / IsDNS1035Label: the length, then the pattern."""
    errors = [max_len_error(limit)] if len(value) > limit else []
    if not _matches(fmt, value):
        errors.append(regex_error(message, fmt, *examples))
    return errors


def is_dns1123_label(value: str) -> list[str]:
    return _dns_name(value, 63, DNS1123_LABEL_FMT, _DNS1123_LABEL_MSG, "my-name", "123-abc")


def is_dns1123_subdomain(value: str) -> list[str]:
    return _dns_name(value, 253, DNS1123_SUBDOMAIN_FMT, _DNS1123_SUBDOMAIN_MSG, "example.com")


def is_dns1035_label(value: str) -> list[str]:
    return _dns_name(value, 63, DNS1035_LABEL_FMT, _DNS1035_LABEL_MSG, "my-name", "abc-123")


def is_qualified_name(value: str) -> list[str]:
    """A label key (or annotation key, finalizer): an optional DNS-subdomain prefix and '/', then a name."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                  "123-abc")
                + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    errors: list[str] = []
    if len(parts) == 2:
        prefix = parts[0]
        errors += ["prefix part must be non-empty"] if not prefix else \
            [f"prefix part {m}" for m in is_dns1123_subdomain(prefix)]
    name = parts[-1]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append("name part " + max_len_error(63))
    if not _matches(QUALIFIED_NAME_FMT, name):
        errors.append("name part " + regex_error(_QUALIFIED_NAME_MSG, QUALIFIED_NAME_FMT, "MyName", "my.name",
                                                 "123-abc"))
    return errors


def is_label_value(value: str) -> list[str]:
    errors = [max_len_error(63)] if len(value) > 63 else []
    if not _matches(LABEL_VALUE_FMT, value):
        errors.append(regex_error(_LABEL_VALUE_MSG, LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def is_config_map_key(value: str) -> list[str]:
    """A ConfigMap key, which a configMap volume turns into a file name: never '.', '..' or '../x'."""
    errors = [max_len_error(253)] if len(value) > 253 else []
    if not _matches(CONFIG_MAP_KEY_FMT, value):
        errors.append(regex_error(_CONFIG_MAP_KEY_MSG, CONFIG_MAP_KEY_FMT, "key.name", "KEY_NAME", "key-name"))
    if value == ".":
        errors.append("must not be '.'")
    elif value == "..":
        errors.append("must not be '..'")
    elif value.startswith(".."):
        errors.append("must not start with '..'")
    return errors


def no_backsteps(value: str) -> list[str]:
    """validatePathNoBacksteps: no '..' element (hostPath paths, subPaths)."""
    return ["must not contain '..'"] if ".." in value.split("/") else []


def is_local_descending_path(value: str) -> list[str]:
    """validateLocalDescendingPath (subPath): relative, and no '..' element."""
    return (["must be a relative path"] if value.startswith("/") else []) + no_backsteps(value)


def invalid(path: str, value: Any, message: str) -> Cause:
    """field.Invalid as a Status cause: the value quoted as Go's %q quotes a string."""
    shown = json.dumps(value, ensure_ascii=False) if isinstance(value, str) else json.dumps(value)
    return {"field": path, "reason": "FieldValueInvalid", "message": f"Invalid value: {shown}: {message}"}


def required(path: str, detail: str = "") -> Cause:
    return {"field": path, "reason": "FieldValueRequired",
            "message": f"Required value: {detail}" if detail else "Required value"}


def forbidden(path: str, detail: str) -> Cause:
    return {"field": path, "reason": "FieldValueForbidden", "message": f"Forbidden: {detail}"}


def value_causes(path: str, value: str, check: NameCheck) -> list[Cause]:
    return [invalid(path, value, message) for message in check(value)]


# --- ObjectMeta --------------------------------------------------------------------------------------
def _mask_trailing_dash(name: str) -> str:
    """How a generateName prefix is checked: its trailing '-' stands for the generated suffix
    (apimachinery's maskTrailingDash, which drops the last two characters and appends an 'a')."""
    return name[:-2] + "a" if len(name) > 1 and name.endswith("-") else name


def _dns(check: NameCheck) -> NameFn:
    return lambda name, prefix: check(_mask_trailing_dash(name) if prefix else name)


def path_segment(name: str, prefix: bool) -> list[str]:
    """ValidatePathSegmentName, the only name rule a core/v1 Event gets (and every object's last one)."""
    if not prefix and name in (".", ".."):
        return [f"may not be '{name}'"]
    return [f"may not contain '{bad}'" for bad in ("/", "%") if bad in name]


def _crd_name(obj: dict[str, Any]) -> NameFn:
    spec = obj.get("spec") or {}
    wanted = f"{(spec.get('names') or {}).get('plural', '')}.{spec.get('group', '')}"

    def check(name: str, prefix: bool) -> list[str]:
        errors = _dns(is_dns1123_subdomain)(name, prefix)
        return errors + ([] if name == wanted else ['must be spec.names.plural+"."+spec.group'])
    return check


def name_check(kind: str, obj: dict[str, Any]) -> NameFn:
    """The name rule of each kind (ValidateObjectMeta's nameFn); custom objects use a subdomain.
    A core/v1 Event skips ObjectMeta validation for backwards compatibility: only the API server's
    common path-segment rule applies, so `job.17a2b3c` or even `Job_1` is a valid Event name."""
    if kind == "Service":
        return _dns(is_dns1035_label)
    if kind == "Namespace":
        return _dns(is_dns1123_label)
    if kind == "CustomResourceDefinition":
        return _crd_name(obj)
    if kind == "Event" and obj.get("apiVersion", "v1") == "v1":
        return path_segment
    return _dns(is_dns1123_subdomain)


def generate_name(base: str) -> str:
    """SimpleNameGenerator.GenerateName: at most 58 characters of the prefix and 5 random ones."""
    suffix = "".join(secrets.choice(_GENERATED_ALPHABET) for _ in range(_GENERATED_LENGTH))
    return base[:63 - _GENERATED_LENGTH] + suffix


def _map_causes(path: str, items: Iterable[tuple[str, Any]], check_values: bool) -> list[Cause]:
    causes: list[Cause] = []
    for key, value in sorted(items):
        causes += value_causes(path, key, is_qualified_name if check_values else _annotation_key)
        if check_values:
            causes += value_causes(path, str(value), is_label_value)
    return causes


def _annotation_key(key: str) -> list[str]:
    return is_qualified_name(key.lower())  # annotation keys are qualified names in any case


def meta_causes(kind: str, obj: dict[str, Any], creating: bool) -> list[Cause]:
    """ValidateObjectMeta's name, generateName, labels and annotation keys. Names are checked on
    create only: an update cannot change them."""
    meta = obj.get("metadata") or {}
    causes: list[Cause] = []
    if creating:
        check = name_check(kind, obj)
        if meta.get("generateName"):
            generate = str(meta["generateName"])
            causes += [invalid("metadata.generateName", generate, m) for m in check(generate, True)]
        name = str(meta.get("name") or "")
        causes += [invalid("metadata.name", name, m) for m in check(name, False)] if name else \
            [required("metadata.name", "name or generateName is required")]
    for field, check_values in (("labels", True), ("annotations", False)):
        if isinstance(meta.get(field), dict):  # anything else is the schema's (or decoding's) business
            causes += _map_causes(f"metadata.{field}", meta[field].items(), check_values)
    return causes
