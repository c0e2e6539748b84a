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

# Kubernetes training controllers, autoscalers and managed training services (their sources and docs).
CONTROLLERS = [
    ('kueue-evicted-node-failures',
     'Workload was evicted as there was no replacement for unhealthy node(s): x0',
     'https://github.com/kubernetes-sigs/kueue/blob/main/pkg/scheduler/scheduler_tas_test.go',
     ('node', 'NodeFailures', 1, 'kueue-evicted-node-failures')),
    ('kueue-evicted-pods-ready-timeout',
     'Normal  EvictedDueToPodsReadyTimeout  2m5s                 kueue-workload-controller  Exceeded the '
     'PodsReady timeout e2e-gsj4m/job-high-67543',
     'https://github.com/kubernetes-sigs/kueue/pull/2376',
     ('unknown', 'PodsReadyTimeout', 4, 'kueue-evicted-pods-ready-timeout')),
    ('volcano-scheduler-evict',
     '42s         Warning   Evict              pod/pyspark-pi-driver-routine-bf20cae50b6a8253           Pod is '
     'evicted, because of preempt',
     'https://github.com/pgillet/spark-article/blob/d63ef2ddbd2feac196b95535b6e0bb0373496fe1/15-pod-priority-preemption.md',
     ('node', 'Preempted', 1, 'volcano-scheduler-evict')),
    ('volcano-agent-offline-eviction',
     '69s         Warning   Evicted                   pod/offline-demo-785cff7f58-gwqwc    Evict offline pod '
     'due to cpu resource pressure',
     'https://github.com/volcano-sh/volcano/blob/master/docs/design/colocation/Overview.md',
     ('node', 'Evicted', 1, 'volcano-agent-offline-eviction')),
    ('karpenter-disruption-eviction',
     '2023-03-16T20:25:52Z   2023-03-16T20:25:52Z   1       karpenter           Normal   Evicted     Evicted '
     'pod',
     'https://github.com/aws/karpenter-provider-aws/issues/3594',
     ('node', 'NodeDisrupted', 1, 'karpenter-disruption-eviction')),
    ('karpenter-aws-interruption',
     'Warning  TerminatingOnInterruption  64m  karpenter  Interruption triggered termination for the Node',
     'https://github.com/aws/karpenter-provider-aws/blob/main/pkg/controllers/interruption/events/events.go',
     ('node', 'InstanceInterrupted', 1, 'karpenter-aws-interruption')),
    ('cluster-autoscaler-scale-down',
     'Normal  ScaleDown  12m   cluster-autoscaler  deleting pod for node scale down',
     'https://github.com/kubernetes/autoscaler/blob/master/cluster-autoscaler/core/scaledown/actuation/drain.go',
     ('node', 'ScaleDown', 1, 'cluster-autoscaler-scale-down')),
    ('cloud-node-deleted',
     '3s         6h          4780      ip-10-56-0-138.ec2.internal   Node                  Normal    '
     'DeletingNode   controllermanager   Node ip-10-56-0-138.ec2.internal event: Deleting Node '
     "ip-10-56-0-138.ec2.internal because it's not present according to cloud provider",
     'https://github.com/kubernetes/autoscaler/issues/109',
     ('node', 'NodeDeleted', 1, 'cloud-node-deleted')),
    ('kubelet-shutdown-detected',
     'Normal  Shutdown  2m  kubelet  Shutdown manager detected shutdown event',
     'https://github.com/kubernetes/kubernetes/blob/master/pkg/kubelet/nodeshutdown/nodeshutdown_manager_linux.go',
     ('node', 'NodeShutdown', 1, 'kubelet-shutdown-detected')),
    ('hyperpod-node-unhealthy',
     'sagemaker.amazonaws.com/node-health-status: UnschedulablePendingReplacement',
     'https://docs.aws.amazon.com/sagemaker/latest/dg/sagemaker-hyperpod-eks-resiliency-node-labels.html',
     ('node', 'NodeHealthCheckFailed', 1, 'hyperpod-node-unhealthy')),
    ('eks-neuron-hardware-error',
     'kernel: NEURON_HW_ERR=HBM_UNCORRECTABLE_ERROR affecting neuron devices',
     'https://github.com/aws/eks-node-monitoring-agent/blob/main/monitors/neuron/monitor_test.go',
     ('device', 'NeuronHardwareError', 1, 'eks-neuron-hardware-error')),
    ('eks-nvidia-gpu-missing-or-diag-failed',
     'DCGM detected 8 GPUs but 0 nvidia device files were detected',
     'https://github.com/aws/eks-node-monitoring-agent/blob/main/monitors/nvidia/dcgm/dcgm_devices_test.go',
     ('device', 'GpuHealthCheckFailed', 1, 'eks-nvidia-gpu-missing-or-diag-failed')),
    ('eks-nvidia-fabric-error',
     'GPU fabric health mask 0x10: route_unhealthy=1',
     'https://github.com/aws/eks-node-monitoring-agent/blob/main/monitors/nvidia/dcgm/dcgm_watchfield_test.go',
     ('interconnect', 'NvLinkFabricError', 1, 'eks-nvidia-fabric-error')),
    ('vertex-replica-oom',
     'The replica workerpool0-0 ran out of memory and exited with a non-zero status of 137.',
     'https://cloud.google.com/vertex-ai/docs/training/understanding-training-service',
     ('oom', 'OOMKilled', 1, 'vertex-replica-oom')),
    ('vertex-internal-error',
     'Internal error occurred for the current attempt.',
     'https://cloud.google.com/vertex-ai/docs/training/understanding-training-service',
     ('unknown', 'ServiceInternalError', 1, 'vertex-internal-error')),
    ('sagemaker-internal-error',
     'Failed. Reason: InternalServerError: We encountered an internal error. Please try again.',
     'https://github.com/aws/sagemaker-python-sdk/issues/2496',
     ('unknown', 'ServiceInternalError', 1, 'sagemaker-internal-error')),
    ('cloud-training-capacity-stockout',
     'FailureReason: "CapacityError: Unable to provision requested ML compute capacity. Please retry using a '
     'different ML instance type."',
     'https://github.com/DIAGNijmegen/rse-grand-challenge/issues/2631',
     ('unknown', 'InsufficientCapacity', 1, 'cloud-training-capacity-stockout')),
]

