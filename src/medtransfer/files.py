"""Writing files and folders so that a crash never leaves half of one."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from medtransfer.errors import ConfigError, MedTransferError

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


@contextmanager
def atomic_folder(final: Path, *, overwrite: bool = False, what: str = "folder") -> Iterator[Path]:
    """A temporary sibling of ``final`` to write into; when the block ends without an error it takes ``final``'s
    place in one rename (replacing an existing folder only with ``overwrite``), and on any error (or Ctrl-C) it is
    removed, so ``final`` never holds half of a result. A process killed outright leaves only a hidden
    ``.NAME.partial-…`` sibling, never a folder at ``final``."""
    final = Path(final)
    refuse_existing(final, overwrite=overwrite, what=what)
    created = missing_parents(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=final.parent, prefix=f".{final.name}.partial-"))
        os.chmod(tmp, 0o777 & ~_UMASK)
    except OSError as e:
        remove_empty(created)
        raise StorageError(final, e) from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty(created)
        raise
    try:
        replace_folder(tmp, final)
    except OSError as e:
        shutil.rmtree(tmp, ignore_errors=True)
        remove_empty(created)
        raise StorageError(final, e) from None


def replace_folder(new: Path, final: Path) -> None:
    """Move the folder ``new`` to ``final``, replacing what was there: two renames, so that an interruption leaves
    one of the two in place (the old one hidden as ``.NAME.replaced-PID`` between them), never half of either."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    old = final.with_name(f".{final.name}.replaced-{os.getpid()}")
    shutil.rmtree(old, ignore_errors=True)  # left by a process of the same id that was killed between the renames
    if final.exists():
        os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def missing_parents(final: Path) -> list[Path]:
    """The folders above ``final`` that do not exist yet, deepest first: those that making it would create."""
    missing = []
    for parent in Path(final).absolute().parents:
        if parent.exists():
            break
        missing.append(parent)
    return missing


def remove_empty(folders: list[Path]) -> None:
    """Remove ``folders`` (deepest first) that are empty: the parents a failed write created, not one that
    something else has since put a file in."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:
            return


@contextmanager
def atomic_files(finals: list[Path], *, overwrite: bool = False, what: str = "files") -> Iterator[list[Path]]:
    """Temporary paths for the files ``finals`` (all in one folder), in a hidden ``.NAME.partial-…`` sibling folder;
    when the block ends without an error each takes its final's place, and on any error (or Ctrl-C) none does, so
    the set is never half written. An existing final is replaced only with ``overwrite``."""
    finals = [Path(f) for f in finals]
    for final in finals:
        if final.is_dir() or (final.exists() and not overwrite):
            raise ConfigError(f"{final} already exists; choose another --out, or pass --overwrite to replace the "
                              f"{what}")
    created = missing_parents(finals[0])
    try:
        finals[0].parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=finals[0].parent, prefix=f".{finals[0].name}.partial-"))
    except OSError as e:
        remove_empty(created)
        raise StorageError(finals[0], e) from None
    try:
        yield [staging / f.name for f in finals]
        for final in finals:  # renames in one folder: the set is whole after the last, microseconds later
            try:
                os.chmod(staging / final.name, 0o666 & ~_UMASK)
                os.replace(staging / final.name, final)
            except OSError as e:
                raise StorageError(final, e) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        remove_empty(created)  # nothing when the set was written: its folder is not empty


def refuse_existing(final: Path, *, overwrite: bool = False, what: str = "folder") -> None:
    """Refuse to replace ``final`` (a file, or a folder that is not empty) unless ``overwrite``; a command calls it
    before its slow work, so that the refusal comes at once."""
    final = Path(final)
    if final.is_file() or (final.is_dir() and any(final.iterdir()) and not overwrite):
        raise ConfigError(f"{final} already exists; choose another --out, or pass --overwrite to replace the {what}")


def check_output_folder(out: Path, data: str) -> None:
    """Refuse an output folder inside the data folder: the next read of the data would take its files for data."""
    source = Path(str(data)).expanduser()
    if source.is_dir():
        try:
            Path(out).resolve().relative_to(source.resolve())
        except ValueError:
            return
        raise ConfigError(f"{out}: the output folder is inside the data folder {data}; the next read of the data "
                          f"would take its files for images. Choose an --out outside {data}.")
