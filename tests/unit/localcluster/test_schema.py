"""The structural-schema check the local API applies to custom objects, on Tandem's own CRDs."""

from typing import Any

import pytest
from manifests import cases, example

from tandem.localcluster.patches import merge_patch
from tandem.localcluster.resources import crd_types
from tandem.localcluster.schema import validate
from tandem.operator.crdgen import crd_documents

SCHEMAS = {t.kind: t.schema for crd in crd_documents() for t in crd_types(crd)}




def test_examples_are_valid_and_get_defaults() -> None:
    for kind in ("TrainingJob", "AcceleratorPool"):
        outcome = validate(example(kind), SCHEMAS[kind])
        assert outcome.causes == [] and outcome.unknown_fields == []
    job = validate({"apiVersion": "tandem.dev/v1alpha1", "kind": "TrainingJob", "metadata": {"name": "j"},
                    "spec": {"nodes": 1, "pools": ["p"], "checkpoint": {"volume": {"emptyDir": {}}}}},
                   SCHEMAS["TrainingJob"]).value
    assert job["spec"]["faultPolicy"]["maxRestarts"] == 10
    assert job["spec"]["checkpoint"]["intervalSteps"] == 200


@pytest.mark.parametrize("case", cases("bad_trainingjobs.yaml"))
def test_bad_trainingjobs_are_refused_naming_the_field(case: dict[str, Any]) -> None:
    _assert_refused("TrainingJob", case)


@pytest.mark.parametrize("case", cases("bad_acceleratorpools.yaml"))
def test_bad_pools_are_refused_naming_the_field(case: dict[str, Any]) -> None:
    _assert_refused("AcceleratorPool", case)


def _assert_refused(kind: str, case: dict[str, Any]) -> None:
    manifest = merge_patch(example(kind), {"spec": case["spec"]})
    outcome = validate(manifest, SCHEMAS[kind])
    named = [c["field"] for c in outcome.causes] + outcome.unknown_fields
    assert case["field"] in named, (outcome.causes, outcome.unknown_fields)


def test_null_is_pruned_then_defaulted() -> None:
    manifest = merge_patch(example("TrainingJob"), {})
    manifest["spec"]["faultPolicy"]["maxRestarts"] = None
    outcome = validate(manifest, SCHEMAS["TrainingJob"])
    assert outcome.causes == [] and outcome.value["spec"]["faultPolicy"]["maxRestarts"] == 10


def test_free_form_training_config_keeps_unknown_fields() -> None:
    manifest = merge_patch(example("TrainingJob"), {"spec": {"training": {"anything": {"goes": [1, 2]}}}})
    outcome = validate(manifest, SCHEMAS["TrainingJob"])
    assert outcome.unknown_fields == [] and outcome.value["spec"]["training"]["anything"] == {"goes": [1, 2]}
