"""Every pool pod the operator serves, kept from its pod watch: what a new attempt's admission counts as the room
other jobs hold, without listing every pod of the cluster each time (O(pods) per admission at a thousand nodes).

Fed by the kopf pod handler (every event of a pod with the job label), seeded by one list at start-up, and told of
the pods the operator has just created before the watch brings them back (the "expectations" of Kubernetes'
controllers): an admission never counts fewer pods than exist, so two jobs never both take the same free nodes. A
pod deleted while its DELETED event is on the way still counts for that moment: an admission may wait, never
over-commit. The list is read again every RESEED_SECONDS, off the reconciles' path (operator/cluster_sync.py's
poll: a list of every pod at a thousand nodes takes seconds): it drops what a missed event (a pod deleted while a
watch was away) would otherwise keep; a job's own fresh read (`correct`) drops its ghosts at once.

The same index answers "this job's pods" for a reconcile (by the job's label, O(its pods)): a reconcile reads no pods
from the API unless its decision would delete or move one (operator/controller.py reads them fresh first)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from tandem.operator.observe import phase_of, stopped_from_outside
from tandem.operator.podspec import JOB_LABEL, owned_by
from tandem.operator.watched import Key, Watched, key_of, newer, slim, uid_of

Obj = dict[str, Any]
RESEED_SECONDS = 300.0
# The last states kept of pods that are gone, all jobs together (the newest): enough for the ranks of the attempts
# that vanish at one time, bounded so that jobs that come and go (and the pods a deleted job's garbage collection
# removes after the job was forgotten) cannot grow the operator's memory.
DEPARTED_KEPT = 1024


def _key(pod: Obj) -> Key:
    namespace, name = key_of(pod)
    return namespace or "default", name


def _job_key(pod: Obj) -> Key:
    return _key(pod)[0], str(((pod.get("metadata") or {}).get("labels") or {}).get(JOB_LABEL) or "")


class PodIndex(Watched):
    """The pod watch's pods (`observe`, from Watched), indexed by job too."""

    def __init__(self) -> None:
        super().__init__()
        self._by_job: dict[Key, set[Key]] = {}  # (namespace, job label) -> its pods' keys
        self._seeded_at: float | None = None
        # (namespace, job label) -> pod name -> the pod's last state, from its DELETED event, when that state says
        # why it ended (Failed, or marked for disruption): read by the job's reconcile (operator/detect.py). The
        # order of all records, oldest first, bounds them (DEPARTED_KEPT).
        self._departed: dict[Key, dict[str, Obj]] = {}
        self._departed_order: OrderedDict[tuple[Key, str], None] = OrderedDict()

    def _gone(self, obj: Obj) -> None:
        self._remember(obj)  # in the same hold of the lock as the pod's removal: no reconcile sees neither

    def _remember(self, pod: Obj) -> None:
        """Keep a gone pod's last state if it says why the pod ended (called with the lock held)."""
        if phase_of(pod) != "Failed" and not stopped_from_outside(pod):
            return
        job, name = _job_key(pod), _key(pod)[1]
        self._unrecord(job, name)
        self._departed.setdefault(job, {})[name] = pod
        self._departed_order[(job, name)] = None
        while len(self._departed_order) > DEPARTED_KEPT:
            self._unrecord(*next(iter(self._departed_order)))

    def _unrecord(self, job: Key, name: str) -> None:
        self._departed_order.pop((job, name), None)
        records = self._departed.get(job)
        if records is not None:
            records.pop(name, None)
            if not records:
                del self._departed[job]

    def departed(self, namespace: str, job: str, uid: str) -> list[Obj]:
        """The last states of the job's pods that are gone and ended with a cause, oldest deletion first."""
        with self._lock:
            return [p for p in self._departed.get((namespace, job), {}).values() if owned_by(p, uid)]

    def forget(self, namespace: str, job: str) -> None:
        """The job is deleted: its pods' last states go too."""
        with self._lock:
            for name in list(self._departed.get((namespace, job), {})):
                self._unrecord((namespace, job), name)

    def due(self) -> bool:
        """Never listed, or listed more than RESEED_SECONDS ago."""
        return self._seeded_at is None or time.monotonic() - self._seeded_at > RESEED_SECONDS

    def _unlisted_stays(self, pod: Obj) -> bool:
        return not uid_of(pod)  # a pod just created, expected: the list may not show it yet

    def _replace(self, pods: dict[Key, Obj]) -> None:
        self._objects, self._by_job = {}, {}
        for key, pod in pods.items():
            self._put(key, pod)
        self._seeded_at = time.monotonic()

    def expect(self, manifest: Obj) -> None:
        """A pod the operator is about to create: counted until the watch brings the API's version of it."""
        with self._lock:
            if _key(manifest) not in self._objects:
                self._put(_key(manifest), manifest)

    def unexpect(self, manifest: Obj) -> None:
        """A pod expected but not created after all (its create failed): no longer counted."""
        with self._lock:
            known = self._objects.get(_key(manifest))
            if known is not None and not uid_of(known):
                self._drop(_key(manifest))

    def pods(self, namespaces: Sequence[str]) -> list[Obj]:
        """The pods of `namespaces` (every namespace when empty)."""
        with self._lock:
            return [p for (ns, _), p in self._objects.items() if not namespaces or ns in namespaces]

    def others(self, namespaces: Sequence[str], uid: str) -> OtherPods:
        """The pods of `namespaces` that the job `uid` does not own: the room other jobs hold."""
        return OtherPods(lambda: [p for p in self.pods(namespaces) if not owned_by(p, uid)])

    def job_pods(self, namespace: str, job: str, uid: str) -> list[Obj]:
        """The pods of one job (its label, and owned by its uid: a job recreated under the same name never sees
        the old one's pods), as `Kube.list_job_pods` would list them."""
        with self._lock:
            keys = sorted(self._by_job.get((namespace, job), ()))
            return [self._objects[k] for k in keys if owned_by(self._objects[k], uid)]

    def correct(self, namespace: str, job: str, uid: str, fresh: list[Obj]) -> None:
        """A job's pods as a fresh read just listed them: the index's view of that job becomes the newer of the two
        per pod, and a pod the list no longer shows (its deletion missed) leaves it. Pods just created and not yet
        listed stay."""
        with self._lock:
            listed = {_key(p): slim(p) for p in fresh}
            for key in list(self._by_job.get((namespace, job), ())):
                known = self._objects[key]
                if key not in listed and uid_of(known) and owned_by(known, uid):
                    self._drop(key)
                    self._remember(known)  # gone before its DELETED event came: what was seen of it last
            for key, pod in listed.items():
                if newer(pod, self._objects.get(key)):
                    self._put(key, pod)

    def _key(self, obj: Obj) -> Key:
        return _key(obj)

    def _put(self, key: Key, pod: Obj) -> None:
        recorded = self._departed.get(_job_key(pod), {}).get(key[1])
        if recorded is not None and uid_of(recorded) != uid_of(pod):
            self._unrecord(_job_key(pod), key[1])  # a new pod took the name: the old one's end is not its
        known = self._objects.get(key)
        if known is not None:
            self._by_job.get(_job_key(known), set()).discard(key)
        self._objects[key] = pod
        self._by_job.setdefault(_job_key(pod), set()).add(key)

    def _drop(self, key: Key) -> None:
        pod = self._objects.pop(key)
        keys = self._by_job.get(_job_key(pod))
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_job[_job_key(pod)]


class OtherPods(Sequence[Obj]):
    """Other jobs' pods, listed from the index the first time a decision reads them: only a decision that needs
    room does (a new attempt, a fault, a long wait), so the steady state's reconciles never pay for a walk over
    every pod of the cluster."""

    def __init__(self, listing: Callable[[], list[Obj]]) -> None:
        self._listing = listing
        self._pods: list[Obj] | None = None

    def _listed(self) -> list[Obj]:
        if self._pods is None:
            self._pods = self._listing()
        return self._pods

    def __getitem__(self, index: int) -> Obj:  # type: ignore[override]
        return self._listed()[index]

    def __len__(self) -> int:
        return len(self._listed())

    def __iter__(self) -> Iterator[Obj]:
        return iter(self._listed())
