"""Writing files so that a crash never leaves half of one."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from medtransfer.errors import MedTransferError

_UMASK = os.umask(0)
os.umask(_UMASK)


class StorageError(MedTransferError, OSError):
    """A file could not be written: disk full, no permission, read-only file system."""

    def __init__(self, path: Path, cause: OSError):
        super().__init__(
            f"{path}: cannot write ({cause.strerror or cause}); the previous version, if any, is intact. "
            f"Free disk space or choose a writable output folder."
        )


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write ``path`` so that a reader sees the old or the new content, never half of it."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as e:
        raise StorageError(path, e) from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data.encode() if isinstance(data, str) else data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_UMASK)
        os.replace(tmp, path)
    except OSError as e:
        Path(tmp).unlink(missing_ok=True)
        raise StorageError(path, e) from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
