"""Storage seams for real `tandem-train` runs (launcher and workers alike); put this folder on PYTHONPATH to use
them. With TANDEM_TEST_EIO_UNDER set, reading any file under that folder for its checksum (verify.file_checksum:
the launcher's verification before a resume, each rank's checksums of what it wrote) fails with EIO, as a failing
disk or an NFS server returning EIO would. With TANDEM_TEST_SLOW_LOAD_SECONDS set, every DCP load of a checkpoint
takes that much longer, as a big checkpoint on a slow NFS volume does."""

from __future__ import annotations

import errno
import os
from pathlib import Path, PurePath


def _install(under: str) -> None:
    from tandem.runtime import verify

    real = verify.file_checksum

    def failing(path: Path) -> str:
        if PurePath(path).is_relative_to(under):
            raise OSError(errno.EIO, os.strerror(errno.EIO), str(path))
        return real(path)

    verify.file_checksum = failing


def _slow_loads(seconds: float) -> None:
    import time

    import torch.distributed.checkpoint as dcp

    real = dcp.load

    def slow(*args: object, **kwargs: object) -> object:
        time.sleep(seconds)
        return real(*args, **kwargs)

    dcp.load = slow


if os.environ.get("TANDEM_TEST_EIO_UNDER"):
    _install(os.environ["TANDEM_TEST_EIO_UNDER"])
if os.environ.get("TANDEM_TEST_SLOW_LOAD_SECONDS"):
    _slow_loads(float(os.environ["TANDEM_TEST_SLOW_LOAD_SECONDS"]))
