"""downwardAPI volumes for the simulated kubelet: a file per item, written before the container starts and
rewritten when the pod's labels or annotations change, as the kubelet's volume manager does on a pod update
(the in-place restart's signal, tandem.in_place, travels this way). Each file is replaced whole (a rename), so a
reader never sees half of one."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

Obj = dict[str, Any]
# The fieldRefs a downwardAPI volume item may name (resourceFieldRef is not emulated: the pod is told at start).
_FIELDS = ("metadata.labels", "metadata.annotations", "metadata.name", "metadata.namespace", "metadata.uid")


def _quoted(value: str) -> str:
    # Go's %q, which the kubelet uses for map values: for the text a label or annotation holds, JSON's quoting.
    return json.dumps(value, ensure_ascii=False)


def field_text(pod: Obj, path: str) -> str | None:
    """A fieldRef's file content: maps as sorted `key="value"` lines, as the kubelet writes them."""
    meta = pod.get("metadata") or {}
    if path in ("metadata.labels", "metadata.annotations"):
        values = meta.get(path.split(".")[1]) or {}
        return "\n".join(f"{key}={_quoted(str(values[key]))}" for key in sorted(values))
    if path in _FIELDS:
        return str(meta.get(path.split(".")[1]) or "")
    return None


def volume_files(pod: Obj, volume: Obj) -> dict[str, str]:
    """The files of one downwardAPI volume: item path -> content. An item the API server would refuse (an absolute
    or escaping path, an unknown field) is left out."""
    files = {}
    for item in (volume.get("downwardAPI") or {}).get("items") or []:
        path = str(item.get("path") or "")
        field = str((item.get("fieldRef") or {}).get("fieldPath") or "")
        text = field_text(pod, field)
        if text is None or not path or path.startswith("/") or ".." in path.split("/"):
            continue
        files[path] = text
    return files


def write_volume(folder: Path, files: dict[str, str]) -> bool:
    """Write the files that changed; True when any did."""
    changed = False
    for path, text in files.items():
        target = folder / path
        try:
            if target.read_text() == text:
                continue
        except OSError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        partial.write_text(text)
        os.replace(partial, target)
        changed = True
    return changed


def refresh(pod: Obj, folders: dict[str, Path]) -> bool:
    """(Re)write every downwardAPI volume of the pod into its folder; True when a file changed."""
    changed = False
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        if "downwardAPI" in volume and volume.get("name") in folders:
            changed = write_volume(folders[volume["name"]], volume_files(pod, volume)) or changed
    return changed
