"""Where the local kubelet puts volumes (pure): always under the state folder, whatever the pod says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tandem.localcluster.containers import StartError, mounts
from tandem.localcluster.nodes import DEFAULT_CLUSTER, node_manifests
from tandem.localcluster.scheduler import schedule
from tandem.localcluster.volumes import MountError, config_map_files, host_folder, impossible_claim, volume_folders

STATE, POD_DIR = Path("/state"), Path("/state/pods/ml_p_u1")


def _pod(*volumes: dict[str, Any], node: str = "n1") -> dict[str, Any]:
    return {"metadata": {"name": "p", "namespace": "ml", "uid": "u1"},
            "spec": {"nodeName": node, "containers": [{"name": "main"}], "volumes": list(volumes)},
            "status": {"phase": "Pending"}}


def _claim(name: str, claim: str) -> dict[str, Any]:
    return {"name": name, "persistentVolumeClaim": {"claimName": claim}}


@pytest.mark.parametrize("claim", ["../other-namespace/ckpt", "a/b", "..", ".", "Ckpt", "/etc"])
def test_a_claim_no_pvc_can_be_called_is_not_found(claim: str) -> None:
    pod = _pod(_claim("ckpt", claim), {"name": "scratch", "emptyDir": {}})
    assert impossible_claim(pod) == claim
    with pytest.raises(MountError) as exc:
        volume_folders(pod, STATE, POD_DIR)
    assert str(exc.value) == (
        f"Unable to attach or mount volumes: unmounted volumes=[ckpt], unattached volumes=[ckpt], failed to process "
        f"volumes=[ckpt]: error processing PVC ml/{claim}: failed to fetch PVC from API server: "
        f'persistentvolumeclaims "{claim}" not found')


def test_the_scheduler_does_not_bind_a_pod_whose_claim_cannot_exist() -> None:
    nodes = node_manifests(DEFAULT_CLUSTER)
    chosen, message = schedule(_pod(_claim("ckpt", "../x"), node=""), nodes, {})
    assert chosen is None and message == f'0/{len(nodes)} nodes are available: persistentvolumeclaim "../x" not found.'
    assert schedule(_pod(_claim("ckpt", "ckpt"), node=""), nodes, {})[0] is not None


def test_every_volume_lies_under_the_state_folder() -> None:
    folders = volume_folders(_pod(_claim("ckpt", "shared.v1"), {"name": "host", "hostPath": {"path": "/data//run/"}},
                                  {"name": "scratch", "emptyDir": {}}), STATE, POD_DIR)
    assert folders == {"ckpt": STATE / "volumes/ml/shared.v1", "host": STATE / "nodes/n1/hostpath/data/run",
                       "scratch": POD_DIR / "volumes/scratch"}
    assert host_folder(STATE, "n2", "/") == STATE / "nodes/n2/hostpath"


@pytest.mark.parametrize("volume", [
    {"name": "host", "hostPath": {"path": "/data/../../etc"}},
    {"name": "../../x", "emptyDir": {}},
])
def test_paths_that_would_leave_their_folder_do_not_start(volume: dict[str, Any]) -> None:
    with pytest.raises(StartError):
        volume_folders(_pod(volume), STATE, POD_DIR)


@pytest.mark.parametrize("sub", ["/etc", "../../x", "a/../../b"])
def test_a_sub_path_stays_inside_its_volume(sub: str) -> None:
    container = {"name": "main", "volumeMounts": [{"name": "scratch", "mountPath": "/s", "subPath": sub}]}
    with pytest.raises(StartError, match="subPath"):
        mounts(container, {"scratch": POD_DIR / "volumes/scratch"}, POD_DIR / "termination-log")


def test_config_map_files_are_its_valid_keys() -> None:
    assert config_map_files({"data": {"a.yaml": "x", "..": "y", "../up": "z", "b": 1}}) == {"a.yaml": "x", "b": "1"}
    assert config_map_files(None) == {}
