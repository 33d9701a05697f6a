"""Image files in formats medtransfer does not read (GIF, WebP, …), found in a data folder: skipped, and said so.

An animated GIF holds several frames (a cine loop, say) and a palette of 256 colours; reading its first frame would
train on a picture nobody labelled as such, so such files are skipped rather than guessed at, with one notice that
counts and names them, and a class folder that holds only such files says so in its error.
"""

from __future__ import annotations

import os
from pathlib import Path

#: suffixes (lower case) of image formats that are not read, and how a notice names them
UNREAD_SUFFIXES = {".gif": "GIF", ".webp": "WebP", ".jp2": "JPEG 2000", ".heic": "HEIC", ".avif": "AVIF"}
#: how many skipped files a notice names
NAMED = 3


def unread_images(folders: list[Path]) -> list[Path]:
    """The files anywhere under ``folders`` (hidden ones excluded) in a format of :data:`UNREAD_SUFFIXES`, sorted."""
    found: list[Path] = []
    for folder in folders:
        for dirpath, dirnames, filenames in os.walk(folder):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            found += [Path(dirpath, f) for f in filenames
                      if not f.startswith(".") and Path(f).suffix.lower() in UNREAD_SUFFIXES]
    return sorted(found)


def _formats(files: list[Path]) -> str:
    return ", ".join(dict.fromkeys(UNREAD_SUFFIXES[f.suffix.lower()] for f in files))


def unread_notice(files: list[Path], root: Path) -> str:
    """One sentence: how many files were skipped for their format, in which formats, and the first :data:`NAMED`."""
    names = [str(f.relative_to(root)) if f.is_relative_to(root) else str(f) for f in files]
    more = f" and {len(names) - NAMED} more" if len(names) > NAMED else ""
    return (f"{len(files)} image file(s) in a format medtransfer does not read ({_formats(files)}) were skipped: "
            f"{', '.join(names[:NAMED])}{more}. An animated GIF holds several frames; convert each file to PNG (one "
            f"frame) to use it.")


def unread_hint(folder: Path) -> str:
    """For the error of a class folder without readable images: the unread files it holds, if any."""
    files = unread_images([folder])
    if not files:
        return ""
    return f" It holds {len(files)} {_formats(files)} file(s), which are not read: convert them to PNG."
