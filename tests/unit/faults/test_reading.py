"""How a log is read (tandem.faults.reading), case by case: each case is a real text (or real lines joined, the
source named) and the whole decision: class, reason, the rule of the reading order that decided, and the table
entry that did (None where no entry decided)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tandem.faults import read_log

NCCL_ROCE_INFO = "node1:5330:7970 [3] NCCL INFO NET/IB : Using [0]mlx5_0:1/RoCE [RO]; OOB eth0:10.0.0.1<0>"
USER_TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "/app/train.py", line 40, in <module>\n'
    "    main()\n"
    '  File "/app/train.py", line 31, in main\n'
    '    raise RuntimeError(f"bad batch at step {step}")\n'
    "RuntimeError: bad batch at step 7\n"
)
LIBRARY_RUNTIME_ERROR = (
    "Traceback (most recent call last):\n"
    '  File "/app/train.py", line 40, in <module>\n'
    "    ds = load_dataset(name)\n"
    '  File "/usr/lib/python3.11/site-packages/datasets/load.py", line 1820, in load_dataset\n'
    '    raise RuntimeError("Dataset scripts are no longer supported")\n'
    "RuntimeError: Dataset scripts are no longer supported\n"
)

# nvidia-smi -q of a GPU whose memory is sound (the layout of leptonai/gpud#80, no rows remapped).
HEALTHY_REMAPPED_ROWS = ("    Remapped Rows\n        Correctable Error                 : 0\n"
                         "        Uncorrectable Error               : 0\n"
                         "        Pending                           : No")

# (id, text, source, (class, reason, rule, entry id))
CASES = [
    # --- the false positives: words in output are not evidence ------------------------------------------
    ("roce-info-above-a-plain-exception", f"{NCCL_ROCE_INFO}\n{LIBRARY_RUNTIME_ERROR}",
     "https://github.com/NVIDIA/nccl/issues/302 (the INFO line), huggingface/datasets (the exception)",
     ("unknown", "RuntimeError", 5, None)),
    ("connection-reset-in-a-download",
     "Hi, The following error occurred when I downloaded the dataset\uff1a ConnectionResetError: [Errno 104] "
     "Connection reset by peer", "https://github.com/ondyari/FaceForensics/issues/79",
     ("unknown", "PeerConnectionLost", 4, "peer-connection-lost")),
    # --- where an error was raised: EIO inside a save is the volume's, in a data read it proves nothing -------------
    ("eio-closing-a-torch-save",
     '    torch.save(net.state_dict(), os.path.join(save_dir, "params.pth"))\n'
     '  File "/anaconda/envs/x/lib/python3.7/site-packages/torch/serialization.py", line 328, in save\n'
     "    _legacy_save(obj, opened_file, pickle_module, pickle_protocol)\n"
     '  File "/anaconda/envs/x/lib/python3.7/site-packages/torch/serialization.py", line 196, in __exit__\n'
     "    self.file_like.close()\nOSError: [Errno 5] Input/output error",
     "https://github.com/pytorch/pytorch/issues/48580", ("storage", "VolumeIOError", 1, "volume-io-error-in-a-save")),
    ("eio-reading-a-sample",
     "Traceback (most recent call last):\n"
     '  File "/content/drive/SEGAN/data_generator.py", line 56, in __getitem__\n'
     "    pair = np.load(self.filepaths[idx])\n"
     '  File "/usr/local/lib/python3.6/dist-packages/numpy/lib/npyio.py", line 404, in load\n'
     "    magic = fid.read(N)\nOSError: [Errno 5] Input/output error",
     "https://github.com/dansuh17/segan-pytorch/issues/19", ("unknown", "OSError", 5, None)),
    # --- the pod's own limits are the job's: its ephemeral storage, its /dev/shm ----------------------------------
    ("read-only-file-system-at-the-root-may-be-a-missing-volume",
     "(WorkerDict pid=42225, ip=10.200.109.93) Warning: Failed to acquire lock for /fsx/mingyuan/verify/3B_V2/"
     "global_step_1/actor: [Errno 30] Read-only file system: '/fsx'", "https://github.com/verl-project/verl/issues/3354",
     ("storage", "ReadOnlyVolume", 1, "read-only-volume")),
    ("read-only-file-system-inside-a-volume",
     "OSError: [Errno 30] Read-only file system: '/checkpoints/step-300/model.pt'",
     "https://man7.org/linux/man-pages/man3/errno.3.html (EROFS)",
     ("storage", "ReadOnlyVolume", 1, "read-only-volume")),
    ("tensorflow-could-not-write-its-checkpoint",
     "InternalError (see above for traceback): Error writing (tmp) checkpoint file: /home/u/.local/share/deepspeech_wer"
     "/checkpoint/205aed8/model.ckpt-6.tempstate97841913219", "https://github.com/mozilla/DeepSpeech/issues/374",
     ("storage", "WriteFailed", 1, "checkpoint-write-failed")),
    ("kubectl-shows-pods-of-a-node-that-shut-down",
     "pod/shutdown-test-deploy-69cff7d9b7-bvzj9   0/1     Shutdown   0          4m20s   <none>        "
     "yp-test2-worker-0dd0512820d9", "https://github.com/kubernetes/kubernetes/issues/100184",
     ("node", "NodeShutdown", 1, "node-shutdown")),
    ("evicted-for-its-own-ephemeral-storage-limit",
     "  Warning  Evicted              60s                kubelet            Pod ephemeral local storage usage exceeds "
     "the total limit of containers 100Gi.", "https://github.com/substratusai/runbooks/issues/246",
     ("user", "EphemeralStorageLimit", 1, "ephemeral-storage-limit")),
    ("dataloader-shared-memory-full",
     '  File "/opt/conda/lib/python3.10/site-packages/torch/storage.py", line 374, in _share_fd_cpu_\n'
     "    return super()._share_fd_cpu_(*args, **kwargs)\n"
     "RuntimeError: unable to write to file </torch_8226_3581395585_0>: No space left on device (28)",
     "https://github.com/MIC-DKFZ/nnUNet/issues/2162", ("user", "ShmTooSmall", 1, "shared-memory-too-small")),
    # --- the references' texts (NVIDIA's, PyTorch's, the frameworks' own sources) --------------------------------
    ("cuda-in-a-forked-subprocess",
     "RuntimeError: Cannot re-initialize CUDA in forked subprocess. To use CUDA with multiprocessing, you must use "
     "the 'spawn' start method", "https://github.com/pytorch/pytorch/blob/main/torch/cuda/__init__.py (the wording)",
     ("user", "ProgramError", 1, "torch-program-error")),
    ("a-kernel-without-the-dtype",
     "RuntimeError: \"addmm_impl_cpu_\" not implemented for 'Half'",
     "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/Dispatch.h (the wording)",
     ("user", "ProgramError", 1, "torch-program-error")),
    ("an-index-out-of-bounds",
     "IndexError: index 10 is out of bounds for dimension 0 with size 10",
     "https://github.com/pytorch/pytorch/blob/main/aten/src/ATen/native/TensorShape.cpp (the wording)",
     ("user", "ProgramError", 1, "torch-program-error")),
    ("a-git-lfs-pointer-where-the-weights-should-be",
     "_pickle.UnpicklingError: invalid load key, 'v'.",
     "https://github.com/git-lfs/git-lfs/blob/main/docs/spec.md (a pointer file starts with 'version')",
     ("user", "NotACheckpoint", 1, "not-a-checkpoint-file")),
    ("a-script-that-is-not-there",
     "python3: can't open file '/app/train.py': [Errno 2] No such file or directory",
     "https://github.com/python/cpython/blob/main/Modules/main.c (the wording)",
     ("user", "CommandNotFound", 1, "command-not-found")),
    ("code-torch-compile-cannot-trace",
     "torch._dynamo.exc.Unsupported: call_function BuiltinVariable(setattr) [TensorVariable()] {}",
     "https://github.com/pytorch/pytorch/blob/main/torch/_dynamo/exc.py (the class)",
     ("user", "ProgramError", 1, "torch-program-error")),
    ("nccl-invalid-argument-in-older-torch-words",
     "RuntimeError: NCCL error in: ../torch/csrc/distributed/c10d/NCCLUtils.hpp:219, invalid argument, "
     "NCCL version 2.14.3", "https://github.com/pytorch/pytorch/blob/v1.13.0/torch/csrc/distributed/c10d/NCCLUtils.hpp",
     ("user", "NcclInvalidUsage", 1, "nccl-invalid-usage")),
    ("a-hydra-override-that-matches-nothing",
     "hydra.errors.ConfigCompositionException: Could not override 'trainer.lr'. No match in config.",
     "https://github.com/facebookresearch/hydra/blob/main/hydra/errors.py (the class)",
     ("user", "PythonException", 2, None)),
    ("a-spot-instance-taken-back",
     '18:32:36.273 [i-01f7ddd103dc478c0/cloud-init-output] {"level":"warn","time":"2025-03-31T16:32:36Z",'
     '"message":"Instance is going to be interrupted in 2 minutes. Exiting..."}',
     "https://github.com/runs-on/runs-on/issues/277", ("node", "SpotReclaimed", 1, "spot-instance-reclaimed")),
    ("a-peer-timed-out-in-the-librarys-words",
     "F0911 14:31:16.057638  5678 SocketChannel.cpp:54] Check failed: len >= 0  peer=10.75.60.42: Connection timed "
     "out [110]", "https://github.com/PaddlePaddle/Paddle/issues/4043",
     ("interconnect", "NetworkError", 4, "network-words-the-library-printed")),
    ("a-download-timed-out-in-the-programs-words",
     "requests.exceptions.ConnectionError: HTTPSConnectionPool(host='huggingface.co', port=443): Max retries exceeded "
     "with url: /api/models (Caused by NewConnectionError('Failed to establish a new connection: [Errno 110] "
     "Connection timed out'))", "https://github.com/urllib3/urllib3/blob/main/src/urllib3/connection.py (the wording)",
     ("unknown", "ExternalServiceError", 1, "external-service-error")),
    ("a-config-file-that-is-not-toml",
     "    raise TomlDecodeError(str(err), original, pos)\n"
     "toml.decoder.TomlDecodeError: Invalid date or number (line 41 column 1 char 1505)",
     "https://github.com/khanld/ASR-Wav2vec-Finetune/issues/11", ("user", "PythonException", 2, None)),
    ("parallel-degrees-the-world-cannot-hold",
     "2025-05-22 03:33:36 - [ERROR] - An error occurred during training: World size 2 must be divisible by the "
     "product of all parallel degrees and data parallel shards.", "https://github.com/huggingface/finetrainers/issues/408",
     ("user", "BadConfig", 1, "parallelism-config")),
    ("gpus-before-the-fabric-manager-is-up",
     "RuntimeError: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before calling "
     "NumCudaDevices() that might have already set an error? Error 802: system not yet initialized",
     "https://github.com/huggingface/huggingface_hub/issues/4134",
     ("node", "GpuSystemNotReady", 1, "ref-cuda-system-not-ready")),
    ("dataloader-worker-killed-by-the-oom-killer",
     "Traceback (most recent call last):\n"
     '  File "train.py", line 210, in <module>\n'
     "    val_target_cpu, val_input_cpu = val_target_cpu.float().cuda(), val_input_cpu.float().cuda()\n"
     "RuntimeError: DataLoader worker (pid 19597) is killed by signal: Killed.",
     "https://github.com/hezhangsprinter/DCPDN/issues/12",
     ("oom", "HostOOM", 4, "dataloader-worker-sigkill")),
    ("dataloader-workers-terminated-prove-no-class",
     "RuntimeError: DataLoader worker (pid(s) 8102, 8103) exited unexpectedly",
     "https://github.com/pytorch/pytorch/blob/main/torch/utils/data/dataloader.py (the wording)",
     ("unknown", "DataLoaderWorkerDied", 4, "ref-dataloader-worker-killed")),
    ("nvidia-smi-rows-remapped-for-uncorrectable-errors",
     "    Remapped Rows\n        Correctable Error                 : 0\n"
     "        Uncorrectable Error               : 4\n        Pending                           : Yes",
     "https://github.com/leptonai/gpud/pull/80",
     ("device", "GpuMemoryUncorrectable", 1, "gpu-remapped-rows-nvidia-smi")),
    ("ib-plugin-completion-error",
     "NET/IBP:Got completion from peer 7.6.13.83<36315> with status=12 opcode=32698 len=32696 vendor err 129 (Send)",
     "https://github.com/NVIDIA/nccl/issues/1664", ("interconnect", "NcclIbCompletionError", 1, "nccl-ib-completion")),
    ("cuda-oom-in-nccls-words",
     "node01:1234:1290 [2] include/alloc.h:114 NCCL WARN Cuda failure 'out of memory'",
     "https://github.com/NVIDIA/nccl/blob/v2.27.7-1/src/include/checks.h (the wording); "
     "https://github.com/NVIDIA/nccl/issues/1235", ("oom", "DeviceOOM", 1, "ref-cuda-memory-allocation")),
    ("megatron-layers-and-pipeline",
     "AssertionError: Number of layers should be divisible by the pipeline-model-parallel size",
     "https://github.com/NVIDIA/Megatron-LM/blob/main/megatron/training/arguments.py",
     ("user", "BadConfig", 1, "ref-meg-layers-pp")),
    # --- generic words: only the library's own error line gives them a class -----------------------------------
    ("network-words-on-nccls-own-line",
     "node201:127799:127863 [0] transport/net_ib.cc:101 NCCL WARN NET/IB : mlx5_0:1 Got async event : local access "
     "violation work queue error", "https://github.com/NVIDIA/nccl/issues/1710",
     ("interconnect", "NetworkError", 4, "network-words-the-library-printed")),
    ("network-words-the-program-printed", "ERROR: RoCE link down? retrying the batch",
     "the program's own words (the issue's INFO/print family)",
     ("unknown", "NetworkError", 4, "network-words-the-library-printed")),
    ("broken-pipe-from-a-dataloader-worker",
     "Traceback (most recent call last):\n"
     '  File "D:\\anaconda3\\envs\\yolact\\lib\\multiprocessing\\reduction.py", line 60, in dump\n'
     "    ForkingPickler(file, protocol).dump(obj)\nBrokenPipeError: [Errno 32] Broken pipe",
     "https://github.com/dbolya/yolact/issues/663", ("unknown", "PeerConnectionLost", 4, "peer-connection-lost")),
    ("hardware-words-the-program-printed", "health: 2 CUDA error(s) seen, retrying the batch",
     "a training script's own print", ("unknown", "CudaError", 4, "cuda-error-generic")),
    # --- the user: by where it was raised and by its type --------------------------------------------------------
    ("generic-exception-raised-in-the-jobs-own-code", USER_TRACEBACK, "the issue's user traceback family",
     ("user", "PythonException", 2, None)),
    ("user-exception-type-without-a-traceback",
     "ValueError: Some specified arguments are not used by the HfArgumentParser: ['--adapter_name_or_path']",
     "https://github.com/hiyouga/LlamaFactory/issues/3334", ("user", "BadArguments", 1, "hf-argument-parser")),
    ("keyerror-raised-by-the-standard-library",
     '    File "/home/public/anaconda3/lib/python3.6/os.py", line 669, in getitem\n'
     "raise KeyError(key) from None\nKeyError: 'RANK'",
     "https://github.com/STVIR/pysot/issues/48", ("user", "PythonException", 2, None)),
    ("the-user-raised-the-librarys-own-text",
     "Traceback (most recent call last):\n"
     '  File "/app/train.py", line 12, in step\n'
     "    raise RuntimeError(message)\n"
     "RuntimeError: InnerRunOpApi:torch_npu/csrc/framework/OpParamMaker.cpp:281 OPS function error: HcclAllreduce, "
     "error code is 6\n"
     "EI0006: [PID: 1292363] 2025-04-08-18:07:20.444.436 Getting socket times out. Reason: Remote Rank did not send "
     "the data in time.", "https://github.com/vllm-project/vllm-ascend/issues/486",
     ("interconnect", "HcclSocketTimeout", 3, "hccl-socket-timeout")),
    ("a-user-error-beats-the-timeouts-it-caused",
     f"{USER_TRACEBACK}[rank0]:[E321 02:07:08.408271257 ProcessGroupNCCL.cpp:607] [Rank 0] Watchdog caught "
     "collective operation timeout: WorkNCCL(SeqNum=1580, OpType=ALLREDUCE) ran for 600060 milliseconds before "
     "timing out.", "https://github.com/hiyouga/LlamaFactory/issues/7396 (the timeout)",
     ("user", "PythonException", 2, None)),
    ("deepspeed-config-check",
     "[rank0]: AssertionError: Check batch related parameters. train_batch_size is not equal to micro_batch_per_gpu "
     "* gradient_acc_step * world_size 8 != 2 * 1 * 1", "https://github.com/deepspeedai/DeepSpeed/issues/6914",
     ("user", "BadConfig", 1, "deepspeed-batch-config")),
    ("aclnn-parameter-check",
     "[PID: 465] 2026-02-09-17:11:34.368.749 AclNN_Parameter_Error(EZ1001): Tensor scale not implemented for "
     "DT_FLOAT16, should be in dtype support list", "https://github.com/vllm-project/vllm-ascend/issues/6636",
     ("user", "OperatorParameterError", 1, "aclnn-parameter-error")),
    ("an-external-service-is-not-the-user",
     '[rank0]:     raise RuntimeError(f\'Multiple errors: {all_errors}\')\n'
     "[rank0]: RuntimeError: Multiple errors: [Exception('Server 1 failed: 500, Internal Server Error')]",
     "https://github.com/modelscope/ms-swift/issues/7228",
     ("unknown", "ExternalServiceError", 1, "external-service-error")),
    # --- Ascend without an HCCL keyword ---------------------------------------------------------------------------
    ("ascend-lost-heartbeat",
     "[PID: 389] 2026-05-01-10:59:14.702.326 Device_Absent/Abnormal(EL0001): Device not found or invalid.\n"
     "        Device[1] lost heartbeat.[FUNC:SyncTask][FILE:direct_hwts_engine.cc][LINE:407]",
     "https://github.com/vllm-project/vllm-ascend/issues/8186", ("device", "DeviceLost", 1, "ascend-device-lost")),
    ("ascend-memory-before-the-set-device-failure",
     "[ERROR] aclrtSetDevice(deviceId) failed: 507033 (main.cpp:72)\n"
     "[ERROR] RecentErrMsg: [PID: 1613532] 2026-03-24-12:14:45.885.234 Memory_Allocation_Failure(EL0004): Failed to "
     "allocate memory.", "https://github.com/hw-native-sys/PTOAS/pull/341",
     ("oom", "DeviceOOM", 1, "ascend-memory-alloc-failed")),
    ("ascend-aicore-exception-from-the-device-dump",
     "DEVICE[0] PID[358]:\nEXCEPTION STREAM:\n  Message info[0]:RTS_HWTS: aicore exception, slot_id=31, stream_id=3\n"
     + USER_TRACEBACK.replace("bad batch at step 7", "The Inner error is reported as above."),
     "https://github.com/hiyouga/LlamaFactory/issues/3670",
     ("device", "AicoreException", 1, "ascend-aicore-exception")),
    ("ascend-kernel-bug-named-by-the-device",
     "EZ9999[PID: 91583] (EZ9999):  The error from device(chipId:0, dieId:0), there is an aicore error exception\n"
     "       The extend info: errcode:(95) errorStr: The DDR address of the MTE instruction is out of range.",
     "https://github.com/hw-native-sys/PTOAS/pull/426", ("unknown", "AicoreKernelFault", 1,
                                                          "ascend-kernel-bug-extend-info")),
    ("hccl-link-table-root-cause-beats-the-socket-timeout",
     "[ERROR] HCCL(55694,):2026-06-03-06:04:59.040.451 [hccl_socket_manager.cc:860] [60446][Wait]"
     "[LinksEstablishCompleted] is failed. ret[9].\n"
     "EI0006: 2024-08-05-18:15:21.270.506 Getting socket times out.",
     "https://github.com/vllm-project/vllm-ascend/issues/9872",
     ("interconnect", "HcclLinkEstablishFailed", 1, "hccl-link-establish")),
    ("hccp-port-down", "RuntimeError: EJ0002: [PID: 38079] 2025-07-15-12:45:31.202.787 The network port is down.",
     "https://github.com/vllm-project/vllm-ascend/issues/1815", ("interconnect", "RdmaInitFailed", 1,
                                                                   "hccp-rdma-port")),
    # --- NVIDIA -------------------------------------------------------------------------------------------------
    ("nccl-ib-retry-exceeded",
     "transport/net_ib.cu:781 WARN NET/IB : Got completion with error 12, opcode 1, len0, vendor err 129",
     "https://github.com/horovod/horovod/issues/147",
     ("interconnect", "NcclIbCompletionError", 1, "nccl-ib-completion")),
    ("nccl-ib-flush-is-only-a-consequence",
     "ncclRemoteError: A call failed possibly due to a network error or a remote process exiting prematurely.\n"
     "NET/IB : Got completion from peer 172.21.17.89<38536> with error 5, opcode 48, len 32710, vendor err 249",
     "https://github.com/deepseek-ai/DeepEP/issues/106", ("interconnect", "NcclRemoteError", 3, "nccl-remote-error")),
    ("gpu-lost-from-the-bus",
     "[ 1843.308145] NVRM: The NVIDIA GPU 0000:b3:00.0\n               NVRM: (PCI ID: 10de:26b5) installed in this "
     "system has\n               NVRM: fallen off the bus and is not responding to commands.",
     "https://github.com/NVIDIA/NVSentinel/issues/155", ("device", "GpuLost", 1, "gpu-fallen-off-bus")),
    ("application-xids-prove-nothing",
     "[Fri Aug 30 11:43:09 2024] NVRM: Xid (PCI:0000:cb:00): 13, pid='<unknown>', name=<unknown>, Graphics SM Warp "
     "Exception on (GPC 7, TPC 7, SM 0): Illegal Instruction Parameter", "https://github.com/leptonai/gpud/pull/46",
     ("unknown", "GpuApplicationXid", 1, "gpu-xid")),
    ("illegal-memory-access-is-not-proof",
     "RuntimeError: CUDA error: an illegal memory access was encountered\nCUDA kernel errors might be asynchronously "
     "reported at some other API call", "https://github.com/evo-design/evo/issues/136",
     ("unknown", "CudaKernelFault", 1, "cuda-illegal-access")),
    # --- launchers and Kubernetes -------------------------------------------------------------------------------
    ("torchrun-stopping-its-workers",
     "WARNING:torch.distributed.elastic.multiprocessing.api:Sending process 3721028 closing signal SIGTERM",
     "https://github.com/pytorch/pytorch/issues/150916", ("unknown", "WorkerStopped", 5, None)),
    ("kubelet-eviction-in-kubectl-describe",
     "Status:         Failed\nReason:         Evicted\nMessage:        The node was low on resource: memory. "
     "Container trainer was using 1275700Ki, which exceeds its request of 0.",
     "https://github.com/Greenstand/treetracker-infrastructure/issues/49", ("node", "Evicted", 1, "kubelet-eviction")),
    ("container-oomkilled-in-kubectl-describe",
     "    State:          Terminated\n      Reason:       OOMKilled\n      Exit Code:    0",
     "https://github.com/kubernetes/kubernetes/issues/131530", ("oom", "OOMKilled", 1, "container-oomkilled")),
    ("command-not-found", "/bin/sh: 1: torchrun: not found", "https://github.com/hiyouga/LlamaFactory/issues/5217",
     ("user", "CommandNotFound", 1, "command-not-found")),
    # --- round 3 (development texts): entries added for them --------------------------------------------------------
    ("a-bare-eio-names-no-volume",
     "[rank3]:     mkdir(name, mode)\n[rank3]: OSError: [Errno 5] Input/output error: '/app/naifu555'",
     "https://github.com/Mikubill/naifu/issues/35", ("unknown", "OSError", 5, None)),
    ("dataloader-bus-error-from-a-small-shm",
     "ERROR: Unexpected bus error encountered in worker. This might be caused by insufficient shared memory (shm).",
     "https://github.com/codalab/codalab-worksheets/pull/1961", ("user", "ShmTooSmall", 1, "shared-memory-too-small")),
    ("a-lost-gpu-explains-no-visible-device",
     "CUDA Error: no CUDA-capable device is detected\n"
     "Unable to determine the device handle for GPU 0000:03:00.0: GPU is lost.  Reboot the system to recover this GPU",
     "https://github.com/AlexeyAB/darknet/issues/86", ("device", "GpuLost", 1, "gpu-fallen-off-bus")),
    ("dcgm-diagnostic-uncorrectable-memory",
     "| Error                     | GPU 3 has uncorrectable memory errors and row  |",
     "https://github.com/stas00/ml-engineering/blob/master/debug/hardware-troubleshooting.md",
     ("device", "GpuMemoryUncorrectable", 1, "gpu-uncorrectable-memory-dcgm")),
    ("rays-memory-monitor-killed-workers",
     "(raylet) [2025-04-02 15:02:00,117 E 135782 135782] (raylet) node_manager.cc:3069: 1 Workers (tasks / actors) "
     "killed due to memory pressure (OOM), 0 Workers crashed due to other reasons at node",
     "https://github.com/hiyouga/EasyR1/issues/185", ("oom", "HostOOM", 1, "ray-oom-killer")),
    ("pinned-host-memory-for-a-data-queue",
     "[ERROR] MD(14433,7fea2effd700,python):2021-12-12-14:13:43.932.181 [mindspore/ccsrc/minddata/dataset/util/"
     "arena.cc:250] Init] cudaHostAlloc failed, ret[2], out of memory",
     "https://github.com/mindspore-ai/mindspore/issues/172", ("oom", "HostOOM", 1, "pinned-host-memory-exhausted")),
    ("mindspore-request-beyond-the-npus-memory",
     "[ERROR] PRE_ACT(54175,fffdbcff91e0,python):2024-10-22-11:24:55.301.443 [mindspore/ccsrc/backend/common/mem_reuse/"
     "mem_dynamic_allocator.cc:392] AddMemBlockAndMemBufByEagerFree] TotalUsedMemStatistics : 29356337664 plus "
     "TotalUsedByEventMemStatistics : 0 and plus alloc size : 301990400 is more than total mem size : 29464985600.",
     "https://github.com/candle-org/MindAct/issues/1761", ("oom", "DeviceOOM", 1, "ascend-memory-alloc-failed")),
    ("hccl-ranktable-path-is-configuration",
     "[ERROR] HCCL(1104629,test_one_side):2025-10-28-17:45:13.679.684 [param_check.cc:66] [1104629][InitGroupStage]"
     "[RanktableConfig]errNo[0x0000000005010001] path /ranktable.json is not a valid real path",
     "https://github.com/hicann/hccl/blob/master/docs/en/user_guide/fault_diagnosis/rank_table_load_fail.md",
     ("user", "HcclConfigError", 1, "hccl-config")),
    ("an-expanded-tensor-of-the-wrong-size",
     "RuntimeError: The expanded size of the tensor (6404) must match the existing size (16) at non-singleton "
     "dimension 1.  Target sizes: [32, 6404, 128].  Tensor sizes: [32, 16, 128]",
     "https://github.com/Ascend/sglang/issues/842", ("user", "ProgramError", 1, "torch-program-error")),
]


# Numbers that only look like CANN's bare codes: torch's log lines carry the time to the millisecond as six digits
# (`.507000`: its formatter's int(msecs * 1000)) and then the process id, and process ids pass 100000 on a busy host.
# A CI run classified HCCL's error as `unknown/LibraryInternalError` for torchrun's line at 09:28:00.507.
EI0006_LINE = ("EI0006: [PID: 1292363] 2025-04-08-18:07:20.444.436 Getting socket times out. Reason: Remote Rank "
               "did not send the data in time.")  # vllm-project/vllm-ascend#486
TORCHRUN_FAILED = ("E1203 09:28:00.{fraction} {pid} torch/distributed/elastic/multiprocessing/api.py:1002] failed "
                   "(exitcode: 1) local_rank: 1 (pid: {child}) of binary: /usr/bin/python3")
CASES += [
    ("a-millisecond-is-not-a-cann-code",
     f"{EI0006_LINE}\n{TORCHRUN_FAILED.format(fraction='507000', pid=23950, child=23963)}",
     "vllm-project/vllm-ascend#486 (EI0006); torch/_logging/_internal.py's line format (torchrun's line)",
     ("interconnect", "HcclSocketTimeout", 3, "hccl-socket-timeout")),
    ("a-process-id-is-not-a-cann-code", EI0006_LINE.replace("1292363", "507015"),
     "vllm-project/vllm-ascend#486, with a six-digit process id", ("interconnect", "HcclSocketTimeout", 3,
                                                                  "hccl-socket-timeout")),
    ("torchruns-numbers-are-not-cann-codes", TORCHRUN_FAILED.format(fraction="107000", pid=507011, child=507012),
     "torch/_logging/_internal.py's line format", ("unknown", "WorkerStopped", 5, None)),
]


# Reports: a component's own verdict, which its authors log at INFO (the NVIDIA device plugin's klog.Infof in
# internal/rm/health.go and server.go, the node lifecycle controller's condition message). The level of the line
# is the reporter's habit, not a mention: these stand on a line at any level.
CASES += [
    ("device-plugin-xid-at-info",
     "I0809 13:32:51.873541       1 health.go:185] XidCriticalError: Xid=94 on Device=GPU-3b6ec030-5adc-1847-e155-"
     "79f635584b4e; marking device as unhealthy.\nI0809 13:32:51.873567       1 server.go:292] 'nvidia.com/gpu' "
     "device marked unhealthy: GPU-3b6ec030-5adc-1847-e155-79f635584b4e",
     "https://github.com/akash-network/support/issues/244", ("device", "GpuXid", 1, "nvidia-device-plugin-xid")),
    ("device-plugin-xid-old-format",
     "2020/08/10 19:09:42 XidCriticalError: Xid=69 on Device=GPU-7540a9b3-eeb9-1214-1526-f93c9ea826a8, the device "
     "will go unhealthy.", "https://github.com/NVIDIA/k8s-device-plugin/issues/189",
     ("device", "GpuXid", 1, "nvidia-device-plugin-xid")),
    ("device-plugin-unhealthy-without-the-xid",
     "I0809 13:32:51.873567       1 server.go:292] 'nvidia.com/gpu' device marked unhealthy: GPU-3b6ec030-5adc",
     "https://github.com/NVIDIA/k8s-device-plugin/blob/main/internal/plugin/server.go",
     ("device", "GpuMarkedUnhealthy", 1, "nvidia-device-plugin-unhealthy")),
    ("device-plugin-application-xid-proves-nothing",
     "I0810 15:36:05.551834       1 health.go:169] XidCriticalError: Xid=13 on Device=GPU-455e672a; marking device "
     "as unhealthy.", "https://github.com/NVIDIA/k8s-device-plugin/blob/main/internal/rm/health.go (an Xid the "
     "plugin's skip list was told to count)", ("unknown", "GpuApplicationXid", 1, "nvidia-device-plugin-xid")),
    # aws-node-termination-handler's drain event for a spot interruption notice (pkg/monitor/spotitn), logged at
    # zerolog's INF (console) or "info" (JSON) level.
    ("spot-interruption-the-termination-handler-drains-for",
     '2025/05/16 08:30:05 INF Node successfully cordoned and drained node_name=ip-10-0-1-17.ap-northeast-2.compute.'
     'internal reason="Spot ITN received. Instance will be interrupted at 2025-05-16T08:31:24Z \\n"',
     "https://github.com/aws/aws-node-termination-handler/blob/main/pkg/monitor/spotitn/spot-itn-monitor.go",
     ("node", "SpotReclaimed", 1, "aws-termination-handler-spot-itn")),
    ("node-condition-at-info",
     "Feb 17 13:58:47.304: INFO: Condition Ready of node e2e-gce-builder-2-3-minion-kb53 is false instead of true. "
     "Reason: NodeStatusUnknown, message: Kubelet stopped posting node status.",
     "https://github.com/kubernetes/kubernetes/issues/21485", ("node", "NodeUnreachable", 1, "node-status-unknown")),
]


# NCCL's own words for the CUDA error under ncclUnhandledCudaError: its CUCHECK macro prints the driver's error
# number before the text (src/include/checks.h: WARN("Cuda failure %d '%s'", err, errStr)); the older CUDACHECK
# printed the text alone. Either way the CUDA error decides, as torch's "CUDA error: ..." does.
CASES += [
    ("nccl-cuda-failure-with-its-number",
     "ncclUnhandledCudaError: Call to CUDA function failed.\nLast error:\n"
     "Cuda failure 802 'system not yet initialized'",
     "https://github.com/hiyouga/LlamaFactory/issues/8968", ("node", "GpuSystemNotReady", 1,
                                                             "ref-cuda-system-not-ready")),
    ("nccl-cuda-failure-oom-with-its-number",
     "node1:2201:2290 [3] include/alloc.h:105 NCCL WARN Cuda failure 2 'out of memory'\n"
     "ncclUnhandledCudaError: Call to CUDA function failed.",
     "NVIDIA/nccl src/include/checks.h (CUCHECK's format); CUDA_ERROR_OUT_OF_MEMORY = 2",
     ("oom", "DeviceOOM", 1, "ref-cuda-memory-allocation")),
]


# Text pasted from an issue or a chat into `tandem classify --log`: markdown quotes a line in backticks.
CASES += [
    ("an-exception-quoted-in-backticks",
     "`ValueError: You can't train a model that has been loaded in 8-bit precision on a different device than the "
     "one you're training on.`", "https://github.com/yangjianxin1/Firefly/issues/256",
     ("user", "PythonException", 2, None)),
    ("an-hccl-line-quoted-in-backticks",
     "`EI0006: [PID: 1292363] 2025-04-08-18:07:20.444.436 Getting socket times out. Reason: Remote Rank did not send "
     "the data in time.`", "https://github.com/vllm-project/vllm-ascend/issues/486 (quoted)",
     ("interconnect", "HcclSocketTimeout", 3, "hccl-socket-timeout")),
]


# More cases, as data: tests/data/faults/reading_cases.yaml.
READING_CASES = Path(__file__).parents[2] / "data" / "faults" / "reading_cases.yaml"
CASES += [(case["id"], case["text"], case["source"], tuple(case["expected"].values()))
          for group in yaml.safe_load(READING_CASES.read_text()) for case in group["cases"]]


@pytest.mark.parametrize(("text", "source", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_the_whole_decision(text: str, source: str, expected: tuple[str, str, int, str | None]) -> None:
    reading = read_log(text)
    assert reading is not None, source
    decided = (reading.fault_class.value, reading.reason, reading.rule,
               reading.entry.signature.id if reading.entry else None)
    assert decided == expected, source


@pytest.mark.parametrize("text", ["", "  \n", "epoch 3 loss 1.23\nepoch 4 loss 1.19", NCCL_ROCE_INFO,
                                  "[INFO] 2024-05-21 HCCL RoCE link up: rank 3 ok", HEALTHY_REMAPPED_ROWS,
                                  "I1228 03:09:48.1 1 rollout.go:12] node gpu-3 NodeNotReady earlier, now Ready",
                                  "INFO: retrying: the device was unhealthy a minute ago"])
def test_output_without_an_error_holds_no_evidence(text: str) -> None:
    assert read_log(text) is None


def test_an_exception_the_program_printed_and_went_on_from_is_not_its_end() -> None:
    """A handled error the program logged is followed by more of its output: only the last words of a text, or a
    line under a traceback, are an exception that ended the process."""
    reading = read_log("epoch 1 loss 0.71\nValueError: sample 17 has no label, skipped\nepoch 2 loss 0.64\nKilled")
    assert reading is None or reading.fault_class.value != "user"


def test_a_peers_heartbeat_is_not_this_devices() -> None:
    """HCCL's cluster heartbeat names a peer rank that went silent: the device vocabulary ("heartbeat lost") must not
    read it as this node's device (hicann/hccl docs, fault_diagnosis: the possible reasons are the peer's process
    or the network)."""
    reading = read_log(
        "[ERROR]HCCL(835695,all_reduce_test):2025-10-23-17:28:06.049.385[task_exception_handler.cc:610][835695]"
        "Cluster Exception Location[IP/ID]:[127.10.0.1/1], Arrival Time:[Thu Oct 23 17:25:58 2025], Discoverer:"
        "[127.10.0.1/2], ExceptionType:[Heartbeat Lost Occurred], Possible Reason:1. Process has exited, 2. Network "
        "Disconnected")
    assert reading is None or reading.fault_class.value != "device"


def test_the_explanation_names_the_entry_its_source_and_the_other_matches() -> None:
    text = ("RuntimeError: npuSynchronizeDevice:compiler_depend.ts:479 NPU function error: "
            "AclrtSynchronizeDeviceWithTimeout, error code is 507010\nDevice[1] lost heartbeat.")
    explained = read_log(text).explain()
    assert explained["entry"]["id"] == "ascend-device-lost"
    assert explained["entry"]["source"].startswith("https://") and explained["rule"] == 1
    generic = "npu-error-generic (unknown/NpuError, weak, ascend) at line 1"
    assert any(m.startswith(generic) for m in explained["matches"])


def test_a_long_log_reads_in_one_pass() -> None:
    """A whole `kubectl logs` output: 200k lines of progress, then the fault."""
    progress = "\n".join(f"[INFO] step {n} loss 1.{n % 97:02d} tokens/s 51234" for n in range(200_000))
    reading = read_log(progress + "\nEI0006: 2024-08-05 Getting socket times out. Reason: Remote Rank did not send")
    assert reading is not None and (reading.fault_class.value, reading.reason) == ("interconnect", "HcclSocketTimeout")
    assert reading.matches[0].line.number == 200_000


def test_a_runaway_line_is_read_only_so_far() -> None:
    """A line of megabytes (a tenant's runaway print, a binary blob) is cut at MAX_LINE for matching: the fault at
    its start still counts, and a repeated keyword cannot make a pattern scan it quadratically."""
    reading = read_log("EI0006: Getting socket times out. " + "x" * 2_000_000)
    assert reading is not None and reading.reason == "HcclSocketTimeout"
    assert read_log("HCCL " * 200_000) is None
    assert read_log("which was running pod " * 100_000) is None
