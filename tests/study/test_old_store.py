"""A study folder written before per-case records became task-neutral (schema 1) still resumes, summarises and
reports: its old rows are read as they are, the new trials are written in the new form beside them."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest
import torch
from generated import write_mask_folder, write_shape_folder

from medtransfer import TrainConfig
from medtransfer.report import write_report
from medtransfer.study import Study, StudyConfig

FIXTURES = Path(__file__).parent / "fixtures"
CASES = {
    "classification": ("schema1-classification.sqlite", "shapes", "49d0848bda08c551", "auc"),
    "segmentation": ("schema1-segmentation.sqlite", "blobs", "d522abe6891cd28d", "dice"),
}


@pytest.mark.parametrize("task", list(CASES))
def test_a_schema_1_study_resumes(task, tmp_path, monkeypatch):
    fixture, data, old_hash, metric = CASES[task]
    monkeypatch.chdir(tmp_path)  # the old studies name their data by a relative path
    if data == "shapes":
        write_shape_folder(Path("shapes"), n_per_class=12, seed=0)
    else:
        write_mask_folder(Path("blobs"), n=20, seed=0, size=32)
    (tmp_path / "study").mkdir()
    shutil.copy(FIXTURES / fixture, tmp_path / "study" / "study.sqlite")

    config = StudyConfig(data=data, strategies=["linear", "full"], fractions=[1.0], seeds=[0], input_size=32,
                         train=TrainConfig(epochs=1, batch_size=8), checkpoints="none")
    assert config.hash() == old_hash  # the same settings are the same study
    study = Study(config, "study", device="cpu")
    assert [t.strategy for t in study.pending()] == ["full"]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        summary = study.run(log=lambda *_: None)
    finally:
        torch.set_num_threads(threads)

    trials = study.results()
    assert sorted(trials.strategy) == ["full", "linear"] and set(trials.status) == {"done"}
    assert set(summary.table.strategy) == {"linear", "full"} and summary.metric.name == metric
    # the old trial's cases were read through the task; the paired comparison needs both trials' cases
    assert [c.b for c in summary.comparisons] and summary.table[f"test_{metric}_low"].notna().all()
    with sqlite3.connect(tmp_path / "study" / "study.sqlite") as con:
        assert con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()[0] == "3"
        assert con.execute("SELECT trial_id FROM cases").fetchall() == [("full|1|0",)]  # old rows left as they were
        assert con.execute("SELECT trial_id FROM val_cases").fetchall() == [("full|1|0",)]
        assert con.execute("SELECT trial_id FROM predictions").fetchall() == [("linear|1|0",)]
    text = write_report(tmp_path / "study").read_text()
    assert summary.metric.label in text
    assert json.loads((tmp_path / "study" / "summary.json").read_text())["metric"] == metric
