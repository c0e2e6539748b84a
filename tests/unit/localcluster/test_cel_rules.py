"""CEL rules as the API server evaluates them: transition rules (oldSelf) on updates only, where the value
exists before and after; the root sees metadata.name; failures name the field; unchanged values ratchet."""

from __future__ import annotations

import copy
from typing import Any

from tandem.localcluster.schema import validate


def _immutable(message: str, **extra: Any) -> list[dict[str, Any]]:
    return [{"rule": "self == oldSelf", "message": message, **extra}]


SCHEMA: dict[str, Any] = {
    "type": "object",
    "x-kubernetes-validations": [{"rule": "self.metadata.name.startsWith('w')", "message": "names start with w"}],
    "properties": {
        "spec": {
            "type": "object",
            "x-kubernetes-validations": [{"rule": "!has(oldSelf.locked) || !oldSelf.locked || self == oldSelf",
                                          "fieldPath": ".locked", "reason": "FieldValueForbidden",
                                          "message": "a locked spec stays as it is"}],
            "properties": {
                "replicas": {"type": "integer", "x-kubernetes-validations": _immutable("replicas is immutable")},
                "size": {"type": "integer", "x-kubernetes-validations": [
                    {"rule": "self >= oldSelf", "messageExpression": "'size may not shrink below ' + string(oldSelf)"},
                    {"rule": "self <= 10", "message": "size is at most 10"}]},
                "mode": {"type": "string", "x-kubernetes-validations": _immutable("mode is immutable once set")},
                "locked": {"type": "boolean"},
                "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"],
                          "items": {"type": "object", "properties": {
                              "name": {"type": "string"},
                              "port": {"type": "integer",
                                       "x-kubernetes-validations": _immutable("ports never move")}}}},
                "steps": {"type": "array", "items": {"type": "object", "properties": {
                    "n": {"type": "integer", "x-kubernetes-validations": _immutable("steps never change")}}}},
            },
        },
        "status": {"type": "object", "properties": {"phase": {"type": "string"}}},
    },
}


def _widget(name: str = "w1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget",
            "metadata": {"name": name, "namespace": "default", "labels": {"a": "b"}, "uid": "u",
                         "resourceVersion": "7"},
            "spec": {"replicas": 1, "size": 2, **spec}}


def _causes(new: dict[str, Any], old: dict[str, Any] | None = None) -> list[tuple[str, str]]:
    return [(c["field"], c["message"]) for c in validate(new, SCHEMA, old).causes]


def test_transition_rules_do_not_run_on_create() -> None:
    assert _causes(_widget(mode="fast", ports=[{"name": "http", "port": 80}])) == []


def test_a_failing_transition_rule_names_the_field_and_says_its_message() -> None:
    old = _widget()
    assert _causes(_widget(replicas=3), old) == [("spec.replicas", 'Invalid value: "integer": replicas is immutable')]
    assert _causes(_widget(size=1), old) == [("spec.size", 'Invalid value: "integer": size may not shrink below 2')]
    assert _causes(_widget(size=5), old) == []


def test_an_optional_field_is_compared_only_where_it_exists_before_and_after() -> None:
    without, with_mode = _widget(), _widget(mode="fast")
    assert _causes(with_mode, without) == []  # set for the first time: nothing to compare with
    assert _causes(without, with_mode) == []  # removed: nothing to compare
    assert _causes(_widget(mode="slow"), with_mode) == [
        ("spec.mode", 'Invalid value: "string": mode is immutable once set')]


def test_map_lists_correlate_by_key_and_other_lists_not_at_all() -> None:
    old = _widget(ports=[{"name": "http", "port": 80}], steps=[{"n": 1}])
    renamed = _widget(ports=[{"name": "grpc", "port": 81}, {"name": "http", "port": 80}], steps=[{"n": 2}])
    assert _causes(renamed, old) == []  # http kept its port; grpc is new; steps items are not correlated
    moved = _widget(ports=[{"name": "http", "port": 8080}], steps=[{"n": 1}])
    assert _causes(moved, old) == [("spec.ports[0].port", 'Invalid value: "integer": ports never move')]


def test_field_path_and_reason() -> None:
    old = _widget(locked=True)
    assert _causes(_widget(locked=True, size=3), old) == [("spec.locked", "Forbidden: a locked spec stays as it is")]


def test_root_rules_see_metadata_name_and_nothing_else_of_metadata() -> None:
    assert _causes(_widget(name="x1")) == [("<nil>", 'Invalid value: "object": names start with w')]
    labels = {**SCHEMA, "x-kubernetes-validations": [{"rule": "has(self.metadata.labels)", "message": "labels?"}]}
    causes = validate(_widget(), labels).causes
    assert [c["field"] for c in causes] == ["<nil>"]  # only name and generateName reach CEL at the root


def test_a_status_write_keeps_spec_transition_rules_green_and_ratchets_unchanged_values() -> None:
    old = _widget(size=20)  # stored before the "at most 10" rule existed
    status_write = {**copy.deepcopy(old), "status": {"phase": "Running"}}
    outcome = validate(status_write, SCHEMA, old)
    assert outcome.causes == []  # spec == oldSpec: `self == oldSelf` holds, the old size is ratcheted
    assert outcome.warnings == ['spec.size: Invalid value: "integer": size is at most 10']
    assert _causes(_widget(size=21), old) == [("spec.size", 'Invalid value: "integer": size is at most 10')]


def test_a_rule_that_errors_refuses_the_object() -> None:
    broken = {"type": "object", "properties": {"spec": {"type": "object", "x-kubernetes-validations": [
        {"rule": "self.missing == oldSelf.missing"}]}}}
    causes = validate({"spec": {"a": 1}}, broken, {"spec": {"a": 1}}).causes
    assert causes[0]["field"] == "spec" and "evaluating rule: self.missing == oldSelf.missing" in causes[0]["message"]



def test_a_ratcheted_rules_warning_travels_quoted_in_the_warning_header() -> None:
    from tandem.localcluster.api import _quoted

    warning = 'spec.size: Invalid value: "integer": at most 10 \\o/'
    assert _quoted(warning) == r'spec.size: Invalid value: \"integer\": at most 10 \\o/'


def test_a_rule_runs_once_per_distinct_value_and_says_the_same_every_time(monkeypatch: Any) -> None:
    """CEL is pure: the values a write leaves as they were are not evaluated again (cel-python costs about a
    millisecond a rule, and every status write of a job re-validates its whole spec), and the verdicts do not
    change: a failing value still fails, with its message, on every write."""
    from tandem.localcluster import cel_rules

    cel_rules._passes.cache_clear()
    runs: list[str] = []
    real = cel_rules._run
    monkeypatch.setattr(cel_rules, "_run", lambda expression, activation: runs.append(expression) or real(
        expression, activation))
    old = _widget()
    first = [_causes(_widget(replicas=3), old) for _ in range(3)]
    evaluated = len(runs)
    again = [_causes(_widget(replicas=3), old) for _ in range(3)]
    assert first == again == [[("spec.replicas", 'Invalid value: "integer": replicas is immutable')]] * 3
    assert evaluated > 0 and len(runs) == evaluated  # the second three writes evaluated nothing
