"""DeleteOptions preconditions (uid, resourceVersion), refused with the texts of the registry that checks them."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.localcluster.deletion import check_preconditions
from tandem.localcluster.errors import KubernetesError
from tandem.localcluster.resources import builtin_types
from tandem.localcluster.store import Store

TYPES = {rt.plural: rt for rt in builtin_types()}


def _stored(rt_name: str, name: str, **body: Any) -> tuple[Any, dict[str, Any]]:
    rt = TYPES[rt_name]
    return rt, Store().create(rt, "ml" if rt.namespaced else None, {"metadata": {"name": name}, **body})


def test_preconditions_use_before_deletes_text() -> None:
    rt, obj = _stored("configmaps", "c")
    check_preconditions(rt, obj, {"uid": obj["metadata"]["uid"], "resourceVersion": obj["metadata"]["resourceVersion"]})
    with pytest.raises(KubernetesError) as exc:
        check_preconditions(rt, obj, {"uid": "other"})
    assert exc.value.status == 409 and exc.value.reason == "Conflict"
    assert exc.value.message == (
        f'Operation cannot be fulfilled on ConfigMap "c": the UID in the precondition (other) does not match the UID '
        f'in record ({obj["metadata"]["uid"]}). The object might have been deleted and then recreated')
    with pytest.raises(KubernetesError) as exc:
        check_preconditions(rt, obj, {"resourceVersion": "0"})
    assert exc.value.message == (
        'Operation cannot be fulfilled on ConfigMap "c": the ResourceVersion in the precondition (0) does not match '
        "the ResourceVersion in record (1). The object might have been modified")


def test_namespaces_and_crds_use_their_registries_text() -> None:
    rt, obj = _stored("namespaces", "ml")
    with pytest.raises(KubernetesError) as exc:
        check_preconditions(rt, obj, {"uid": "other"})
    assert exc.value.message == (f'Operation cannot be fulfilled on namespaces "ml": Precondition failed: UID in '
                                 f'precondition: other, UID in object meta: {obj["metadata"]["uid"]}')
    rt, obj = _stored("customresourcedefinitions", "widgets.example.com")
    with pytest.raises(KubernetesError) as exc:
        check_preconditions(rt, obj, {"resourceVersion": "9"})
    assert exc.value.message == (
        'Operation cannot be fulfilled on customresourcedefinitions.apiextensions.k8s.io "widgets.example.com": '
        "Precondition failed: ResourceVersion in precondition: 9, ResourceVersion in object meta: 1")
