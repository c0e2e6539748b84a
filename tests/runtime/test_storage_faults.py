"""Storage faults (issue 14, item 4): a full, read-only, over-quota, stale or missing checkpoint volume is class
`storage`, from the exception's errno, from the texts people posted publicly, and from the exit code."""

from __future__ import annotations

import errno

import pytest
from torch.distributed.checkpoint.api import CheckpointException

from tandem.runtime.faults import (
    CLASSES,
    EXIT_CODES,
    FaultError,
    checkpoint_unreadable,
    classify_exception,
    classify_exit,
    classify_text,
)

# (source, the real text as posted, reason)
REAL_TEXTS = [
    ("https://github.com/databrickslabs/dolly/issues/139",
     "    zip_file.write_record(name, storage.data_ptr(), num_bytes)\nOSError: [Errno 28] No space left on device",
     "DiskFull"),
    ("https://github.com/zai-org/ChatGLM-6B/issues/1166",
     "RuntimeError: [enforce fail at inline_container.cc:471] . PytorchStreamWriter failed writing file data/3: file "
     "write failed", "WriteFailed"),
    ("https://github.com/innnky/so-vits-svc/issues/46",
     "[inline_container.cc] PytorchStreamWriter failed writing file data/271: file write failed 和 unexpected pos "
     "190007680 vs 190007572", "WriteFailed"),
    ("https://github.com/junyanz/pytorch-CycleGAN-and-pix2pix/issues/1456",
     "    fp.close()\nOSError: [Errno 122] Disk quota exceeded", "QuotaExceeded"),
    ("https://github.com/sabeechen/hassio-google-drive-backup/issues/819",
     "OSError: [Errno 30] Read-only file system: '/data/data_cache.json.backup'", "ReadOnlyVolume"),
    ("https://github.com/hiyouga/LlamaFactory/issues/3243", "OSError: [Errno 116] Stale file handle:",
     "StaleFileHandle"),
    ("https://github.com/sjl/peat/issues/2",
     "OSError: [Errno 116] Stale NFS file handle: '/vagrant/project/media/css/style.scss'", "StaleFileHandle"),
    ("https://github.com/pytorch/pytorch/issues/10577 (\"The server's disc was saturated\")",
     "RuntimeError: write(): fd 29 failed with Input/output error", "VolumeIOError"),
]  # fmt: skip


@pytest.mark.parametrize(("source", "text", "reason"), REAL_TEXTS, ids=[r[2] + "@" + r[0] for r in REAL_TEXTS])
def test_real_storage_texts_are_storage(source: str, text: str, reason: str) -> None:
    assert classify_text(text) == ("storage", reason), source


@pytest.mark.parametrize(
    ("code", "reason"),
    [(errno.ENOSPC, "DiskFull"), (errno.EDQUOT, "QuotaExceeded"), (errno.EROFS, "ReadOnlyVolume"),
     (errno.ESTALE, "StaleFileHandle")],
)  # fmt: skip
def test_storage_errnos_are_storage_wherever_they_were_raised(code: int, reason: str) -> None:
    exc = OSError(code, "whatever the C library says", "/anywhere/file")
    cls, got, message = classify_exception(exc)
    assert (cls, got) == ("storage", reason) and "/anywhere/file" in message


def test_a_storage_error_under_a_wrapper_is_found_through_the_chain() -> None:
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device")
        except OSError as inner:
            raise RuntimeError("saving the checkpoint failed") from inner
    except RuntimeError as outer:
        assert classify_exception(outer)[:2] == ("storage", "DiskFull")


def test_a_dcp_checkpoint_exception_is_judged_by_its_ranks_errors() -> None:
    # DCP wraps each rank's error; its text (the ranks' tracebacks) used to give unknown/CheckpointException.
    full = CheckpointException("save failed", {0: (OSError(errno.ENOSPC, "No space left on device"), None)})
    assert classify_exception(full)[:2] == ("storage", "DiskFull")
    io_error = CheckpointException("save failed", {1: (OSError(errno.EIO, "Input/output error"), None)})
    assert classify_exception(io_error)[:2] == ("storage", "VolumeIOError")  # EIO inside a checkpoint save


def test_eio_on_a_file_is_storage_and_enoent_only_on_the_checkpoint_volume() -> None:
    root = "/checkpoints/llama"
    eio = OSError(errno.EIO, "Input/output error", f"{root}/step-000000010/__0_0.distcp")
    assert classify_exception(eio, checkpoint_dir=root)[:2] == ("storage", "VolumeIOError")
    # EIO on any named file is the filesystem under it (a dataset volume too); not a device file, not a bare EIO
    assert classify_exception(OSError(errno.EIO, "Input/output error", "/data/x"), checkpoint_dir=root)[:2] == (
        "storage",
        "VolumeIOError",
    )
    assert classify_exception(OSError(errno.EIO, "Input/output error", "/dev/ttyS1"))[:2] == ("unknown", "OSError")
    assert classify_exception(OSError(errno.EIO, "Input/output error"))[:2] == ("unknown", "OSError")
    for missing in (root, "/checkpoints"):  # the folder or the mount above it is gone
        gone = FileNotFoundError(errno.ENOENT, "No such file or directory", missing)
        assert classify_exception(gone, checkpoint_dir=root)[:2] == ("storage", "VolumeMissing")
    shard = FileNotFoundError(errno.ENOENT, "No such file or directory", f"{root}/step-000000010/__0_0.distcp")
    assert classify_exception(shard, checkpoint_dir=root)[0] != "storage"  # a missing shard: a broken checkpoint
    assert classify_exception(FileNotFoundError(errno.ENOENT, "No such file", "/data/corpus"))[0] != "storage"


def test_no_checkpoint_loads_is_a_storage_fault() -> None:
    err = checkpoint_unreadable("3 checkpoint(s) quarantined: step 30 (checksum), step 20 (checksum), step 10 (load)")
    assert isinstance(err, FaultError) and (err.cls, err.reason) == ("storage", "CheckpointUnreadable")
    assert classify_exception(err)[:2] == ("storage", "CheckpointUnreadable")
    assert classify_text("... storage/CheckpointUnreadable: no checkpoint loads") == ("storage", "CheckpointUnreadable")


def test_storage_has_an_exit_code_of_its_own() -> None:
    assert "storage" in CLASSES and EXIT_CODES["storage"] == 7
    assert len(set(EXIT_CODES.values())) == len(EXIT_CODES)
    assert classify_exit(7)[0] == "storage"


def test_a_permission_error_is_not_a_storage_fault() -> None:
    # chmod, fsGroup, runAsUser: the pod's spec, which a restart does not change
    assert classify_exception(PermissionError(errno.EACCES, "Permission denied", "/ckpt"))[0] == "unknown"
