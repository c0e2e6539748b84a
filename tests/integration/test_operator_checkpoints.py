"""Checkpoints through the whole product: the real operator runs `tandem-train` on the local cluster, a bit
flips in the newest checkpoint between two jobs of the same name, and the second job says so in its Events
and resumes from the newest intact one."""

from __future__ import annotations

from collections.abc import Iterator
from functools import partial
from typing import Any

import operator_jobs
import pytest
from operator_jobs import event_reasons

from tandem.localcluster.cluster import LocalCluster
from tandem.localcluster.nodes import ClusterConfig, SimulatedPool

GROUP, VERSION, PLURAL = "tandem.dev", "v1alpha1", "trainingjobs"
NS = "default"
wait_phase = partial(operator_jobs.wait_phase, timeout=120)
TRAINING = {"model": "test", "globalBatch": 2, "microBatch": 1, "seqLen": 32, "lr": 3e-3,
            "data": {"maxBytes": 200_000}, "metrics": {"port": 0, "logEverySteps": 1}}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with LocalCluster(ClusterConfig(pools=[SimulatedPool(name="cpu", accelerator="cpu", nodes=1)])) as local:
        local.kubeconfig_path = local.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")
        yield local


@pytest.fixture(scope="module")
def cpu_pool(custom: Any) -> Iterator[None]:
    custom.create_cluster_custom_object(GROUP, VERSION, "acceleratorpools", {
        "apiVersion": f"{GROUP}/{VERSION}", "kind": "AcceleratorPool", "metadata": {"name": "cpu"},
        "spec": {"accelerator": "cpu", "nodeSelector": {"tandem.dev/pool": "cpu"}, "image": "example.org/tandem:cpu"}})
    yield


def job(steps: int) -> dict[str, Any]:
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "TrainingJob", "metadata": {"name": "verified"},
            "spec": {"nodes": 1, "pools": ["cpu"], "training": {**TRAINING, "steps": steps},
                     "checkpoint": {"volume": {"persistentVolumeClaim": {"claimName": "verified-ckpt"}},
                                    "intervalSteps": 2, "keep": 4},
                     "faultPolicy": {"backoffSeconds": 0, "maxBackoffSeconds": 0}}}


def test_a_flipped_bit_is_quarantined_told_in_an_event_and_the_job_resumes_from_the_next_checkpoint(
    cluster: Any, custom: Any, core: Any, cpu_pool: None, wait_for: Any
) -> None:
    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job(steps=4))
    first = wait_phase(custom, wait_for, "verified", "Succeeded")
    assert first["status"]["lastCheckpoint"]["step"] == 4
    custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "verified")
    wait_for(lambda: not core.list_namespaced_pod(NS, label_selector="tandem.dev/job=verified").items,
             what="the first job's pods to go")
    volume = cluster.kubelet.claim_dir(NS, "verified-ckpt")
    shard = sorted((volume / "step-000000004").glob("*.distcp"))[0]
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0x40  # one flipped bit in the middle of a weight shard
    shard.write_bytes(bytes(data))

    custom.create_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, job(steps=6))
    try:
        done = wait_phase(custom, wait_for, "verified", "Succeeded")["status"]
        # The Events are posted just after the status that decided them is written.
        wanted = {"CheckpointQuarantined", "ForeignCheckpoint"}  # the flipped bit, and the earlier job's checkpoint
        wait_for(lambda: wanted <= set(event_reasons(core, "verified")), timeout=15,
                 what=f"the Warnings {sorted(wanted)}")
        integrity = next(c for c in done["conditions"] if c["type"] == "CheckpointIntegrity")
        assert "step 4 (checksum)" in integrity["message"]
        assert (done["restarts"], done["faults"], done["lastCheckpoint"]["step"]) == (0, [], 6)
        assert [p.name for p in (volume / "quarantine").iterdir()] == ["step-000000004-checksum"]
    finally:
        custom.delete_namespaced_custom_object(GROUP, VERSION, NS, PLURAL, "verified")
