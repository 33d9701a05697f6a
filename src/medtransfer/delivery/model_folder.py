"""Which saved model a delivery command means: a run folder, or a study folder's recommended model (or the model of
another strategy)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from medtransfer.errors import DataError


def model_folder(model: str | os.PathLike, strategy: str | None = None) -> Path:
    """The folder holding ``model.json`` + ``model.safetensors``: ``model`` itself (a run folder, or a study's
    ``models/<strategy>/``), or, for a study folder, ``models/<strategy>/`` of ``strategy`` (default: the strategy
    the study recommends, from its ``summary.json``)."""
    p = Path(model)
    if not p.is_dir():
        raise DataError(f"{p}: no such folder. Give a run folder (written by 'medtransfer train') or a study folder.")
    if (p / "model.json").is_file() or (p / "model.safetensors").is_file():
        if strategy is not None:
            raise DataError(f"{p}: a run folder holds one model; --strategy is for study folders")
        return p
    if not (p / "study.sqlite").is_file():
        raise DataError(f"{p}: neither a run folder (model.json) nor a study folder (study.sqlite); give the folder "
                        f"'medtransfer train' or 'medtransfer study' wrote.")
    kept = sorted(d.name for d in (p / "models").glob("*") if (d / "model.json").is_file())
    if strategy is None:
        try:
            strategy = json.loads((p / "summary.json").read_text()).get("recommended")
        except (OSError, json.JSONDecodeError):
            strategy = None
        if not strategy:
            raise DataError(f"{p}: the study has no recommended model yet (summary.json is missing or names none); "
                            f"run the study to its end, or pick a model with --strategy "
                            f"({', '.join(kept) or 'none saved'})")
    folder = p / "models" / strategy.replace(":", "-")
    if not (folder / "model.json").is_file():
        raise DataError(f"{folder}: no saved model of strategy {strategy!r} in this study; saved: "
                        f"{', '.join(kept) or _why_none(p)}")
    return folder


def _why_none(study: Path) -> str:
    """Why a study folder holds no saved model: it kept none (``--checkpoints none``), or its ``models/`` folder is
    gone (moved or deleted after the study ran)."""
    from medtransfer.study.store import StudyStore

    if StudyStore(study).config().get("checkpoints") == "none":
        return "none (the study ran with --checkpoints none)"
    if not (study / "models").is_dir():
        return (f"none, as {study / 'models'} is missing (moved or deleted). Restore that folder, or run the study "
                f"again with another --out to train and save the models again")
    return "none (the models/ folder holds no model.json)"
