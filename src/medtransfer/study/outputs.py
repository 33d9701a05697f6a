"""What a study run leaves for its reader: the summary tables, and a model card in every kept model's folder saying
why its strategy was (or was not) the one to deliver."""

from __future__ import annotations

import json

import pandas as pd

from medtransfer.engine import environment
from medtransfer.files import atomic_write
from medtransfer.model.card import write_model_card
from medtransfer.study.folder import MODEL_SPEC, StudyFolder
from medtransfer.study.recommend import rule_sentence
from medtransfer.study.store import StudyStore
from medtransfer.study.summary import StudySummary, study_task


def write_summary_files(folder: StudyFolder, summary: StudySummary, trials: pd.DataFrame) -> None:
    """``summary.csv`` (the table), ``summary.json`` (with the recommendation) and ``trials.csv`` (every trial)."""
    atomic_write(folder.summary_csv, summary.table.to_csv(index=False))
    atomic_write(folder.summary_json, json.dumps(summary.to_dict(), indent=2, default=float))
    atomic_write(folder.trials_csv, trials.to_csv(index=False))


def write_model_cards(folder: StudyFolder, store: StudyStore, summary: StudySummary, trials: pd.DataFrame) -> None:
    """``MODEL_CARD.md`` in every kept model's folder, saying why its strategy was (or was not) chosen."""
    meta = store.meta() if store.exists() else {}
    data = json.loads(meta.get("data") or "{}")
    env = json.loads(meta.get("environment") or "null") or environment()
    metric = study_task(store).scorer.metric
    for model in folder.kept_models():
        try:
            spec = json.loads((model / MODEL_SPEC).read_text())
        except (OSError, json.JSONDecodeError):
            continue
        s = spec.get("strategy")
        why = (f"the study's recommendation, by {rule_sentence(summary.rule, metric.label)}, among "
               f"{summary.table.strategy.nunique()} strategies (the test split was not used to choose)."
               if s == summary.recommended else
               f"kept by the study as the best validation trial of '{s}'; the study recommends "
               f"'{summary.recommended}' instead.")
        trial = trials[trials.id == spec.get("trial")] if len(trials) else trials
        used = {"train_used": int(trial.train_size.iloc[0])} if len(trial) else {}
        card = {**data, "counts": {**data.get("counts", {}), **used}}
        write_model_card(model, spec, spec.get("test_metrics", {}), card, env, choice=why, metric=metric.name)
