"""Entries taken from the components' own sources rather than from any text of the corpus (issue 15, item 2): each
case is one real line as the component prints it, where it was seen, and the whole decision it must give."""

from __future__ import annotations

import pytest

from tandem.faults.reading import read_log

# Slurm's slurmstepd and srun, and Ray's exceptions (SchedMD/slurm, ray-project/ray).
JOB_RUNNERS = [
    ('slurm-cgroup-oom-kill',
     'slurmstepd: error: Detected 1 oom_kill event in StepId=440575.0. Some of the step tasks have been OOM '
     'Killed.',
     'https://github.com/chrisknewman/tusas/issues/149',
     ('oom', 'HostOOM', 1, 'slurm-cgroup-oom-kill')),
    ('slurm-srun-task-oom',
     'srun: error: nid001277: tasks 1-3: Out Of Memory',
     'https://github.com/chrisknewman/tusas/issues/149',
     ('oom', 'HostOOM', 1, 'slurm-srun-task-oom')),
    ('slurm-memory-limit-kill',
     'slurmstepd-falkor7: error: Step 1141810.0 exceeded memory limit (52917772 > 20971520), being killed',
     'https://github.com/openbabel/openbabel/issues/2657',
     ('oom', 'HostOOM', 1, 'slurm-memory-limit-kill')),
    ('slurm-time-limit',
     'slurmstepd: error: *** JOB 3561528 ON js2-large10 CANCELLED AT 2025-08-19T17:09:34 DUE TO TIME LIMIT ***',
     'https://github.com/galaxyproject/pulsar/issues/408',
     ('unknown', 'TimeLimit', 1, 'slurm-time-limit')),
    ('slurm-preemption',
     'slurmstepd: error: *** JOB 32391783 ON cn119 CANCELLED AT 2021-06-18T13:05:36 DUE TO PREEMPTION ***',
     'https://github.com/SystemsGenetics/GEMmaker/pull/242',
     ('node', 'Preempted', 1, 'slurm-preemption')),
    ('slurm-step-node-failure',
     'slurmstepd: error: *** STEP 1943824.0 ON jean-zay-iam17 CANCELLED AT 2023-03-06T03:17:51 DUE TO NODE '
     'FAILURE, SEE SLURMCTLD LOG FOR DETAILS ***',
     'https://github.com/huggingface/m4-logs/blob/7a31dcede8590cdfd8a0786f75141933fe5afb36/tr_141-hanging/tr_141_cm409xPMD01_scale_leap_of_faith_v5_num_workers_06/README.md',
     ('node', 'NodeLost', 1, 'slurm-step-node-failure')),
    ('slurm-srun-node-failure',
     'srun: error: Node failure on jean-zay-iam37',
     'https://github.com/huggingface/m4-logs/blob/7a31dcede8590cdfd8a0786f75141933fe5afb36/tr_141-hanging/tr_141_cm409xPMD01_scale_leap_of_faith_v5_num_workers_06/README.md',
     ('node', 'NodeLost', 1, 'slurm-srun-node-failure')),
    ('slurm-unkillable-step',
     '[2020-12-14T09:44:56.002] [63532.0] error: *** STEP 63532.0 STEPD TERMINATED ON cn106 AT '
     '2020-12-14T09:44:56 DUE TO JOB NOT ENDING WITH SIGNALS ***',
     'https://github.com/ai4d-iasc/trixie/issues/45',
     ('unknown', 'UnkillableStep', 4, 'slurm-unkillable-step')),
    ('ray-memory-monitor-oom-error',
     'ray.exceptions.OutOfMemoryError: Task was killed due to the node running low on memory.',
     'https://github.com/real-stanford/flingbot/issues/11',
     ('oom', 'HostOOM', 1, 'ray-memory-monitor-oom-error')),
    ('ray-out-of-disk',
     'ray.exceptions.OutOfDiskError: Local disk is full',
     'https://github.com/alpa-projects/alpa/issues/969',
     ('storage', 'DiskFull', 1, 'ray-out-of-disk')),
    ('ray-object-store-full',
     'ray.exceptions.ObjectStoreFullError: Failed to put object '
     'ffffffffffffffffffffffffffffffffffffffff0f00000003000000 in object store because it is full. Object size '
     'is 516884584 bytes.',
     'https://github.com/ray-project/ray/issues/13443',
     ('oom', 'ObjectStoreFull', 4, 'ray-object-store-full')),
    ('ray-actor-node-preempted',
     "the actor's node was preempted: testing node preemption.",
     'https://github.com/ray-project/ray/blob/master/python/ray/tests/test_draining.py',
     ('node', 'Preempted', 1, 'ray-actor-node-preempted')),
    ('ray-actor-node-died',
     'The actor died because its node has died. Node Id: '
     '56b97436e67393f15565e024278867700c2bd0ec6ca9e0dac7261fd1',
     'https://github.com/ray-project/ray/blob/master/src/ray/gcs/actor/gcs_actor_manager.cc',
     ('node', 'NodeLost', 1, 'ray-actor-node-died')),
    ('ray-task-node-died',
     'ray.exceptions.NodeDiedError: Task failed due to the node (where this task was running)  was dead or '
     'unavailable.',
     'https://github.com/ray-project/ray/issues/54970',
     ('unknown', 'NodeLost', 4, 'ray-task-node-died')),
    ('ray-object-lost-node-failure',
     'All copies of 8774b2e5680a48cdffffffffffffffffffffffff0200000003000000 have been lost due to node '
     'failure. Check cluster logs (`/tmp/ray/session_latest/logs`) for more information about the failure.',
     'https://github.com/ray-project/ray/issues/59562',
     ('unknown', 'NodeLost', 4, 'ray-object-lost-node-failure')),
]

CASES = JOB_RUNNERS


@pytest.mark.parametrize(("line", "seen_at", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_components_own_words(line: str, seen_at: str, expected: tuple[str, str, int, str]) -> None:
    reading = read_log(line)
    assert reading is not None and reading.entry is not None, seen_at
    assert (reading.fault_class.value, reading.reason, reading.rule, reading.entry.signature.id) == expected, seen_at
