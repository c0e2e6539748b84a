"""Request bodies as the API server's content negotiation decodes them: JSON, YAML, and Kubernetes
protobuf for built-in objects (what client-go's typed clientset sends since 1.32, so `kubectl
create configmap|namespace|service|quota` does; `kubectl run` sends JSON). Any other encoding, CBOR
included, is a 415 UnsupportedMediaType naming the accepted types, never a misleading "not valid
JSON". A PATCH's type is checked first (patches.check_patch_type)."""

from __future__ import annotations

import json
from typing import Any

from tandem.localcluster import errors, protobuf
from tandem.localcluster.patches import check_patch_type
from tandem.localcluster.resources import ResourceType

JSON = "application/json"
YAML = "application/yaml"
PROTOBUF = "application/vnd.kubernetes.protobuf"
# What the handlers decode for a create, update or delete (a custom resource takes no protobuf:
# apiextensions-apiserver serves JSON and YAML only).
BUILTIN_MEDIA = (JSON, YAML, PROTOBUF)
CUSTOM_MEDIA = (JSON, YAML)


def media_type(content_type: str) -> str:
    return content_type.split(";")[0].strip().lower()


def decode(rt: ResourceType, method: str, content_type: str, raw: bytes) -> Any:
    """The body of a request to a resource, as plain JSON data (None when there is none)."""
    kind = media_type(content_type)
    custom = rt.schema is not None
    if method == "PATCH":
        check_patch_type(kind, custom)  # the patch handler checks the type before it reads the body
        return _json(raw, method)
    if not raw:
        return _json(raw, method)
    if kind == PROTOBUF and not custom:
        return protobuf.decode_object(raw)
    if kind in ("", JSON):  # none at all: the first the server supports, JSON
        return _json(raw, method)
    if kind == YAML:
        return _yaml(raw, method)
    accepted = CUSTOM_MEDIA if custom else BUILTIN_MEDIA
    raise errors.KubernetesError(
        status=415, reason="UnsupportedMediaType", details={},
        message=f'the body of the request was in an unknown format - accepted media types include: '
                f'{", ".join(accepted)}')


def _json(raw: bytes, method: str) -> Any:
    if method not in ("POST", "PUT", "PATCH") and not raw:
        return None
    try:
        data = json.loads(raw) if raw else None
    except ValueError as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from exc
    return _object(data, method)


def _yaml(raw: bytes, method: str) -> Any:
    import yaml

    try:
        data = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"the request body is not valid YAML: {exc}") from exc
    return _object(data, method)


def _object(data: Any, method: str) -> Any:
    if method in ("POST", "PUT") and not isinstance(data, dict):
        raise errors.bad_request("the request body must be a JSON object")
    return data

