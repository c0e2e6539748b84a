import pytest

from tandem.localcluster.errors import KubernetesError
from tandem.localcluster.selectors import match_fields, match_labels, parse_field_selector, parse_label_selector

POD = {"metadata": {"name": "job-a1-0", "namespace": "ml", "labels": {"tandem.dev/job": "job", "tier": "gpu"}},
       "spec": {"nodeName": "n1"}, "status": {"phase": "Running"}}


@pytest.mark.parametrize(("selector", "expected"), [
    ("", True),
    ("tandem.dev/job=job", True),
    ("tandem.dev/job==job", True),
    ("tandem.dev/job=other", False),
    ("tandem.dev/job!=other", True),
    ("tier in (gpu, npu)", True),
    ("tier notin (gpu)", False),
    ("tier", True),
    ("!tier", False),
    ("!absent", True),
    ("absent!=x", True),
    ("tandem.dev/job=job,tier in (npu,cpu)", False),
    ("tandem.dev/job=job, tier in (npu,gpu)", True),
])
def test_label_selectors_match_like_kubernetes(selector: str, expected: bool) -> None:
    assert match_labels(parse_label_selector(selector), POD) is expected


@pytest.mark.parametrize(("selector", "expected"), [
    ("metadata.name=job-a1-0", True),
    ("metadata.namespace!=ml", False),
    ("spec.nodeName=n1,status.phase=Running", True),
    ("status.phase=Pending", False),
])
def test_field_selectors(selector: str, expected: bool) -> None:
    assert match_fields(parse_field_selector(selector), POD) is expected


def test_unsupported_field_selector_is_a_bad_request() -> None:
    with pytest.raises(KubernetesError) as exc:
        parse_field_selector("spec.containers=x")
    assert exc.value.status == 400 and "spec.containers" in str(exc.value.message)


def test_garbage_label_selector_is_a_bad_request() -> None:
    with pytest.raises(KubernetesError) as exc:
        parse_label_selector("a=b=c")
    assert exc.value.status == 400
