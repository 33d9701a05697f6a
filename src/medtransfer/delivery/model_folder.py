"""Which saved model a delivery command means: a run folder, or a study folder's recommended model (or the model of
another strategy)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from medtransfer.errors import DataError
from medtransfer.study.folder import MODEL_SPEC, MODELS, STORE, SUMMARY_JSON, StudyFolder
from medtransfer.study.store import StudyStore


def saved_model_folder(model: str | os.PathLike, strategy: str | None = None) -> Path:
    """The folder holding ``model.json`` + ``model.safetensors``: ``model`` itself (a run folder, or a study's
    ``models/<strategy>/``), or, for a study folder, ``models/<strategy>/`` of ``strategy`` (default: the strategy
    the study recommends, from its ``summary.json``)."""
    p = Path(model)
    if not p.is_dir():
        raise DataError(f"{p}: no such folder. Give a run folder (written by 'medtransfer train') or a study folder.")
    if (p / MODEL_SPEC).is_file() or (p / "model.safetensors").is_file():
        if strategy is not None:
            raise DataError(f"{p}: a run folder holds one model; --strategy is for study folders")
        return p
    study = StudyFolder(p)
    if not study.is_study():
        raise DataError(f"{p}: neither a run folder ({MODEL_SPEC}) nor a study folder ({STORE}); give the folder "
                        f"'medtransfer train' or 'medtransfer study' wrote.")
    kept = [d.name for d in study.kept_models()]
    if strategy is None:
        strategy = _recommended(study)
        if not strategy:
            raise DataError(f"{p}: the study has no recommended model yet ({SUMMARY_JSON} is missing or names none); "
                            f"run the study to its end, or pick a model with --strategy "
                            f"({', '.join(kept) or 'none saved'})")
    folder = study.strategy_model(strategy)
    if not (folder / MODEL_SPEC).is_file():
        raise DataError(f"{folder}: no saved model of strategy {strategy!r} in this study; saved: "
                        f"{', '.join(kept) or _why_none(study)}")
    return folder


def _recommended(study: StudyFolder) -> str | None:
    """The strategy the study recommends, from its ``summary.json`` (None when it is missing or damaged)."""
    try:
        return json.loads(study.summary_json.read_text()).get("recommended")
    except (OSError, json.JSONDecodeError):
        return None


def _why_none(study: StudyFolder) -> str:
    """Why a study folder holds no saved model: it kept none (``--checkpoints none``), or its ``models/`` folder is
    gone (moved or deleted after the study ran)."""
    if StudyStore(study.path).config().get("checkpoints") == "none":
        return "none (the study ran with --checkpoints none)"
    if not study.models.is_dir():
        return (f"none, as {study.models} is missing (moved or deleted). Restore that folder, or run the study "
                f"again with another --out to train and save the models again")
    return f"none (the {MODELS}/ folder holds no {MODEL_SPEC})"
