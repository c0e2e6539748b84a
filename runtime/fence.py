"""The attempt fence on the checkpoint volume (no torch).

Node 0's launcher of every attempt writes `<root>/fence/attempt-<n>.json` (attempt, its token, the job's
uid) before it touches anything else on the volume. Files are only ever added (older ones pruned by
the newest holder), so the newest attempt present never goes back, whatever order two attempts'
writes land in. Every commit, quarantine and deletion first re-reads the folder and refuses when an
attempt newer than its own (of the same job) is there: an old attempt cut off by a partition can
still write its own `.partial` folder, but it can neither commit it nor delete or set aside anything.
It then stops with `unknown`/`Fenced`: the operator has already replaced that attempt, so the class
feeds no decision (not `storage`: the volume is fine; not `node`: nothing is wrong with the node).

The token (TANDEM_ATTEMPT_TOKEN, sha256 of "<job uid>/<attempt>" from the operator) names the holder:
a file for our own attempt with another token means someone else claims our attempt number.

On NFS the check is as fresh as the client's directory attribute cache (`acdirmax`, 60 s by default);
mount the checkpoint volume with a short `actimeo` to narrow the window. The checksums catch what an
old writer may still interleave in that window.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tandem.runtime.faults import FaultError

FOLDER = "fence"
_FILE = re.compile(r"^attempt-(\d+)\.json$")
_KEEP_FILES = 8  # older attempts' files beyond these are pruned by the newest holder


def fenced_error(message: str) -> FaultError:
    return FaultError("unknown", "Fenced", message)


class Fence:
    def __init__(self, root: str | Path, attempt: int, token: str, job_uid: str) -> None:
        self.folder = Path(root) / FOLDER
        self.attempt = attempt
        self.token = token
        self.job_uid = job_uid

    def _holders(self) -> list[tuple[int, dict[str, Any]]]:
        """(attempt, record) of every fence file of this job; OSErrors propagate (then nothing may be done)."""
        found = []
        for child in self.folder.iterdir() if self.folder.is_dir() else []:
            match = _FILE.match(child.name)
            if not match:
                continue
            try:
                record = json.loads(child.read_text())
            except FileNotFoundError:
                continue  # pruned meanwhile
            except ValueError:
                record = {}  # a torn write still counts: its attempt is in its name
            uid = record.get("jobUid", "") if isinstance(record, dict) else ""
            if not (uid and self.job_uid and uid != self.job_uid):
                found.append((int(match.group(1)), record if isinstance(record, dict) else {}))
        return found

    def newer(self) -> tuple[int, str] | None:
        """(attempt, why) of the holder that fences us out, or None when we may write."""
        for attempt, record in sorted(self._holders(), key=lambda h: -h[0]):
            if attempt > self.attempt:
                return attempt, f"attempt {attempt} started after this attempt {self.attempt}"
            token = record.get("token", "")
            if attempt == self.attempt and token and self.token and token != self.token:
                return attempt, f"attempt {attempt} is held by another token"
        return None

    def check(self, action: str) -> None:
        """Raise the Fenced fault when a newer attempt holds the volume; call before every commit/delete."""
        newer = self.newer()
        if newer is not None:
            raise fenced_error(f"refused to {action}: {newer[1]}; this attempt is superseded and stops")

    def acquire(self) -> None:
        """Claim the volume for this attempt (node 0's launcher, before anything else touches it)."""
        self.check("start")
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"attempt-{self.attempt}.json"
        tmp = self.folder / f".attempt-{self.attempt}.{os.getpid()}.tmp"
        record = {"attempt": self.attempt, "token": self.token, "jobUid": self.job_uid}
        with open(tmp, "w") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        self.check("start")  # a newer attempt may have written its file meanwhile
        self._prune()

    def _prune(self) -> None:
        older = sorted(a for a, _ in self._holders() if a < self.attempt)
        for attempt in older[: max(0, len(older) - _KEEP_FILES)]:
            self.check("prune the fence")
            (self.folder / f"attempt-{attempt}.json").unlink(missing_ok=True)


def check(fence: Fence | None, action: str) -> None:
    if fence is not None:
        fence.check(action)


def fence_from_env(root: str | Path, env: Mapping[str, str] = os.environ) -> Fence:
    """The attempt fence the pod contract names (TANDEM_ATTEMPT, TANDEM_ATTEMPT_TOKEN, TANDEM_JOB_UID), as
    tandem-run claims it and tandem.sdk's Checkpointer checks it; attempt 1 without a token outside a Tandem pod."""
    attempt = env.get("TANDEM_ATTEMPT", "")
    return Fence(root, int(attempt) if attempt.isdigit() else 1, env.get("TANDEM_ATTEMPT_TOKEN", ""),
                 env.get("TANDEM_JOB_UID", ""))