# NCCL's own WARN texts (NVIDIA/nccl's source, v2.18 to v2.30) and PyTorch's watchdog around them.
NCCL = [
    ('nccl-gin-completion-error',
     'gpu-node-07:48211:48390 [2] transport/net_ib/gin.cc:749 NCCL WARN NET/IB/GIN: Got completion from peer '
     '10.42.3.17<46581> with status=12 opcode=0 len=0 vendor err 129 (IPut) hca mlx5_2',
     'https://github.com/NVIDIA/nccl/blob/v2.30.7-1/src/transport/net_ib/gin.cc',
     ('interconnect', 'NcclIbCompletionError', 1, 'nccl-gin-completion-error')),
    ('nccl-ib-resiliency-fatal',
     'gpu-node-07:48211:48390 [2] transport/net_ib/p2p_resiliency.cc:47 NCCL WARN NET/IB: Fatal error. Detected '
     '2 failed devices out of 2 devices on the send communicator (comm=0x7f3a1c0d2e00). No support for more '
     'than a single failed device.',
     'https://github.com/NVIDIA/nccl/blob/v2.30.7-1/src/transport/net_ib/p2p_resiliency.cc',
     ('interconnect', 'NcclIbAllRailsFailed', 1, 'nccl-ib-resiliency-fatal')),
    ('nccl-net-device-count-mismatch',
     'gpu-node-07:48211:48300 [2] init.cc:1339 NCCL WARN Detected mixed local Net device counts across ranks '
     '(min 7, max 8). Set NCCL_IGNORE_NET_MISMATCH=1 to continue.',
     'https://github.com/NVIDIA/nccl/blob/v2.30.7-1/src/init.cc',
     ('interconnect', 'NcclNicMissing', 4, 'nccl-net-device-count-mismatch')),
    ('nccl-socket-connect-timeouts-exceeded',
     'gpu-node-07:48211:48300 [2] misc/socket.cc:544 NCCL WARN socketPollConnect: connect returned Connection '
     'timed out, exceeded error retry count (35)',
     'https://github.com/NVIDIA/nccl/blob/v2.26.2-1/src/misc/socket.cc',
     ('interconnect', 'NcclSocketConnectTimeout', 1, 'nccl-socket-connect-timeouts-exceeded')),
    ('nccl-mnnvl-imex-unavailable',
     'gb200-rack1-n03:5120:5301 [0] mnnvl.cc:74 NCCL WARN MNNVL (cliqueSize 72) is available but not working on '
     'this system. Check the IMEX configuration (nvidia-imex-ctl -N). Set NCCL_MNNVL_ENABLE=0 to ignore this '
     'issue.',
     'https://github.com/NVIDIA/nccl/blob/v2.27.7-1/src/mnnvl.cc',
     ('interconnect', 'NcclMnnvlImex', 4, 'nccl-mnnvl-imex-unavailable')),
    ('pgnccl-timeout-at-work',
     '[rank0]:[E1206 18:44:16.994932383 ProcessGroupNCCL.cpp:1709] [PG 1 Rank 0] Timeout at NCCL work: 7753, '
     'last enqueued NCCL work: 7755, last completed NCCL work: 7752.',
     'https://github.com/hiyouga/LlamaFactory/issues/6269',
     ('interconnect', 'CollectiveTimeout', 3, 'pgnccl-timeout-at-work')),
    ('nccl-mnnvl-imex-channel',
     'gb200-rack1-n03:5120:5301 [0] mnnvl.cc:63 NCCL WARN MNNVL (cliqueSize 72) is available but not working on '
     'this system. Check the IMEX channel configuration (/dev/nvidia-caps-imex-channels). Set '
     'NCCL_MNNVL_ENABLE=0 to ignore this issue.',
     'https://github.com/NVIDIA/nccl/blob/v2.27.7-1/src/mnnvl.cc',
     ('unknown', 'NcclMnnvlImexChannel', 1, 'nccl-mnnvl-imex-channel')),
    ('nccl-requested-net-not-found',
     'gpu-node-07:48211:48300 [2] plugin/net.cc:232 NCCL WARN Error: network IB not found.',
     'https://github.com/NVIDIA/nccl/blob/v2.26.2-1/src/plugin/net.cc',
     ('unknown', 'NcclNetUnavailable', 1, 'nccl-requested-net-not-found')),
    ('nccl-ib-collective-size-mismatch',
     '10.10.23.10: so-ucloud-10-10-23-10:1307367:1307586 [0] transport/net_ib.cc:1038 NCCL WARN NET/IB : req '
     '0/1 tag 0 peer 10.10.23.6<58683> collective mismatch error, local size 496640 remote size 65536',
     'https://github.com/NVIDIA/nccl/issues/969',
     ('unknown', 'NcclCollectiveMismatch', 1, 'nccl-ib-collective-size-mismatch')),
    ('nccl-multi-rank-same-gpu',
     'gpu-node-07:48211:48300 [0] init.cc:1057 NCCL WARN Multiple Ranks are using the same GPU/Partition. Set '
     'NCCL_MULTI_RANK_GPU_ENABLE=1 to enable this configuration.',
     'https://github.com/NVIDIA/nccl/blob/v2.30.7-1/src/init.cc',
     ('user', 'NcclInvalidUsage', 1, 'nccl-multi-rank-same-gpu')),
    ('nccl-nvls-forced-multi-rank-gpu',
     'gpu-node-07:48211:48300 [0] transport/nvls.cc:254 NCCL WARN NCCL_NVLS_ENABLE has been set to "1" and '
     'communicator has multiple ranks using the same NVML device. This is not compatible with '
     'NCCL_NVLS_ENABLE=1.',
     'https://github.com/NVIDIA/nccl/blob/v2.30.7-1/src/transport/nvls.cc',
     ('user', 'NcclInvalidUsage', 1, 'nccl-nvls-forced-multi-rank-gpu')),
    ('nccl-group-usage',
     'gpu-node-07:48211:48211 [0] group.cc:283 NCCL WARN Either none or all communicators in a ncclGroup() can '
     'be CUDA graph captured.',
     'https://github.com/NVIDIA/nccl/blob/v2.28.9-1/src/group.cc',
     ('user', 'NcclInvalidUsage', 1, 'nccl-group-usage')),
    ('nccl-argcheck',
     'gpu-node-07:48211:48211 [0] misc/argcheck.cc:22 NCCL WARN AllReduce : sendbuff allocated on device 1 '
     'mismatchs with NCCL device 0',
     'https://github.com/NVIDIA/nccl/blob/v2.28.9-1/src/misc/argcheck.cc',
     ('user', 'NcclInvalidArgument', 1, 'nccl-argcheck')),
    ('nccl-argcheck-invalid-pointer',
     'gpu-node-07:48211:48211 [0] misc/argcheck.cc:14 NCCL WARN AllReduce : sendbuff 0x7f2c5a000000 is not a '
     'valid pointer',
     'https://github.com/NVIDIA/nccl/blob/v2.28.9-1/src/misc/argcheck.cc',
     ('unknown', 'NcclInvalidArgument', 4, 'nccl-argcheck-invalid-pointer')),
    ('nccl-enqueue-usage',
     'gpu-node-07:48211:48211 [0] enqueue.cc:2559 NCCL WARN FP8 reduction support begins with sm90 capable '
     'devices.',
     'https://github.com/NVIDIA/nccl/blob/v2.28.9-1/src/enqueue.cc',
     ('user', 'NcclInvalidArgument', 1, 'nccl-enqueue-usage')),
    ('nccl-no-algo-forced-env',
     'gpu-node-07:48211:48211 [0] enqueue.cc:2063 NCCL WARN No algorithm/protocol available for function '
     'Broadcast with datatype ncclInt8. NCCL_ALGO was set to Tree.',
     'https://github.com/NVIDIA/nccl/blob/v2.30.7-1/src/enqueue.cc',
     ('user', 'NcclConfig', 1, 'nccl-no-algo-forced-env')),
    ('nccl-library-version-compat',
     'gpu-node-07:48211:48211 [0] dev_runtime.cc:1428 NCCL WARN NCCL library is too old. This application was '
     'compiled with NCCL version 2.30.7, but is running with NCCL library version 2.29.3.',
     'https://github.com/NVIDIA/nccl/blob/v2.30.7-1/src/dev_runtime.cc',
     ('user', 'LibraryMismatch', 1, 'nccl-library-version-compat')),
    ('nccl-graph-capture-unsupported-build',
     'gpu-node-07:48211:48211 [0] misc/strongstream.cc:90 NCCL WARN NCCL cannot be captured in a graph if '
     "either it wasn't built with CUDA runtime >= 11.3 or if the installed CUDA driver < R465.",
     'https://github.com/NVIDIA/nccl/blob/v2.28.9-1/src/misc/strongstream.cc',
     ('user', 'LibraryMismatch', 1, 'nccl-graph-capture-unsupported-build')),
    ('nccl-topo-xml-file',
     '2a8874e7d1e6:2196:2275 [1] graph/xml.h:101 NCCL WARN Attribute arch of node cpu not found',
     'https://github.com/aws/aws-ofi-nccl/issues/785',
     ('user', 'NcclTopologyFile', 1, 'nccl-topo-xml-file')),
    ('nccl-nic-merge-config',
     'gpu-node-07:48211:48300 [0] graph/topo.cc:1079 NCCL WARN TOPO/NET : Could not force merge NICs '
     'mlx5_0,mlx5_1. Please specify a valid NCCL_NET_FORCE_MERGE string.',
     'https://github.com/NVIDIA/nccl/blob/v2.28.9-1/src/graph/topo.cc',
     ('user', 'NcclConfig', 1, 'nccl-nic-merge-config')),
    ('nccl-ras-version-mismatch',
     'gpu-node-07:48211:48420 [0] ras/ras.cc:428 NCCL WARN NCCL version mismatch with remote peer '
     '10.42.3.17<36521> (local: 22809, remote 22602)',
     'https://github.com/NVIDIA/nccl/blob/v2.28.9-1/src/ras/ras.cc',
     ('user', 'LibraryMismatch', 1, 'nccl-ras-version-mismatch')),
    ('nccl-host-malloc-failed',
     'gpu-node-07:48211:48300 [0] include/alloc.h:136 NCCL WARN Failed to malloc 4294967296 bytes',
     'https://github.com/NVIDIA/nccl/blob/v2.28.9-1/src/include/alloc.h',
     ('oom', 'HostOOM', 1, 'nccl-host-malloc-failed')),
    ('nccl-cuda-alloc-failed',
     'c11efb988616:1346195:1346232 [0] include/alloc.h:105 NCCL WARN Failed to CUDA calloc 1048576 bytes',
     'https://github.com/microsoft/NPKit/issues/37',
     ('oom', 'DeviceOOM', 4, 'nccl-cuda-alloc-failed')),
]

CASES = JOB_RUNNERS + CONTROLLERS + NCCL


@pytest.mark.parametrize(("line", "seen_at", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_components_own_words(line: str, seen_at: str, expected: tuple[str, str, int, str]) -> None:
    reading = read_log(line)
    assert reading is not None and reading.entry is not None, seen_at
    assert (reading.fault_class.value, reading.reason, reading.rule, reading.entry.signature.id) == expected, seen_at
