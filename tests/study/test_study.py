"""Studies on generated images: the grid, the store, resume, configuration changes, failures, damage."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pandas as pd
import pytest

from medtransfer import TrainConfig
from medtransfer.errors import ConfigError
from medtransfer.study import StoreError, Study, StudyConfig
from medtransfer.study.store import StudyStore

TINY = TrainConfig(epochs=2, batch_size=8, patience=None, warmup_epochs=1)


def _config(folder, **kw):
    base = dict(data=str(folder), input_size=32, strategies=["scratch", "linear", "tune:2"], fractions=[1.0, 0.5],
                seeds=[0], train=TINY)
    return StudyConfig(**{**base, **kw})


def test_study_runs_the_grid_stores_it_and_resumes(shape_folder, tmp_path):
    study = Study(_config(shape_folder), tmp_path / "s", device="cpu")
    assert len(study.plan()) == 6 and study.plan()[0].fraction == 1.0
    summary = study.run(log=lambda *_: None)
    results = study.results()
    assert isinstance(results, pd.DataFrame) and len(results) == 6 and set(results.status) == {"done"}
    assert results.test_auc.between(0, 1).all() and (results.test_auc_low <= results.test_auc_high).all()
    assert set(summary.table.strategy) == {"scratch", "linear", "tune:2"}
    assert summary.recommended in {"scratch", "linear", "tune:2"}
    assert {c.b for c in summary.comparisons} >= {"scratch"} - {summary.recommended}
    for name in ("summary.csv", "summary.json", "trials.csv"):
        assert (tmp_path / "s" / name).is_file()
    meta = StudyStore(tmp_path / "s").meta()
    assert "torch" in meta["environment"] and meta["config_hash"] == study.config.hash()
    assert len(StudyStore(tmp_path / "s").curves()) == 6 * 2  # every epoch of every trial
    # one checkpoint per strategy, not per trial
    assert sorted(p.name for p in (tmp_path / "s" / "models").iterdir()) == ["linear", "scratch", "tune-2"]

    again = Study(_config(shape_folder), tmp_path / "s", device="cpu")
    assert again.pending() == []
    started = time.perf_counter()
    again.run(log=lambda *_: None)
    assert time.perf_counter() - started < 15  # nothing retrained
    assert len(again.results()) == 6


def test_changed_config_is_refused_or_written_beside(shape_folder, tmp_path):
    Study(_config(shape_folder, strategies=["linear"], fractions=[1.0]), tmp_path / "s", device="cpu").run(log=lambda *_: None)
    changed = _config(shape_folder, strategies=["linear"], fractions=[1.0], input_size=48)
    with pytest.raises(ConfigError, match="another configuration.*input_size"):
        Study(changed, tmp_path / "s", device="cpu").run(log=lambda *_: None)
    beside = Study(changed, tmp_path / "s", device="cpu", new_folder=True)
    assert beside.folder == tmp_path / "s-2"
    # the same data folder named another way (relative instead of absolute) is the same study: it resumes
    relative = os.path.relpath(shape_folder, os.getcwd())
    assert relative != str(shape_folder)
    same = Study(_config(relative, strategies=["linear"], fractions=[1.0]), tmp_path / "s", device="cpu")
    assert same.folder == tmp_path / "s" and same.pending() == []


def test_a_failing_trial_is_recorded_and_the_study_goes_on(shape_folder, tmp_path):
    cfg = _config(shape_folder, strategies=["linear", "full"], fractions=[1.0],
                  train=TrainConfig(epochs=2, batch_size=8, lr=1e30, patience=None))
    summary = Study(cfg, tmp_path / "s", device="cpu").run(log=lambda *_: None)
    assert len(summary.failed) == 2
    assert summary.failed.error.str.contains("non-finite").all()


def test_damaged_database_is_reported_not_overwritten(shape_folder, tmp_path):
    folder = tmp_path / "s"
    folder.mkdir()
    db = folder / "study.sqlite"
    db.write_bytes(b"this is not sqlite" * 100)
    before = db.read_bytes()
    with pytest.raises(StoreError, match="damaged"):
        Study(_config(shape_folder), folder, device="cpu").run(log=lambda *_: None)
    assert db.read_bytes() == before


def test_config_validation_lists_every_mistake(tmp_path):
    with pytest.raises(ConfigError) as err:
        StudyConfig(data="x", strategies=["tune:x", "linear"], fractions=[1.5, 0.5], checkpoints="some")
    text = str(err.value)
    assert "tune:x" in text and "1.5" in text and "checkpoints" in text
    yaml_file = tmp_path / "study.yaml"
    yaml_file.write_text("data: x\nfractons: [1.0]\n")
    with pytest.raises(ConfigError, match="unknown setting.*fractons"):
        StudyConfig.from_yaml(yaml_file)
    yaml_file.write_text("data: x\nfractions: [1.0\n")
    with pytest.raises(ConfigError, match="line"):
        StudyConfig.from_yaml(yaml_file)


def test_unwritable_folder_is_a_clear_error(shape_folder, tmp_path):
    if os.geteuid() == 0:
        target = "/proc/medtransfer-study"  # root ignores permissions; /proc refuses everyone
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "s")
    with pytest.raises(StoreError, match="cannot create the study folder"):
        Study(_config(shape_folder), target, device="cpu").run(log=lambda *_: None)


def _study_cmd(folder, out):
    return [sys.executable, "-m", "medtransfer.cli", "study", "--data", str(folder), "--out", str(out),
            "--strategies", "scratch,full", "--fractions", "1", "--seeds", "3", "--input-size", "48",
            "--epochs", "4", "--quiet", "--device", "cpu"]


def _count(db) -> int:
    try:
        with sqlite3.connect(db) as c:
            return c.execute("SELECT count(*) FROM trials").fetchone()[0]
    except sqlite3.Error:
        return 0


@pytest.mark.slow
def test_sigkill_mid_trial_then_resume_gives_the_uninterrupted_table(shape_folder, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    clean = subprocess.run(_study_cmd(shape_folder, tmp_path / "clean"), env=env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stderr

    proc = subprocess.Popen(_study_cmd(shape_folder, tmp_path / "killed"), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = tmp_path / "killed" / "study.sqlite"
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and _count(db) < 2:
        time.sleep(0.05)
    time.sleep(0.3)  # into the next trial
    assert proc.poll() is None, "the study finished before it could be killed"
    at_kill = _count(db)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= _count(db) == at_kill < 6  # what was recorded stays; the trial in flight is simply absent

    resumed = subprocess.run(_study_cmd(shape_folder, tmp_path / "killed"), env=env, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    assert f"{at_kill} already done" in " ".join(resumed.stdout.split())
    a = pd.read_csv(tmp_path / "clean" / "summary.csv")
    b = pd.read_csv(tmp_path / "killed" / "summary.csv")
    pd.testing.assert_frame_equal(a.drop(columns=["seconds"]), b.drop(columns=["seconds"]))
