"""A fault-injecting storage seam for real `tandem-train` runs (launcher and workers alike): with
TANDEM_TEST_EIO_UNDER set, reading any file under that folder for its checksum (verify.file_checksum: the
launcher's verification before a resume, each rank's checksums of what it wrote) fails with EIO, as a
failing disk or an NFS server returning EIO would. Put this folder on PYTHONPATH to use it."""

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


if os.environ.get("TANDEM_TEST_EIO_UNDER"):
    _install(os.environ["TANDEM_TEST_EIO_UNDER"])
