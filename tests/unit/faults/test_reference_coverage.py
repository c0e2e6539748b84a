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
     'https://github.com/huggingface/m4-logs/blob/7a31dcede8590cdfd8a0786f75141933fe5afb36/tr_141-han'
     'ging/tr_141_cm409xPMD01_scale_leap_of_faith_v5_num_workers_06/README.md',
     ('node', 'NodeLost', 1, 'slurm-step-node-failure')),
    ('slurm-srun-node-failure',
     'srun: error: Node failure on jean-zay-iam37',
     'https://github.com/huggingface/m4-logs/blob/7a31dcede8590cdfd8a0786f75141933fe5afb36/tr_141-han'
     'ging/tr_141_cm409xPMD01_scale_leap_of_faith_v5_num_workers_06/README.md',
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
     'https://github.com/pgillet/spark-article/blob/d63ef2ddbd2feac196b95535b6e0bb0373496fe1/15-pod-p'
     'riority-preemption.md',
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

# HCCL's and HCCP's own texts (hicann/hccl's fault-diagnosis guide, hicann/hcomm) and torch_npu's ProcessGroupHCCL.
HCCL = [
    ('hccl-topo-agent-connect-failed',
     '[ERROR] HCCL(7988,all_reduce_test):2025-03-19-04:16:13.978.995 [topoinfo_exchange_agent.cc:41] '
     '[7988][TopoInfoExchangeAgent][Setup]TopoExchangeAgent: connect server[127.10.0.1 : 60000] failed',
     'https://github.com/hicann/hccl/blob/master/docs/zh/user_guide/fault_diagnosis/cluster_info_nego.md',
     ('interconnect', 'HcclSocketTimeout', 4, 'hccl-topo-agent-connect-failed')),
    ('hccl-topo-detect-unconnected-ranks',
     '[ERROR] HCCL(1041085,all_reduce_test):2025-11-21-01:20:01.630.122 [topoinfo_exchange_base.cc:145] '
     '[1041085][InitGroupStage][RanktableDetect] TopoDetect ERROR occur !!! fault_type[1], fault_info["Failed '
     'to connect agent[1,3,5,7,]"]',
     'https://github.com/hicann/hccl/blob/master/docs/zh/user_guide/fault_diagnosis/cluster_info_nego.md',
     ('interconnect', 'HcclSocketTimeout', 4, 'hccl-topo-detect-unconnected-ranks')),
    ('hccl-env-config',
     '[ERROR] HCCL(925892,alltoall_test):2025-10-28-16:34:59.634.432 [sal.cc:501] '
     '[925892][InitGroupStage][EnvConfig]set ifname to [abc] by HCCL_SOCKET_IFNAME, but not found in the '
     'environment, ifnames in the environment is as follows',
     'https://github.com/hicann/hccl/blob/master/docs/zh/user_guide/fault_diagnosis/env_config_error_EI0001.md',
     ('user', 'HcclConfigError', 1, 'hccl-env-config')),
    ('hccl-operator-parameter-invalid',
     'Failed to verify parameters of operator CheckRankID (operator name). Value 1sfa for parameter rank_id is '
     'invalid. The expected value is a non-negative decimal number.',
     'https://github.com/hicann/hcomm/blob/master/docs/en/error_codes/EI0003-Invalid_Argument_Collect'
     'ive_Communication_Operator.md',
     ('user', 'HcclInvalidArgument', 1, 'hccl-operator-parameter-invalid')),
    ('hccl-ranktable-invalid',
     'Failed to parse the ranktable file /home/HCCL_TEST/sess_run/rankta/intra_rank_table_2rank_v1.json. '
     'Reason: The rankTable file path does not exist, the permission is insufficient, or the JSON format is '
     'incorrect.',
     'https://github.com/hicann/hcomm/blob/master/docs/en/error_codes/EI0004-File_Operation_Error_Parse.md',
     ('unknown', 'HcclRanktableError', 4, 'hccl-ranktable-invalid')),
    ('hccl-parameter-conflict',
     '[ERROR] HCCL(3743927,all_reduce_test):2025-10-25-16:11:16.831.640 [rank_consistentcy_checker.cc:429] '
     '[3743951][InitChannelStage][ParameterConflict]CMD information tag check fail. '
     'local[AllGather_127.10.0.1%enp_60000_0_1761379874757928], '
     'remote[AllReduce_127.10.0.1%enp_60000_0_1761379874757928]',
     'https://github.com/hicann/hccl/blob/master/docs/zh/user_guide/fault_diagnosis/param_link_stage.md',
     ('user', 'HcclInconsistentArguments', 1, 'hccl-parameter-conflict')),
    ('hccl-heartbeat-op-inconsistent',
     '[ERROR]HCCL(835695,all_reduce_test):2025-10-23-17:28:06.049.385[task_exception_handler.cc:610]['
     '835695][TaskExecStage][HeartbeatAbnormal]Cluster '
     'Exception Location[IP/ID]:[127.10.0.1/1], Arrival Time:[Thu Oct 23 17:25:58 2025], ExceptionType:[Op '
     'Inconsistent Occurred], Possible Reason:communication operator is inconsistent',
     'https://github.com/hicann/hcomm/blob/master/src/legacy/ascend910/framework/cluster_maintenance/'
     'health/heartbeat/heartbeat.cc',
     ('user', 'HcclInconsistentArguments', 1, 'hccl-heartbeat-op-inconsistent')),
    ('hccl-version-mismatch',
     'The ops (cann-hccl) versions are inconsistent. The local version is 9.2.0 (version file: '
     '/usr/local/Ascend/cann-9.2.0/share/info/hccl/version.info), while the remote version is 9.1.0.',
     'https://github.com/hicann/hcomm/blob/master/docs/en/error_codes/EI0008-Package_Error_Incorrect_HCCL_Version.md',
     ('unknown', 'HcclVersionMismatch', 4, 'hccl-version-mismatch')),
    ('hccl-port-in-use',
     'Failed to enable listening for the NPU network adapter socket. Reason: The IP address 192.1.3.198 add '
     'port 16666 have already been bound.',
     'https://github.com/hicann/hcomm/blob/master/docs/en/error_codes/EI0020-Communication_Error_Bind_IP_Port.md',
     ('unknown', 'HcclPortInUse', 4, 'hccl-port-in-use')),
    ('hccl-connect-detect-no-event',
     'This node detects no exception event. The possible cause is that the behaviors of different ranks are '
     'inconsistent. The possible causes are as follows:',
     'https://github.com/hicann/hcomm/blob/master/src/legacy/ascend910/framework/cluster_maintenance/'
     'detect/detect_connect_anomalies/detect_connect_anomalies.cc',
     ('unknown', 'HcclNoLinkAnomaly', 1, 'hccl-connect-detect-no-event')),
    ('hccl-connect-detect-peer-unreachable',
     '[ERROR] HCCL(17528,python3):2026-03-18-10:34:43.141.966 [detect_connect_anomalies.cc:132] [18744]This '
     'node (server 192.168.200.100, device ID 1) detects that srcRank (server 192.168.200.100, device ID 1) '
     'fails to connect to dstRank (server 192.168.200.100, device ID 0). Continue to analyze the fault based on '
     'the logs of srcRank and dstRank.',
     'https://github.com/hicann/hccl/blob/master/docs/zh/user_guide/fault_diagnosis/param_link_stage.md',
     ('interconnect', 'PeerConnectionLost', 4, 'hccl-connect-detect-peer-unreachable')),
    ('hccl-socket-recv-timeout',
     '[ERROR] HCCL(3626636,all_reduce_test):2025-11-21-13:20:47.639.860 [adapter_hccp.cc:1827] '
     '[3626636][Recv][RaSocket]errNo[0x0000000005000013] Wait timeout for sockets recv, data[0x7ffd2c3e1000], '
     'size[4096 Byte], recvSize[0 Byte] timeout[120 s]. Peerrank did not send the data in time. Check whether '
     'the peerrank is abnormal.',
     'https://github.com/hicann/hcomm/blob/master/src/legacy/ascend910/platform/common/adapter/adapter_hccp.cc',
     ('interconnect', 'HcclSocketTimeout', 4, 'hccl-socket-recv-timeout')),
    ('hccl-npu-memory-alloc',
     'Failed to allocate 262144~3145728 bytes of NPU memory.',
     'https://github.com/hicann/hcomm/blob/master/docs/en/error_codes/EI0011-Resource_Error_Insuffici'
     'ent_Device_Memory.md',
     ('oom', 'DeviceOOM', 1, 'hccl-npu-memory-alloc')),
    ('hccl-resource-exhausted',
     'Failed to allocate resource HostMemory with info size:8928 bytes. Reason: Resources are exhausted.',
     'https://github.com/hicann/hcomm/blob/master/docs/en/error_codes/EI0007-Resource_Error.md',
     ('oom', 'HcclResourceExhausted', 4, 'hccl-resource-exhausted')),
    ('hccl-notify-wait-timeout-text',
     'A timeout occurs when the Notify register waits for execution. Waiting peer rank: 4; task information: '
     'streamID:[90], taskID[686], taskType[Notify Wait], '
     'tag[AllReduce_80.48.9.154%enp48s3u1u1_60000_0_1779783710697217ringAllReduceMeshSmallCountExecutor_device], '
     'AlgType(level 0-1-2):[ring-ring-NHR].; communication operator information: notify '
     'id:[0x00000000000018fc], stage:[0], remote rank:[4]; communicator: none.',
     'https://github.com/hicann/hcomm/blob/master/docs/en/error_codes/EI0002-Communication_Error_Timeout.md',
     ('unknown', 'HcclNotifyWaitTimeout', 4, 'hccl-notify-wait-timeout-text')),
    ('hccl-heartbeat-lost',
     '[ERROR]HCCL(835695,all_reduce_test):2025-10-23-17:28:06.049.385[task_exception_handler.cc:610]['
     '835695][TaskExecStage][HeartbeatAbnormal]Cluster '
     'Exception Location[IP/ID]:[127.10.0.1/1], Arrival Time:[Thu Oct 23 17:25:58 2025], '
     'Discoverer:[127.10.0.1/2], ExceptionType:[Heartbeat Lost Occurred], Possible Reason:1. Process has '
     'exited, 2. Network Disconnected',
     'https://github.com/hicann/hccl/blob/master/docs/zh/user_guide/fault_diagnosis/task_exec_stage.md',
     ('unknown', 'PeerConnectionLost', 4, 'hccl-heartbeat-lost')),
    ('hccl-heartbeat-stuck',
     '[ERROR]HCCL(1219039,all_reduce_test):2025-10-23-21:05:09.859.568[task_exception_handler.cc:610] '
     '[1219039][TaskExecStage][HeartbeatAbnormal]Cluster Exception Location[IP/ID]:[127.10.0.1/1], Arrival '
     'Time:[Thu Oct 23 21:03:19 2025], ExceptionType:[Stuck Occurred], Possible Reason:1.Host process is stuck, '
     '2.Device task is stuck',
     'https://github.com/hicann/hccl/blob/master/docs/zh/user_guide/fault_diagnosis/task_exec_stage.md',
     ('unknown', 'CollectiveHang', 4, 'hccl-heartbeat-stuck')),
    ('hccl-sdma-error-text',
     'SDMA memory copy task exception occurred. Remote rank: [4800]. Base information: [streamID:[44], '
     'taskID[2], taskType[Memcpy], tag[AllReduce_group_name_0], AlgType(level 0-1-2):[ring-ring-NHR].]. Task '
     'information: [src:[0x320000], dst:[0x12c088120000], size:[0x320000], notify id:[0xffffffffffffffff], link '
     'type:[OnChip], remote rank:[local]]. Communicator information: [group:[group_name_0], user define '
     'information[Unspecified], rankSize[16], rankId[13]].',
     'https://github.com/hicann/hcomm/blob/master/docs/en/error_codes/EI0012-Execution_Error_SDMA.md',
     ('unknown', 'HcclSdmaError', 1, 'hccl-sdma-error-text')),
    ('hccl-aiv-kernel-fault',
     '[ERROR] RUNTIME(699131,python):2025-04-24-21:54:17.707.236 [davinci_kernel_task.cc:1268]699131 '
     'PrintErrorInfoForDavinciTask:[INIT][DEFAULT]Aicore kernel execute failed, device_id=0, stream_id=2, '
     'report_stream_id=2, task_id=55873, flip_num=2073, fault kernel_name=aiv_all_reduce_***, fault kernel info '
     'ext=aiv_all_reduce_910b_bfloat16_t, program id=42, hash=9645272693770703471.',
     'https://github.com/hicann/hccl/blob/master/docs/zh/user_guide/fault_diagnosis/task_exec_stage.md',
     ('unknown', 'CommKernelTimeout', 1, 'hccl-aiv-kernel-fault')),
    ('hccp-poll-cqe-retry-exceeded',
     '[ERROR] HCCP(2040034,alltoall_test):2025-09-15-08:38:12.776.650 '
     '[ra_hdc_lite.c:794]tid:2040458,ra_hdc_lite_period_poll_cqe : [create][ra_hdc_period_poll]failed CQE '
     'status[12], wr[0]',
     'https://github.com/hicann/hccl/blob/master/docs/zh/user_guide/fault_diagnosis/task_exec_stage.md',
     ('interconnect', 'HcclRoceCqeError', 4, 'hccp-poll-cqe-retry-exceeded')),
    ('torch-npu-hccl-async-error',
     '[Rank0] checkHcclComms found HcclComms vector 0 got ERROR via HcclGetCommAsyncError : ',
     'https://github.com/Ascend/pytorch/blob/master/torch_npu/csrc/distributed/ProcessGroupHCCL.cpp',
     ('unknown', 'HcclRoceCqeError', 4, 'torch-npu-hccl-async-error')),
    ('torch-npu-hccl-ops-failed',
     'Some HCCL operations have failed or timed out. Due to the asynchronous nature of ASCEND kernels, '
     'subsequent NPU operations might run on corrupted/incomplete data.',
     'https://github.com/Ascend/pytorch/blob/master/torch_npu/csrc/distributed/ProcessGroupHCCL.cpp',
     ('unknown', 'CollectiveAborted', 4, 'torch-npu-hccl-ops-failed')),
    ('torch-npu-hccl-blocking-wait-timeout',
     '[Rank 3] Work WorkHCCL(SeqNum=12, OpType=ALLREDUCE, Timeout(ms)=1800000) timed out in blocking wait '
     '(TORCH_HCCL_BLOCKING_WAIT=1 or HCCL_BLOCKING_WAIT=1).',
     'https://github.com/Ascend/pytorch/blob/master/torch_npu/csrc/distributed/ProcessGroupHCCL.cpp',
     ('unknown', 'CollectiveTimeout', 4, 'torch-npu-hccl-blocking-wait-timeout')),
    ('torch-npu-hccl-unique-id-store',
     'Unknown exception while [3] is setting up HCCL communicator and retrieving hcclUniqueId from [0] via c10d '
     "key-value store by key '0'. This may indicate a possible application crash on rank 0 or a network set up "
     'issue.',
     'https://github.com/Ascend/pytorch/blob/master/torch_npu/csrc/distributed/ProcessGroupHCCL.cpp',
     ('unknown', 'StoreTimeout', 4, 'torch-npu-hccl-unique-id-store')),
]

# The storage clients a job writes checkpoints through (botocore and s3fs, OBS, GCS, Azure Blob and blobfuse2,
# JuiceFS, Lustre, NFS, FUSE, safetensors, huggingface_hub).
STORAGE_CLIENTS = [
    ('obs-request-rejected',
     '2024-05-20 10:11:12,345|process:1234|thread:139872|ERROR|HTTP(s)+XML|exceptional obs '
     'response:status:403,reason:Forbidden,code:AccessDenied,message:Access '
     'Denied,requestId:00000190A1B2C3D4E5F6071829304A5B|',
     'https://github.com/huaweicloud/huaweicloud-sdk-python-obs/blob/master/src/obs/client.py',
     ('user', 'StorageAccessDenied', 1, 'obs-request-rejected')),
    ('s3-no-such-bucket',
     'upload failed: tmp/test180204/star/Hela_wt_dox-/Hela_wt_dox-.Chimeric.out.sam to '
     's3://awsub-test-friend1ws2/test180204/star/Hela_wt_dox-/Hela_wt_dox-.Chimeric.out.sam An error occurred '
     '(NoSuchBucket) when calling the PutObject operation: The specified bucket does not exist',
     'https://github.com/otiai10/hotsub/issues/27',
     ('user', 'BadOutputPath', 1, 's3-no-such-bucket')),
    ('s3-access-denied',
     'botocore.exceptions.ClientError: An error occurred (AccessDenied) when calling the PutObject operation: '
     'Access Denied',
     'https://github.com/anna-geller/dataflow-ops/issues/4',
     ('user', 'StorageAccessDenied', 1, 's3-access-denied')),
    ('s3-expired-token',
     'ClientError: An error occurred (ExpiredToken) when calling the PutObject operation: The provided token '
     'has expired.',
     'https://github.com/activeloopai/deeplake/issues/39',
     ('unknown', 'StorageCredentials', 4, 's3-expired-token')),
    ('botocore-no-credentials',
     'botocore.exceptions.NoCredentialsError: Unable to locate credentials',
     'https://github.com/boto/botocore/blob/develop/botocore/exceptions.py',
     ('unknown', 'StorageCredentials', 4, 'botocore-no-credentials')),
    ('gcs-permission-denied',
     'google.cloud.exceptions.Forbidden: 403 Caller does not have storage.buckets.get access to bucket '
     'aircraft-audio-data.',
     'https://github.com/googleapis/google-cloud-python/issues/3433',
     ('user', 'StorageAccessDenied', 1, 'gcs-permission-denied')),
    ('azure-storage-auth',
     'Mon May 20 10:11:12.345 UTC 2024 : blobfuse2[2841] : [/mnt/blobckpt] LOG_ERR [block_blob.go (1192)]: '
     'BlockBlob::WriteFromFile : Insufficient permissions for checkpoints/step_1000/model.pt [RESPONSE 403: 403 '
     'This request is not authorized to perform this operation using this permission.]',
     'https://github.com/Azure/azure-storage-fuse/blob/main/component/azstorage/block_blob.go',
     ('user', 'StorageAccessDenied', 1, 'azure-storage-auth')),
    ('azure-container-not-found',
     'azure.common.AzureMissingResourceHttpError: The specified container does not exist. ErrorCode: '
     'ContainerNotFound',
     'https://github.com/Azure/azure-cli/issues/10315',
     ('user', 'BadOutputPath', 1, 'azure-container-not-found')),
    ('hf-hub-repo-not-found',
     'Repository Not Found for url: https://huggingface.co/api/models/my-org/llama-7b-sft/preupload/main.',
     'https://github.com/huggingface/huggingface_hub/blob/main/src/huggingface_hub/utils/_http.p y',
     ('user', 'HubAccessDenied', 1, 'hf-hub-repo-not-found')),
    ('hf-hub-create-repo-forbidden',
     'HTTPError: 403 Client Error: Forbidden for url: https://huggingface.co/api/repos/create',
     'https://github.com/huggingface/deep-rl-class/issues/190',
     ('user', 'HubAccessDenied', 1, 'hf-hub-create-repo-forbidden')),
    ('obs-server-error',
     '2024-05-20 10:11:12,345|process:1234|thread:139872|ERROR|HTTP(s)+XML|exceptional obs '
     'response:status:503,reason:Service Unavailable,code:ServiceUnavailable,message:Service '
     'Unavailable,requestId:00000190A1B2C3D4E5F6071829304A5B|',
     'https://github.com/huaweicloud/huaweicloud-sdk-python-obs/blob/master/src/obs/client.py',
     ('storage', 'StorageUnavailable', 1, 'obs-server-error')),
    ('gcs-rate-limited',
     'TooManyRequests: 429 POST '
     'https://storage.googleapis.com/upload/storage/v1/b/<bucket>/o?uploadType=multipart: {',
     'https://github.com/bespokelabsai/curator/issues/665',
     ('storage', 'StorageThrottled', 1, 'gcs-rate-limited')),
    ('s3-slow-down',
     'boto3.exceptions.S3UploadFailedError: Failed to upload '
     '/tmp/tmpn7sa44l2/26aecfcf-aa70-4385-951a-0ab28f00bf8c to '
     'data-force-one-datasets/mosaicml-internal-checkpoints/jacob/lora/atnmlp-r16-lr0.0001-mlp-e '
     'p-4-a-32-sd-17/ep1-ba193-rank0.pt: An error occurred (SlowDown) when calling the CreateMultipartUpload '
     'operation (reached max retries: 4): Please reduce your request rate.',
     'https://github.com/mosaicml/composer/pull/3543',
     ('storage', 'StorageThrottled', 1, 's3-slow-down')),
    ('azure-storage-throttled',
     'azure.core.exceptions.HttpResponseError: Operations per second is over the account limit.',
     'https://github.com/dotnet/performance/issues/2937',
     ('storage', 'StorageThrottled', 1, 'azure-storage-throttled')),
    ('gcs-server-error',
     'google.api_core.exceptions.ServiceUnavailable: 503 POST '
     'https://storage.googleapis.com/upload/storage/v1/b/my-ckpt-bucket/o?uploadType=resumable: unknown error',
     'https://github.com/googleapis/python-api-core/blob/bfc6651411d3e13867fefe691884940627f9b6b '
     '6/google/api_core/exceptions.py',
     ('storage', 'StorageUnavailable', 1, 'gcs-server-error')),
    ('s3-server-error',
     'An error occurred (InternalError) when calling the UploadPart operation (reached max retries: 2): We '
     'encountered an internal error. Please try again.',
     'https://github.com/red-hat-storage/ocs-ci/issues/2472',
     ('storage', 'StorageUnavailable', 1, 's3-server-error')),
    ('s3-request-timeout',
     'RequestTimeout (client): Your socket connection to the server was not read from or written to within the '
     'timeout period. - <?xml version="1.0" encoding="UTF-8"?>',
     'https://github.com/minio/minio/issues/9295',
     ('storage', 'StorageTimeout', 4, 's3-request-timeout')),
    ('blobfuse2-upload-failed',
     'Mon May 20 10:11:12.345 UTC 2024 : blobfuse2[2841] : [/mnt/blobckpt] LOG_ERR [block_blob.go (1195)]: '
     'BlockBlob::WriteFromFile : Failed to upload blob checkpoints/step_1000/model.pt [context deadline '
     'exceeded]',
     'https://github.com/Azure/azure-storage-fuse/blob/main/component/azstorage/block_blob.go',
     ('storage', 'WriteFailed', 1, 'blobfuse2-upload-failed')),
    ('juicefs-upload-failed',
     '2024/05/20 10:11:12.345678 juicefs[12345] <ERROR>: upload inode: 8812 chunk: 1043 (length: 4194304) fail: '
     'put chunks/0/1/1043_0_4194304: context deadline exceeded [flushData@writer.go:123]',
     'https://github.com/juicedata/juicefs/blob/main/pkg/vfs/writer.go',
     ('storage', 'WriteFailed', 1, 'juicefs-upload-failed')),
    ('lustre-client-evicted',
     'LustreError: 167-0: lustre-OST0002-osc-ffff9d6153c91000: This client was evicted by lustre-OST0002; in '
     'progress operations using this service will fail.',
     'https://github.com/lustre/lustre-release/blob/master/lustre/ptlrpc/import.c',
     ('storage', 'VolumeIOError', 1, 'lustre-client-evicted')),
    ('lustre-target-connection-lost',
     '[87885.624991] Lustre: DIAS-OST0001-osc-ffff9d6153c91000: Connection to DIAS-OST0001 (at '
     '192.168.14.178@tcp) was lost; in progress operations using this service will wait for recovery to '
     'complete',
     'https://github.com/gmagklaras/lustre-hpc-test-setup/blob/4577821f39ec2ca7305f1b6b41a673d57 '
     'd89b0da/doc/simulate-an-OST-OSS-failure.md',
     ('storage', 'StorageUnavailable', 4, 'lustre-target-connection-lost')),
    ('nfs-server-not-responding',
     '[  207.955868] nfs: server 10.100.0.60 not responding, still trying',
     'https://github.com/torvalds/linux/blob/master/net/sunrpc/clnt.c',
     ('storage', 'StorageUnavailable', 1, 'nfs-server-not-responding')),
    ('fuse-mount-disconnected',
     "OSError: [Errno 107] Transport endpoint is not connected: '/mnt/gcs/checkpoints/step_2000'",
     'https://man7.org/linux/man-pages/man3/errno.3.html',
     ('storage', 'VolumeMissing', 1, 'fuse-mount-disconnected')),
    ('fs-client-shut-out',
     "OSError: [Errno 108] Cannot send after transport endpoint shutdown: '/lustre/ckpt/step_2000/model.pt'",
     'https://man7.org/linux/man-pages/man3/errno.3.html',
     ('storage', 'VolumeIOError', 1, 'fs-client-shut-out')),
    ('safetensors-truncated-file',
     'safetensors_rust.SafetensorError: Error while deserializing header: MetadataIncompleteBuffer',
     'https://github.com/huggingface/safetensors/blob/main/bindings/python/src/lib.rs',
     ('storage', 'CheckpointUnreadable', 4, 'safetensors-truncated-file')),
    ('hf-hub-rate-limited',
     'requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: '
     'https://huggingface.co/api/datasets/tarteel-ai/tawseem/commit/main',
     'https://github.com/huggingface/datasets/issues/6392',
     ('unknown', 'ExternalServiceError', 4, 'hf-hub-rate-limited')),
]

# The host kernel's own messages (the OOM killer, machine checks, EDAC, APEI, PCIe AER, block and filesystem
# errors, mlx5).
HOST_KERNEL = [
    ('kernel-oom-kill-process-legacy',
     '[35881895.791331] Out of memory: Kill process 21518 (python2) score 752 or sacrifice child',
     'https://github.com/alibaba-archive/alicloud-duplicity/issues/3',
     ('oom', 'HostOOM', 1, 'kernel-oom-kill-process-legacy')),
    ('kernel-oom-killed-process-summary',
     '[35881895.792304] Killed process 21518 (python2) total-vm:13345928kB, anon-rss:12721928kB, file-rss:4kB',
     'https://github.com/alibaba-archive/alicloud-duplicity/issues/3',
     ('oom', 'HostOOM', 1, 'kernel-oom-killed-process-summary')),
    ('kernel-oom-killer-invoked',
     '[Wed Dec  6 23:54:11 2017] java invoked oom-killer: gfp_mask=0xd0, order=0, oom_score_adj=-998',
     'https://github.com/kubernetes/kubernetes/issues/56891',
     ('oom', 'HostOOM', 1, 'kernel-oom-killer-invoked')),
    ('kernel-oom-kill-report',
     'kernel: oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=cri-containerd-ec9ee26695deb4c '
     'c72bc665efff1cf3a03fdfb12f1303e02fe9252985e084a95.scope,mems_allowed=0-1,oom_memcg=/lxc.pa '
     'yload....-lxc/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-podeded8c65_6e8e_ '
     '4c6e_a889_3e427565c740.slice,task_memcg=/lxc.payload.ny2g2r5hh3-lxc/kubepods.slice/kubepod '
     's-burstable.slice/kubepods-burstable-podeded8c65_6e8e_4c6e_a889_3e427565c740.slice/cri-con '
     'tainerd-ec9ee26695deb4cc72bc665efff1cf3a03fdfb12f1303e02fe9252985e084a95.scope,task=pt_mai '
     'n_thread,pid=461754,uid=0',
     'https://github.com/leptonai/gpud/pull/70',
     ('oom', 'HostOOM', 1, 'kernel-oom-kill-report')),
    ('kernel-oom-panic',
     'Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled',
     'https://github.com/torvalds/linux/blob/master/mm/oom_kill.c',
     ('oom', 'HostOOM', 1, 'kernel-oom-panic')),
    ('kernel-mce-uncorrected',
     '[   84.977164] mce: [Hardware Error]: CPU 0: Machine Check Exception: 4 Bank 0: b200000080060001',
     'https://github.com/microsoft/WSL/issues/41659',
     ('node', 'MachineCheck', 1, 'kernel-mce-uncorrected')),
    ('kernel-memory-failure-poison',
     '[   77.633611] Memory failure: 0x7e025e: Sending SIGBUS to einj_mem_uc:12283 due to hardware memory '
     'corruption',
     'https://lore.kernel.org/all/20210812152548.GA1579021@agluck-desk2.amr.corp.intel.com/',
     ('node', 'HostMemoryUncorrectable', 1, 'kernel-memory-failure-poison')),
    ('kernel-edac-uncorrected',
     '[   77.633608] EDAC MC3: 1 UE memory read error on CPU_SrcID#0_MC#3_Chan#0_DIMM#0 (channel:0 slot:0 '
     'page:0x7e025e offset:0x400 grain:32 -  err_code:0x00a0:0x0090  SystemAddress:0x7e025e400 '
     'ProcessorSocketId:0x0 MemoryControllerId:0x3 ChannelAddress:0xec04bc00 ChannelId:0x0 '
     'RankAddress:0x76025c00 PhysicalRankId:0x1 DimmSlotId:0x0 Row:0x3b01 Column:0x380 Bank:0x0 BankGroup:0x2 '
     'ChipSelect:0x1 ChipId:0x0)',
     'https://lore.kernel.org/all/20210812152548.GA1579021@agluck-desk2.amr.corp.intel.com/',
     ('node', 'HostMemoryUncorrectable', 1, 'kernel-edac-uncorrected')),
    ('kernel-apei-fatal-hardware-error',
     '[    2.345575] [Hardware Error]: event severity: fatal',
     'https://github.com/yangxiaohua2009/custom-kernel/issues/6',
     ('node', 'FatalHardwareError', 1, 'kernel-apei-fatal-hardware-error')),
    ('kernel-pcie-aer-fatal-gpu',
     "[  +0.000844] nvidia 0000:03:00.0: AER: can't recover (no error_detected callback)",
     'https://github.com/rwth-i6/returnn/issues/1500',
     ('device', 'GpuPcieFatal', 1, 'kernel-pcie-aer-fatal-gpu')),
    ('kernel-pcie-aer-fatal',
     '[  +0.000004] pcieport 0000:00:03.0: PCIe Bus Error: severity=Uncorrected (Fatal), type=Transaction '
     'Layer, (Requester ID)',
     'https://github.com/rwth-i6/returnn/issues/1500',
     ('node', 'PcieFatalError', 1, 'kernel-pcie-aer-fatal')),
    ('kernel-nfs-server-not-responding',
     '[1576939.453001] nfs: server 100.73.159.36 not responding, still trying',
     'https://github.com/nfs-ganesha/nfs-ganesha/issues/1295',
     ('storage', 'StorageUnavailable', 1, 'nfs-server-not-responding')),
    ('kernel-block-io-error',
     '[  415.118808] blk_update_request: I/O error, dev nvme1n1, sector 823872 op 0x0:(READ) flags 0x80700 '
     'phys_seg 1 prio class 0',
     'https://github.com/oxidecomputer/crucible/issues/408',
     ('storage', 'VolumeIOError', 1, 'kernel-block-io-error')),
    ('kernel-ext4-error',
     "[29821.550114] EXT4-fs error (device mmcblk0p2): ext4_evict_inode:292: comm rm: couldn't truncate inode "
     '11376 (err -5)',
     'https://github.com/MichaIng/DietPi/issues/2353',
     ('storage', 'VolumeIOError', 1, 'kernel-ext4-error')),
    ('kernel-fs-remounted-read-only',
     'EXT4-fs (sda1): Remounting filesystem read-only',
     'https://github.com/torvalds/linux/blob/master/fs/ext4/super.c',
     ('storage', 'ReadOnlyVolume', 1, 'kernel-fs-remounted-read-only')),
    ('kernel-xfs-io-error-shutdown',
     '109.200.197.196: kern:   alert: [2024-05-13T15:13:11.99476118Z]: XFS (sdb6): log I/O error -5',
     'https://github.com/siderolabs/talos/pull/8733',
     ('storage', 'VolumeIOError', 1, 'kernel-xfs-io-error-shutdown')),
    ('kernel-mlx5-link-down',
     'mlx5_core 0000:3b:00.0 ens1f0np0: Link down',
     'https://github.com/torvalds/linux/blob/master/drivers/net/ethernet/mellanox/mlx5/core/en_m ain.c',
     ('interconnect', 'NicLinkDown', 1, 'kernel-mlx5-link-down')),
    ('kernel-mlx5-port-module-error',
     'mlx5_port_module_event:1131:(pid 0): Port module event[error]: module 0, Cable error, High Temperature',
     'https://github.com/leptonai/gpud/blob/main/components/accelerator/nvidia/infiniband/kmsg_m atcher.go',
     ('interconnect', 'NicTransceiverError', 1, 'kernel-mlx5-port-module-error')),
    ('kernel-mlx5-cable-unplugged',
     'mlx5_core 0000:12:00.0: Port module event: module 0, Cable unplugged',
     'https://github.com/KaivalyaMDabhadkar/NVSentinel/blob/1852f7648ceb7e8afd1cc2083783eac3bc3a '
     'e1cd/docs/nic-health-monitor/syslog-detection-correlation.md',
     ('unknown', 'NicCableUnplugged', 4, 'kernel-mlx5-cable-unplugged')),
    ('kernel-mlx5-health-fatal',
     "[  445.937186] mlx5_core 0000:0d:00.0: poll_health:801:(pid 0): device's health compromised - reached "
     'miss count',
     'https://lore.kernel.org/all/m7p7ubuyfhqxhcxqt4qs6rbi24pgxtnbq52maqpdom2da75g7e@laluifinseg p/',
     ('interconnect', 'NicFirmwareFailure', 1, 'kernel-mlx5-health-fatal')),
    ('kernel-panic-generic',
     'May  5 12:38:12 192.168.122.82 [ 3504.922634] Kernel panic - not syncing: Fatal exception in interrupt',
     'https://github.com/tempesta-tech/tempesta/issues/2653',
     ('unknown', 'KernelPanic', 4, 'kernel-panic-generic')),
]

# Ascend's platform components (Ascend/mind-cluster: Volcano's Ascend plugin, NodeD, the device plugin; hccn_tool;
# the driver).
ASCEND_PLATFORM = [
    ('mindcluster-node-unhealthy',
     '[{"node_name":"node133","task_name":"default-test-pytorch-worker-1","FaultRankList":["8"," '
     '9","10","11","12","13","14","15"],"fault_type":"NodeUnhealthy","npu_name":"","fault_level" '
     ':"PreSeparateNPU","fault_handling":"PreSeparateNPU","large_model_fault_level":"PreSeparate '
     'NPU","fault_code":"heartbeatTimeOut"}]',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-for-volcano/internal/r '
     'escheduling/reschedule.go',
     ('node', 'AscendNodeUnhealthy', 1, 'mindcluster-node-unhealthy')),
    ('volcano-npu-node-unhealthy-log',
     'I0908 11:36:10.214530       1 reschedule.go:1040] task default-test-pytorch-worker-1 use NodeUnhealthy '
     'node node133, thus task sets NodeUnhealthy',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-for-volcano/internal/r '
     'escheduling/reschedule.go',
     ('node', 'AscendNodeUnhealthy', 1, 'volcano-npu-node-unhealthy-log')),
    ('mindcluster-task-card-unhealthy',
     'huawei.com/pod-status: Unhealthy-CardUnhealthy',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-for-volcano/internal/r '
     'escheduling/job.go',
     ('device', 'NpuFaultReport', 1, 'mindcluster-task-card-unhealthy')),
    ('volcano-npu-task-card-unhealthy-log',
     'I0908 11:36:10.214530       1 reschedule.go:1048] task default-test-pytorch-worker-0 use CardUnhealthy '
     'node, thus task sets CardUnhealthy',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-for-volcano/internal/r '
     'escheduling/reschedule.go',
     ('device', 'NpuFaultReport', 1, 'volcano-npu-task-card-unhealthy-log')),
    ('noded-node-unhealthy',
     '{"NodeInfo":{"FaultDevList":[{"DeviceType":"CPU","DeviceId":1,"FaultCode":["00000011"],"Fa '
     'ultLevel":"SeparateFault"}],"NodeStatus":"UnHealthy"},"CheckCode":"3a2934c3cb875f2256c770c '
     '75a6fdf24594fcf64481ac6cd0d0f74b8fea88855"}',
     'https://github.com/Ascend/mind-cluster/blob/master/docs/en/scheduling/references/common_op erations.md',
     ('node', 'AscendNodeHardwareFault', 1, 'noded-node-unhealthy')),
    ('volcano-npu-switch-unhealthy-log',
     'I0908 11:36:10.214530       1 node.go:227] Node[node133] has received unhealthy status from switch',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-for-volcano/internal/r '
     'escheduling/node.go',
     ('interconnect', 'UnifiedBusSwitchFault', 1, 'volcano-npu-switch-unhealthy-log')),
    ('ascend-npu-hot-reset-start',
     'hot reset start, nodeName:node133, ringDevs:0,1,2,3, faultDev:2, tokensLeft:2, time:2026-06-17 10:26:41',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-device-plugin/pkg/plug '
     'in/builtin/reset_record_plugin.go',
     ('device', 'NpuHotReset', 1, 'ascend-npu-hot-reset-start')),
    ('ascend-npu-reset-failed',
     '[ERROR]    2026/06/17 10:29:12.512390 17      device/ascend910.go:1229    hot reset failed, timeout or '
     'err: wait device reset recover timeout, logic id: 2',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-device-plugin/pkg/devi '
     'ce/ascend910.go',
     ('device', 'NpuResetFailed', 1, 'ascend-npu-reset-failed')),
    ('ascend-device-plugin-chip-isolated',
     '[INFO]     2026/06/17 10:31:02.381920 17      device/ascendcommon.go:407    '
     'configmap/ManuallySeparateNPU:[Ascend910-2] are unhealthy',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-device-plugin/pkg/devi '
     'ce/ascendcommon.go',
     ('device', 'NpuIsolated', 1, 'ascend-device-plugin-chip-isolated')),
    ('ascend-device-plugin-card-drop',
     '[INFO]     2026/06/17 10:20:11.502113 17      device/ascendcommon.go:1656    generate card drop occur '
     'fault event',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-device-plugin/pkg/devi '
     'ce/ascendcommon.go',
     ('device', 'NpuCardDropped', 1, 'ascend-device-plugin-card-drop')),
    ('hccn-tool-link-down',
     'link status: DOWN',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-common/devmanager/hccn /hccn_tool.go',
     ('interconnect', 'NpuPortLinkDown', 1, 'hccn-tool-link-down')),
    ('hccn-tool-net-health',
     'net health status: Fault',
     'https://github.com/Ascend/mind-cluster/blob/master/docs/en/scheduling/usage/resumable_trai '
     'ning/07_using_resumable_training_on_the_cli.md',
     ('interconnect', 'NpuNetHealthFault', 1, 'hccn-tool-net-health')),
    ('hccn-tool-optical-los',
     'Rx Los Flag          : 0xff',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-faultdiag/test/st_modu '
     'le_testcase/kg_parse/npu_info_before.txt',
     ('interconnect', 'NpuOpticalSignalLost', 1, 'hccn-tool-optical-los')),
    ('ascend-driver-heartbeat-lost',
     'Aug  1 08:38:31 localhost kernel: [ 1197.584409] [ascend] [ERROR] [drv_soft_fault] [heart_beat_judge 318] '
     '<kworker/5:1H:39365> Heartbeat lost! (device=1; old_count=1104; new_count=1104; lost_count=4; '
     'total_lost_count=4; total_10s_count=0; total_15s_count 0).',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-faultdiag/test/st_modu '
     'le_testcase/kg_parse/messages_0x40F84E00',
     ('device', 'NpuHeartbeatLost', 1, 'ascend-driver-heartbeat-lost')),
    ('hccl-heartbeat-cqe-err-legacy',
     '[ERROR] HCCL(12339,python):2023-07-04-22:15:59.592.125 [heartbeat.cc:551][12339][283607][Heartbeat]cqe '
     'err status[12], time:[2023-07-04 22:15:59.095392], ip:[192.2.108.0]',
     'https://github.com/Ascend/mind-cluster/blob/master/component/ascend-faultdiag/test/st_cqe_ '
     'testcase/modelarts-job-testdt/ascend/process_log/rank_77/debug/plog/plog-12339_20230704214 646088.log',
     ('interconnect', 'RdmaRetryExceeded', 1, 'hccl-heartbeat-cqe-err-legacy')),
    ('torch-npu-ub-link-error',
     'getRepoStopFlag in Run, throw UB LINK ERROR.',
     'https://github.com/Ascend/pytorch/blob/master/torch_npu/csrc/core/npu/NPUException.cpp',
     ('interconnect', 'HcclLinkError', 1, 'torch-npu-ub-link-error')),
]

# AMD's ROCm, HIP and amdgpu (ROCm/clr, ROCR-Runtime, rocBLAS, the kernel), and native crashes as glibc, libstdc++,
# CPython's faulthandler, bash and the kernel print them.
ROCM_AND_NATIVE_CRASHES = [
    ('hip-invalid-device-function',
     'RuntimeError: HIP error: invalid device function',
     'https://github.com/ROCm/clr/blob/f9f995c6d0aecec28debd3db0f41df0c15ec003d/hipamd/src/hip_e rror.cpp',
     ('user', 'HipImageMismatch', 1, 'hip-invalid-device-function')),
    ('hip-no-binary-for-gpu',
     ':1:hip_code_object.cpp      :571 : 1409315497 us:  hipErrorNoBinaryForGpu: Unable to find code object for '
     'all current devices!',
     'https://github.com/ROCm/clr/blob/f9f995c6d0aecec28debd3db0f41df0c15ec003d/hipamd/src/hip_c ode_object.cpp',
     ('user', 'HipImageMismatch', 1, 'hip-no-binary-for-gpu')),
    ('rocblas-tensile-library-missing',
     'rocBLAS error: Cannot read /opt/rocm/lib/rocblas/library/TensileLibrary.dat: No such file or directory '
     'for GPU arch : gfx1031',
     'https://github.com/ROCm/rocBLAS/blob/b520bc83fa67045bed4544f33ba83ce3a7c39c44/library/src/ '
     'tensile_host.cpp',
     ('user', 'HipImageMismatch', 1, 'rocblas-tensile-library-missing')),
    ('hip-no-device',
     'RuntimeError: HIP error: no ROCm-capable device is detected',
     'https://github.com/ROCm/clr/blob/f9f995c6d0aecec28debd3db0f41df0c15ec003d/hipamd/src/hip_e rror.cpp',
     ('unknown', 'NoVisibleDevices', 1, 'hip-no-device')),
    ('rocr-memory-access-fault-ecc',
     'Memory access fault by GPU node-2 (Agent handle: 0x55d8c3a1f2b0) on address 0x7f1a2c000000. Reason: DRAM '
     'ECC failure.',
     'https://github.com/ROCm/ROCR-Runtime/blob/c7785a6da1c10c25bc8d527c00b1fe79bfbd84c9/runtime '
     '/hsa-runtime/core/runtime/runtime.cpp',
     ('device', 'GpuMemoryUncorrectable', 1, 'rocr-memory-access-fault-ecc')),
    ('rocr-gpu-hang',
     'HW Exception by GPU node-1 (Agent handle: 0x5616a2d0e3c0) reason :GPU Hang',
     'https://github.com/ROCm/ROCR-Runtime/blob/c7785a6da1c10c25bc8d527c00b1fe79bfbd84c9/runtime '
     '/hsa-runtime/core/runtime/runtime.cpp',
     ('unknown', 'GpuHang', 1, 'rocr-gpu-hang')),
    ('rocr-memory-access-fault',
     'Memory access fault by GPU node-4 (Agent handle: 0x55f1d6a0d2e0) on address 0x7f2f6c4e1000. Reason: Page '
     'not present or supervisor privilege.',
     'https://github.com/ROCm/ROCR-Runtime/blob/c7785a6da1c10c25bc8d527c00b1fe79bfbd84c9/runtime '
     '/hsa-runtime/core/runtime/runtime.cpp',
     ('unknown', 'GpuMemoryAccessFault', 1, 'rocr-memory-access-fault')),
    ('hsa-queue-memory-violation',
     ':0:rocdevice.cpp            :2999: 2357191104 us:  Callback: Queue 0x7f3b54600000 aborting with error : '
     'HSA_STATUS_ERROR_MEMORY_APERTURE_VIOLATION: The agent attempted to access memory beyond the largest legal '
     'address. code: 0x29',
     'https://github.com/ROCm/clr/blob/f9f995c6d0aecec28debd3db0f41df0c15ec003d/rocclr/device/ro '
     'cm/rocdevice.cpp',
     ('unknown', 'GpuMemoryAccessFault', 1, 'hsa-queue-memory-violation')),
    ('hsa-queue-hardware-exception',
     ':0:rocdevice.cpp            :2999: 4072934201 us:  Callback: Queue 0x7f9e4c400000 aborting with error : '
     'HSA_STATUS_ERROR_EXCEPTION: An HSAIL operation resulted in a hardware exception. code: 0x1016',
     'https://github.com/ROCm/ROCR-Runtime/blob/c7785a6da1c10c25bc8d527c00b1fe79bfbd84c9/runtime '
     '/hsa-runtime/core/runtime/hsa.cpp',
     ('unknown', 'GpuKernelFault', 1, 'hsa-queue-hardware-exception')),
    ('hsa-queue-out-of-scratch',
     ':0:rocdevice.cpp            :2995: 0810459871 us:  Callback: Queue 0x7fd1a8200000 Aborting with error : '
     'HSA_STATUS_ERROR_OUT_OF_RESOURCES: The runtime failed to allocate the necessary resources. This error may '
     'also occur when the core runtime library needs to spawn threads or create internal OS-specific events. '
     'Code: 0x1008 Available Free mem : 12 MB',
     'https://github.com/ROCm/clr/blob/f9f995c6d0aecec28debd3db0f41df0c15ec003d/rocclr/device/ro '
     'cm/rocdevice.cpp',
     ('oom', 'DeviceOOM', 4, 'hsa-queue-out-of-scratch')),
    ('amdgpu-ras-uncorrectable',
     'amdgpu 0000:c1:00.0: amdgpu: 2 uncorrectable hardware errors detected in umc block',
     'https://github.com/torvalds/linux/blob/v6.1/drivers/gpu/drm/amd/amdgpu/amdgpu_ras.c',
     ('device', 'GpuMemoryUncorrectable', 1, 'amdgpu-ras-uncorrectable')),
    ('amdgpu-ras-bad-page-threshold',
     'amdgpu 0000:c1:00.0: amdgpu: RAS records:130 exceed threshold:128, GPU will not be initialized. Replace '
     'this GPU or increase the threshold',
     'https://github.com/torvalds/linux/blob/v6.1/drivers/gpu/drm/amd/amdgpu/amdgpu_ras_eeprom.c',
     ('device', 'GpuRetiredPagesExceeded', 1, 'amdgpu-ras-bad-page-threshold')),
    ('amdgpu-gpu-reset-failed',
     'amdgpu 0000:c1:00.0: amdgpu: GPU reset(3) failed',
     'https://github.com/torvalds/linux/blob/v6.1/drivers/gpu/drm/amd/amdgpu/amdgpu_device.c',
     ('device', 'GpuResetFailed', 1, 'amdgpu-gpu-reset-failed')),
    ('amdgpu-ring-timeout',
     '[drm:amdgpu_job_timedout [amdgpu]] *ERROR* ring comp_1.0.0 timeout, signaled seq=7778, emitted seq=7780',
     'https://github.com/torvalds/linux/blob/v6.1/drivers/gpu/drm/amd/amdgpu/amdgpu_job.c',
     ('unknown', 'GpuHang', 1, 'amdgpu-ring-timeout')),
    ('amdgpu-gpu-reset',
     'amdgpu 0000:c1:00.0: amdgpu: GPU reset begin!',
     'https://github.com/torvalds/linux/blob/v6.1/drivers/gpu/drm/amd/amdgpu/amdgpu_device.c',
     ('unknown', 'GpuReset', 1, 'amdgpu-gpu-reset')),
    ('amdgpu-vm-page-fault',
     'amdgpu 0000:c1:00.0: amdgpu: [gfxhub0] no-retry page fault (src_id:0 ring:24 vmid:8 pasid:32771)',
     'https://github.com/torvalds/linux/blob/v6.1/drivers/gpu/drm/amd/amdgpu/gmc_v9_0.c',
     ('unknown', 'GpuMemoryAccessFault', 1, 'amdgpu-vm-page-fault')),
    ('glibc-double-free',
     'double free or corruption (!prev)',
     'https://github.com/bminor/glibc/blob/04e750e75b73957cf1c791535a3f4319534a52fc/malloc/mallo c.c',
     ('unknown', 'HeapCorruption', 4, 'glibc-double-free')),
    ('glibc-invalid-free',
     'free(): invalid pointer',
     'https://github.com/bminor/glibc/blob/04e750e75b73957cf1c791535a3f4319534a52fc/malloc/mallo c.c',
     ('unknown', 'HeapCorruption', 4, 'glibc-invalid-free')),
    ('glibc-heap-corrupted',
     'corrupted size vs. prev_size',
     'https://github.com/bminor/glibc/blob/04e750e75b73957cf1c791535a3f4319534a52fc/malloc/mallo c.c',
     ('unknown', 'HeapCorruption', 4, 'glibc-heap-corrupted')),
    ('glibc-fortify-abort',
     '*** stack smashing detected ***: terminated',
     'https://github.com/bminor/glibc/blob/04e750e75b73957cf1c791535a3f4319534a52fc/debug/fortif y_fail.c',
     ('unknown', 'MemoryCorruption', 4, 'glibc-fortify-abort')),
    ('cxx-bad-alloc',
     "terminate called after throwing an instance of 'std::bad_alloc'",
     'https://github.com/gcc-mirror/gcc/blob/master/libstdc%2B%2B-v3/libsupc%2B%2B/vterminate.cc',
     ('oom', 'HostOOM', 4, 'cxx-bad-alloc')),
    ('cxx-terminate',
     "terminate called after throwing an instance of 'c10::Error'",
     'https://github.com/gcc-mirror/gcc/blob/master/libstdc%2B%2B-v3/libsupc%2B%2B/vterminate.cc',
     ('unknown', 'UncaughtCppException', 4, 'cxx-terminate')),
    ('python-faulthandler-fatal-signal',
     'Fatal Python error: Segmentation fault',
     'https://github.com/python/cpython/blob/3.11/Modules/faulthandler.c',
     ('unknown', 'NativeCrash', 4, 'python-faulthandler-fatal-signal')),
    ('shell-segmentation-fault',
     'train.sh: line 12: 28860 Segmentation fault      (core dumped) python3 train.py --config cfg.yaml',
     'https://github.com/bminor/bash/blob/637f5c8696a6adc9b4519f1cd74aa78492266b7f/jobs.c',
     ('unknown', 'Segfault', 4, 'shell-segmentation-fault')),
    ('shell-bus-error',
     'train.sh: line 12: 28921 Bus error               (core dumped) python3 train.py',
     'https://github.com/bminor/bash/blob/637f5c8696a6adc9b4519f1cd74aa78492266b7f/jobs.c',
     ('unknown', 'BusError', 4, 'shell-bus-error')),
    ('illegal-instruction',
     'train.sh: line 12: 29047 Illegal instruction     (core dumped) python3 train.py',
     'https://github.com/bminor/bash/blob/637f5c8696a6adc9b4519f1cd74aa78492266b7f/jobs.c',
     ('unknown', 'IllegalInstruction', 4, 'illegal-instruction')),
    ('shell-floating-point-exception',
     'train.sh: line 12: 29088 Floating point exception(core dumped) python3 train.py',
     'https://github.com/bminor/bash/blob/637f5c8696a6adc9b4519f1cd74aa78492266b7f/jobs.c',
     ('unknown', 'FloatingPointException', 4, 'shell-floating-point-exception')),
    ('shell-aborted',
     'bash: line 1: 31870 Aborted                 ./train_native',
     'https://github.com/bminor/bash/blob/637f5c8696a6adc9b4519f1cd74aa78492266b7f/jobs.c',
     ('unknown', 'Aborted', 4, 'shell-aborted')),
    ('shell-killed',
     'train.sh: line 12: 28962 Killed                  python3 train.py',
     'https://github.com/bminor/bash/blob/637f5c8696a6adc9b4519f1cd74aa78492266b7f/jobs.c',
     ('unknown', 'Killed', 4, 'shell-killed')),
    ('kernel-user-segfault',
     'python3[28860]: segfault at 0 ip 00007f3c5a2f1e2d sp 00007ffd2a9c1d58 error 4 in '
     'libc.so.6[7f3c5a27c000+155000] likely on CPU 3 (core 3, socket 0)',
     'https://github.com/torvalds/linux/blob/v6.1/arch/x86/mm/fault.c',
     ('unknown', 'Segfault', 4, 'kernel-user-segfault')),
    ('kernel-user-trap',
     'traps: python3[41230] general protection fault ip:7f8b1c2d3e4f sp:7ffc9a8b7c60 error:0 in '
     'libtorch_cpu.so[7f8b0a000000+1c000000]',
     'https://github.com/torvalds/linux/blob/v6.1/arch/x86/kernel/traps.c',
     ('unknown', 'NativeCrash', 4, 'kernel-user-trap')),
]

CASES = JOB_RUNNERS + CONTROLLERS + NCCL + HCCL + STORAGE_CLIENTS + HOST_KERNEL + ASCEND_PLATFORM + ROCM_AND_NATIVE_CRASHES


@pytest.mark.parametrize(("line", "seen_at", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_components_own_words(line: str, seen_at: str, expected: tuple[str, str, int, str]) -> None:
    reading = read_log(line)
    assert reading is not None and reading.entry is not None, seen_at
    assert (reading.fault_class.value, reading.reason, reading.rule, reading.entry.signature.id) == expected, seen_at
