"""Content checks of a checkpoint (no torch): per-file checksums, the manifest's own digest, and the
plausibility of the first loss after a resume.

Checksums are CRC-32 (zlib, ~6 GB/s on one core here: bench/RESULTS.md), streamed in 8 MiB chunks.
CRC-32 detects every burst error up to 32 bits and any odd number of flipped bits; it is not a
defence against a forger, only against storage, network and truncation damage (the fence keeps
other writers out). Each rank checksums the files it wrote in the background writer thread after
DCP's write, rank 0 the rest; load verifies every file of the chosen checkpoint before any worker
reads it.
"""

from __future__ import annotations

import json
import math
import zlib
from pathlib import Path
from typing import Any

from tandem.runtime.ckpt_layout import DIGEST_FIELD  # the manifest's checksum of itself

ALGORITHM = "crc32"
_CHUNK = 8 << 20

# "Wildly implausible" first loss after a resume: non-finite, or above LOSS_FACTOR x the loss recorded
# at save time plus LOSS_SLACK nats. A healthy resume continues within a few percent of the saved loss
# (the next batch, one more update); a corrupt state that passed the checksums (e.g. damaged in memory
# before it was written) jumps towards or past ln(vocab), the loss of uniform guessing.
LOSS_FACTOR = 1.5
LOSS_SLACK = 1.0


def file_checksum(path: Path) -> str:
    crc = 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(_CHUNK):
            crc = zlib.crc32(chunk, crc)
    return f"{crc:08x}"


def manifest_digest(manifest: dict[str, Any]) -> str:
    body = {k: v for k, v in manifest.items() if k != DIGEST_FIELD}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=True)
    return f"{zlib.crc32(text.encode()):08x}"


def content_problem(path: Path, manifest: dict[str, Any]) -> str | None:
    """Why the files of checkpoint `path` do not match `manifest` (None: every checksum matches).

    A missing file is content damage; any other OSError (EIO, a stale handle) propagates: a transient
    storage fault must never get a checkpoint set aside.
    """
    if manifest.get(DIGEST_FIELD) != manifest_digest(manifest):
        return "the manifest does not match its own digest"
    checksums = manifest.get("checksums")
    if manifest.get("checksum") != ALGORITHM or not isinstance(checksums, dict):
        return "the manifest records no checksums"
    if set(checksums) != set(manifest.get("files", {})):
        return "the manifest's checksums and files differ"
    for name, expected in sorted(checksums.items()):
        try:
            actual = file_checksum(path / name)
        except FileNotFoundError:
            return f"{name} is missing"
        if actual != expected:
            return f"{name} has checksum {actual}, the manifest says {expected}"
    return None


def loss_problem(first_loss: float, saved_loss: float | None) -> str | None:
    """Why the first loss after a resume rejects the checkpoint (None: plausible)."""
    if not math.isfinite(first_loss):
        return f"the first loss after the resume is {first_loss}"
    if saved_loss is None or not math.isfinite(saved_loss):
        return None
    bound = LOSS_FACTOR * saved_loss + LOSS_SLACK
    if first_loss > bound:
        return (
            f"the first loss after the resume is {first_loss:.4g}, the checkpoint was saved at {saved_loss:.4g} "
            f"(bound {LOSS_FACTOR:g} x saved + {LOSS_SLACK:g} = {bound:.4g})"
        )
    return None
