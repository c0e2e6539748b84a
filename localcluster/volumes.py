"""Where the simulated kubelet puts a pod's volumes (pure, but for `create_folders`): every one is
a folder under the state folder, whatever the pod says, so no pod writes outside the folders the
local cluster maps:
- a persistentVolumeClaim is `<state>/volumes/<namespace>/<claim>`, shared by the pods that mount
  it; a claimName that no claim can have (not a DNS subdomain: `../x`, `a/b`) never exists, so the
  pod is never bound (`scheduler.py`) or, bound by hand, waits with FailedMount Events;
- a hostPath is `<state>/nodes/<node>/hostpath/<path>`: the node's own filesystem, shared by the
  pods on that node only;
- an emptyDir (or any other source) is a folder of the pod's own; a configMap volume holds a file
  per key of the ConfigMap.
The API server refuses the names and paths that could leave these folders (`specs.py`); the
checks here keep a pod written straight into the store from doing so either."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tandem.localcluster.containers import StartError
from tandem.localcluster.names import is_config_map_key, is_dns1123_label, is_dns1123_subdomain
from tandem.localcluster.store import Obj


class MountError(Exception):
    """A volume the kubelet cannot set up: the pod waits in ContainerCreating, with FailedMount Events."""


def impossible_claim(pod: Obj) -> str | None:
    """The first claimName no PersistentVolumeClaim can have (claim names are DNS subdomains):
    such a claim never exists, so the scheduler's VolumeBinding refuses the pod and a kubelet
    cannot mount it. Claims with valid names count as bound (persistent volumes are folders)."""
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = str((volume.get("persistentVolumeClaim") or {}).get("claimName") or "")
        if "persistentVolumeClaim" in volume and is_dns1123_subdomain(claim):
            return claim
    return None


def mount_failure(pod: Obj, claim: str) -> str:
    """The kubelet's FailedMount message for a claim the API server does not have."""
    namespace = pod["metadata"]["namespace"]
    volumes = [v["name"] for v in pod["spec"].get("volumes") or []
               if (v.get("persistentVolumeClaim") or {}).get("claimName") == claim]
    listed = f"[{' '.join(volumes)}]"
    return (f"Unable to attach or mount volumes: unmounted volumes={listed}, unattached volumes={listed}, "
            f"failed to process volumes={listed}: error processing PVC {namespace}/{claim}: failed to fetch PVC "
            f'from API server: persistentvolumeclaims "{claim}" not found')


def volume_folders(pod: Obj, state_dir: Path, pod_dir: Path) -> dict[str, Path]:
    """Each volume's folder here; every one lies under the state folder, whatever the pod says."""
    namespace = pod["metadata"]["namespace"]
    claim = impossible_claim(pod)
    if claim is not None:
        raise MountError(mount_failure(pod, claim))
    folders = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = str(volume.get("name") or "")
        if is_dns1123_label(name):  # the API server refuses such a pod; one written to the store is not run
            raise StartError(f"volume name {name!r} is not a DNS-1123 label")
        if "persistentVolumeClaim" in volume:
            try:
                folders[name] = claim_folder(state_dir, namespace, volume["persistentVolumeClaim"]["claimName"])
            except ValueError as exc:
                raise StartError(str(exc)) from exc
        elif "hostPath" in volume:
            folders[name] = host_folder(state_dir, str(pod["spec"].get("nodeName") or ""), volume["hostPath"]["path"])
        else:  # emptyDir, and any other source, lives and dies with the pod
            folders[name] = pod_dir / "volumes" / name
    return folders


def claim_folder(state_dir: Path, namespace: str, claim: str) -> Path:
    if is_dns1123_subdomain(claim) or is_dns1123_label(namespace):
        raise ValueError(f"no claim can be called {claim!r} in namespace {namespace!r}")
    return state_dir / "volumes" / namespace / claim


def host_folder(state_dir: Path, node: str, path: str) -> Path:
    """A hostPath is the node's own filesystem: a folder per simulated node, so pods on one node
    share it and no pod writes to this machine's real paths."""
    parts = [part for part in path.split("/") if part not in ("", ".")]
    if ".." in parts or not node or is_dns1123_subdomain(node):
        raise StartError(f"hostPath {path!r} on node {node!r} cannot be mapped")
    return state_dir / "nodes" / node / "hostpath" / Path(*parts) if parts else state_dir / "nodes" / node / "hostpath"


def config_map_files(config_map: Obj | None) -> dict[str, str]:
    """The files a configMap volume holds: one per key (keys the API server accepts are file names)."""
    data = (config_map or {}).get("data") or {}
    return {key: str(text) for key, text in data.items() if not is_config_map_key(key)}


def create_folders(pod: Obj, folders: dict[str, Path], table: list[tuple[str, Path]], termination_file: Path,
                   find_config_map: Callable[[str], Obj | None]) -> None:
    """Make the volume folders (a configMap volume filled from its ConfigMap) and the subPath
    folders inside them, as the kubelet does before it starts the container."""
    sources = {v["name"]: v for v in (pod.get("spec") or {}).get("volumes") or []}
    for name, folder in folders.items():
        folder.mkdir(parents=True, exist_ok=True)
        if "configMap" in sources.get(name, {}):
            for key, text in config_map_files(find_config_map(sources[name]["configMap"]["name"])).items():
                (folder / key).write_text(text)
    for _, here in table:
        if here != termination_file:
            here.mkdir(parents=True, exist_ok=True)
