import pytest

from tandem.localcluster.errors import KubernetesError
from tandem.localcluster.patches import JSON_PATCH, MERGE, STRATEGIC, apply_patch, json_patch, merge_patch

OBJ = {"metadata": {"name": "p", "labels": {"a": "1", "b": "2"}, "resourceVersion": "7"},
       "spec": {"containers": [{"name": "c", "image": "old", "env": [{"name": "A", "value": "1"}]},
                               {"name": "side", "image": "s"}]}}


def test_merge_patch_merges_objects_deletes_nulls_and_replaces_lists() -> None:
    result = merge_patch(OBJ, {"metadata": {"labels": {"a": None, "c": "3"}}, "spec": {"containers": []}})
    assert result["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert result["spec"]["containers"] == []
    assert OBJ["metadata"]["labels"] == {"a": "1", "b": "2"}  # the input is never mutated


def test_strategic_merge_merges_named_list_items() -> None:
    patch = {"spec": {"$setElementOrder/containers": [{"name": "c"}, {"name": "side"}],
                      "containers": [{"name": "c", "image": "new", "env": [{"name": "B", "value": "2"}]}]}}
    result = apply_patch(OBJ, patch, STRATEGIC)
    first, second = result["spec"]["containers"]
    assert first["image"] == "new" and second == {"name": "side", "image": "s"}
    assert first["env"] == [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}]


def test_strategic_merge_delete_directive_removes_an_item() -> None:
    result = apply_patch(OBJ, {"spec": {"containers": [{"name": "side", "$patch": "delete"}]}}, STRATEGIC)
    assert [c["name"] for c in result["spec"]["containers"]] == ["c"]


def test_json_patch_add_replace_remove_and_test() -> None:
    ops = [{"op": "test", "path": "/metadata/resourceVersion", "value": "7"},
           {"op": "add", "path": "/metadata/finalizers", "value": ["kopf.zalando.org/KopfFinalizerMarker"]},
           {"op": "replace", "path": "/spec/containers/0/image", "value": "x"},
           {"op": "remove", "path": "/metadata/labels/b"}]
    result = json_patch(OBJ, ops)
    assert result["metadata"]["finalizers"] == ["kopf.zalando.org/KopfFinalizerMarker"]
    assert result["spec"]["containers"][0]["image"] == "x"
    assert result["metadata"]["labels"] == {"a": "1"}


def test_json_patch_failed_test_is_refused() -> None:
    with pytest.raises(KubernetesError) as exc:
        apply_patch(OBJ, [{"op": "test", "path": "/metadata/resourceVersion", "value": "6"}], JSON_PATCH)
    assert exc.value.status == 422


def test_unknown_patch_type_is_415() -> None:
    with pytest.raises(KubernetesError) as exc:
        apply_patch(OBJ, {}, "application/apply-patch+yaml")
    assert exc.value.status == 415


def test_merge_patch_content_type_with_charset() -> None:
    assert apply_patch(OBJ, {"spec": None}, f"{MERGE}; charset=utf-8").get("spec") is None
