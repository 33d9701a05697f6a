"""Files that are not regular files: named pipes, sockets and devices.

Opening a named pipe blocks until something writes into it (forever, in a data folder), and a socket or device holds
no image, so only regular files are read. Discovery skips the others and says which in one notice; a reader given one
by name refuses it.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from medtransfer.errors import DataError

#: how many skipped files a notice names
NAMED = 3


def is_special_file(path: str | os.PathLike) -> bool:
    """Whether ``path`` (its target, for a symbolic link) exists and is neither a regular file nor a folder."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return False
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def refuse_special_file(path: str | os.PathLike) -> None:
    """Raise a :class:`~medtransfer.errors.DataError` naming ``path`` when it is a special file."""
    if is_special_file(path):
        raise DataError(f"{path}: not a regular file (a named pipe, socket or device), so it is not read. Replace it "
                        f"with the image file, or remove it.")


def skipped_notice(skipped: list[Path], root: Path) -> str:
    """One sentence: how many special files under ``root`` were skipped, and the first :data:`NAMED` of them."""
    names = [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in sorted(skipped)]
    more = f" and {len(names) - NAMED} more" if len(names) > NAMED else ""
    return (f"{len(names)} file(s) that are not regular files (named pipes, sockets or devices) were skipped: "
            f"{', '.join(names[:NAMED])}{more}.")
