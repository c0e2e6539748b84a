"""`kubernetes_validate.validate(obj, version, strict=True)` with the schema compiled once per kind and
apiVersion: the library reads and parses its `_definitions.json` (megabytes of JSON) and builds a new
validator on every call, which made validating a created pod cost as much as scheduling it. Same
schemas, same validator class (Draft 2020-12 over the same registry), same exceptions: the first
error the validator yields, as `kubernetes_validate.ValidationError`, or `SchemaNotFoundError`."""

from __future__ import annotations

import functools
import re
from typing import Any

import jsonschema
import kubernetes_validate
from kubernetes_validate import utils
from referencing import Registry, Resource


@functools.cache
def _schema_dir(desired_version: str) -> tuple[str, str]:
    """(the library's schema folder for `desired_version`, the version it reports), chosen as it does."""
    if desired_version.startswith("v"):
        desired_version = desired_version[1:]
    if utils.major_minor(desired_version) > utils.latest_version():
        raise kubernetes_validate.VersionNotSupportedError(version=utils.major_minor(desired_version))
    version = [v for v in utils.all_versions()
               if utils.major_minor(v) <= utils.major_minor(desired_version)][-1]
    return f"v{version}-local-strict", utils.major_minor(version)


@functools.cache
def _definitions(schema_dir: str, desired_version: str) -> Resource[Any]:
    return Resource.from_contents(
        utils.schema_contents(f"kubernetes-json-schema/{schema_dir}/_definitions.json", desired_version))


@functools.cache
def _validator(kind: str, api_version: str, desired_version: str) -> jsonschema.protocols.Validator | None:
    """The compiled validator of a kind, None for one the library has no schema of."""
    schema_dir, _ = _schema_dir(desired_version)
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = utils.schema_contents(
            f"kubernetes-json-schema/{schema_dir}/{kind.lower()}-{group_version}.json", desired_version)
    except FileNotFoundError:
        return None
    registry: Registry[Any] = Resource.from_contents(schema) @ Registry()
    registry = _definitions(schema_dir, desired_version) @ registry
    return jsonschema.validators.Draft202012Validator(schema, registry=registry)


def validate_strict(data: dict[str, Any], desired_version: str) -> str:
    """As `kubernetes_validate.validate(data, desired_version, strict=True)`."""
    api_version, kind = data["apiVersion"], data["kind"]
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return str(kubernetes_validate.validate(data, desired_version, strict=True))  # fails as the library fails
    _, version = _schema_dir(desired_version)
    validator = _validator(kind, api_version, desired_version)
    if validator is None:
        raise kubernetes_validate.SchemaNotFoundError(
            version=utils.major_minor(desired_version.removeprefix("v")), kind=kind, api_version=api_version)
    try:
        validator.validate(data)
    except jsonschema.ValidationError as exc:
        raise kubernetes_validate.ValidationError(exc, version=version) from None
    return version
