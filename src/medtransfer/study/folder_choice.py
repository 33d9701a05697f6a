"""Which folder a study writes to: the folder given, if it is empty or holds this study; else, with ``new_folder``,
the first free ``folder-2`` (``-3``, …) beside it. Results of two configurations are never mixed."""

from __future__ import annotations

import dataclasses
import itertools
from pathlib import Path

from medtransfer.errors import ConfigError
from medtransfer.study.config import StudyConfig
from medtransfer.study.store import StudyStore


def choose_folder(config: StudyConfig, folder: Path, new_folder: bool) -> Path:
    """``folder`` when it is new, empty or holds a study of ``config``; a damaged store or a folder of something
    else is refused, and one of another configuration too unless ``new_folder``."""
    store = StudyStore(folder)
    if store.exists():
        store.check()
        stored = store.meta().get("config_hash")
        as_made = dataclasses.replace(config, recommend=store.config().get("recommend", "argmax"))
        if (stored not in (config.hash(), as_made.hash(with_rule=True))
                and not _same_but_spelling(store.config(), config.to_dict())):
            if new_folder:
                return folder_beside(config, folder)
            old = store.config()
            changed = sorted(k for k, v in config.to_dict().items() if old.get(k) != v and k != "recommend")
            raise ConfigError(
                f"{folder} holds a study with another configuration (differs in: {', '.join(changed) or 'details'}). "
                f"Rerun with its settings to resume, pass --new-folder to write beside it, or choose another --out."
            )
    elif folder.is_file():
        raise ConfigError(f"{folder} is a file; give a folder for the study")
    elif folder.is_dir() and any(folder.iterdir()):
        raise ConfigError(f"{folder} is not empty and holds no study; choose an empty or new folder")
    return folder


def folder_beside(config: StudyConfig, folder: Path) -> Path:
    """The folder a new study of ``config`` starts in beside ``folder``: the first free ``folder-2``, ``-3``, …"""
    return choose_folder(config, _free_folder(folder), False)


def _free_folder(folder: Path) -> Path:
    for i in itertools.count(2):
        candidate = folder.with_name(f"{folder.name}-{i}")
        if not candidate.exists():
            return candidate
    raise AssertionError  # pragma: no cover


def _same_but_spelling(stored: dict, given: dict) -> bool:
    """Whether two study configurations differ only in how they name the same data folder or file
    (``../data/x`` and ``/abs/data/x``); the data fingerprint still checks that its content is unchanged."""
    a, b = stored.get("data"), given.get("data")
    if not (a and b and Path(a).exists() and Path(b).exists()):
        return False
    return Path(a).resolve() == Path(b).resolve() and {**stored, "data": b} == given
