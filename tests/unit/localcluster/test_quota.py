"""ResourceQuota for the pod count, as the quota admission plugin and controller enforce and report it."""

from __future__ import annotations

from typing import Any

import pytest

from tandem.localcluster.errors import KubernetesError
from tandem.localcluster.quota import admit_pod, quota_status
from tandem.localcluster.resources import builtin_types
from tandem.localcluster.store import Store

TYPES = {rt.plural: rt for rt in builtin_types()}


def _pod(name: str, phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": "c"}]}, "status": {"phase": phase}}


def _store(hard: dict[str, str], *phases: str) -> Store:
    store = Store()
    store.create(TYPES["resourcequotas"], "ml", {"metadata": {"name": "pods-quota"}, "spec": {"hard": hard}})
    for i, phase in enumerate(phases):
        store.create(TYPES["pods"], "ml", _pod(f"p{i}", phase))
    store.create(TYPES["pods"], "other", _pod("elsewhere"))
    return store


def test_a_pod_beyond_the_quota_is_forbidden_with_the_plugins_message() -> None:
    store = _store({"pods": "2", "cpu": "4"}, "Running", "Pending")
    with pytest.raises(KubernetesError) as exc:
        admit_pod(store, "ml", _pod("x", "Pending"))
    assert exc.value.status == 403 and exc.value.reason == "Forbidden"
    assert exc.value.message == ('pods "x" is forbidden: exceeded quota: pods-quota, requested: pods=1, used: pods=2, '
                                 "limited: pods=2")
    assert exc.value.details == {"name": "x", "group": "", "kind": "pods"}


def test_finished_pods_do_not_count_and_count_pods_is_the_same_limit() -> None:
    admit_pod(_store({"pods": "2"}, "Running", "Succeeded", "Failed"), "ml", _pod("x", "Pending"))
    with pytest.raises(KubernetesError) as exc:
        admit_pod(_store({"count/pods": "1", "pods": "1"}, "Running"), "ml", _pod("x", "Pending"))
    assert exc.value.message.endswith("requested: count/pods=1,pods=1, used: count/pods=1,pods=1, "
                                      "limited: count/pods=1,pods=1")
    admit_pod(_store({"cpu": "1"}, "Running"), "ml", _pod("x", "Pending"))  # only pod counts are enforced


def test_the_quota_status_reports_the_counts() -> None:
    quota = {"spec": {"hard": {"pods": "3", "cpu": "4"}}}
    assert quota_status(quota, 2) == {"hard": {"pods": "3", "cpu": "4"}, "used": {"pods": "2"}}
