"""Successive halving (``search="halving"``): real trials on generated images, judged at their rungs by Optuna's
pruner; the store's records follow the rule, the comparison leaves the pruned trials out, and a resumed study
rebuilds the journal from the store and judges the rerun trial as before."""

import json
import shutil
import sqlite3

import numpy as np

from medtransfer import TrainConfig
from medtransfer.report import write_report
from medtransfer.strategies import by_depth
from medtransfer.study import Study, StudyConfig
from medtransfer.study.halving import JOURNAL, rung_epochs
from medtransfer.study.store import StudyStore

#: 8 epochs: rungs at epochs 1, 2 and 4 (r = 8 / 2³)
HALVING = TrainConfig(epochs=8, batch_size=8, patience=None, warmup_epochs=1)
STRATEGIES = ["linear", "tune:2", "full"]


def _config(folder):
    return StudyConfig(data=str(folder), input_size=32, fractions=[1.0], seeds=[0, 1], train=HALVING,
                       strategies=STRATEGIES, search="halving")


def _judged(store: StudyStore, trial_id: str) -> list[tuple[int, int, float, bool]]:
    """(rung, epoch, validation AUC, promoted) at each rung a trial reached."""
    return [(h["rung"], h["epoch"], h["val_auc"], h["promoted"]) for h in store.histories()[trial_id] if "rung" in h]


def test_halving_stops_the_worse_trials_at_their_rungs_and_resumes_from_the_store(shape_folder, tmp_path):
    assert rung_epochs(8, 2) == [1, 2, 4] and rung_epochs(30, 2) == [4, 8, 16] and rung_epochs(30, 3) == [1, 3, 9, 27]
    study = Study(_config(shape_folder), tmp_path / "s", device="cpu", executor="local")
    assert len(study.pending()) == len(STRATEGIES) * 2  # every trial starts
    summary = study.run(log=lambda *_: None)
    store = StudyStore(tmp_path / "s")
    trials = study.results()
    assert set(trials.status) == {"done"}
    pruned = trials[trials.stopped == "pruned"]
    assert 0 < len(pruned) < len(trials)

    # the asynchronous rule, checked on the store alone: at each rung a trial goes on iff its score is among the best
    # 1/2 of the scores at that rung of the trials recorded before it and itself (the first at a rung always goes on)
    seen: dict[int, list[float]] = {}
    for t in trials.itertuples():  # in the order they finished, which one worker makes the order they ran
        judged = _judged(store, t.id)
        assert [e for _, e, _, _ in judged] == [1, 2, 4][:len(judged)]
        for rung, epoch, score, promoted in judged:
            rivals = sorted(seen.setdefault(rung, []) + [score])
            assert promoted == (score >= rivals[-max(len(rivals) // 2, 1)]), (t.id, rung, rivals)
            seen[rung].append(score)
        if t.stopped == "pruned":  # stopped at the rung it lost, and that rung is its last epoch
            assert judged[-1][3] is False and t.epochs_run == judged[-1][1]
        else:
            assert all(p for *_, p in judged) and t.epochs_run == HALVING.epochs

    # the comparison holds only the trials that trained to the end; pruned-only strategies have no model
    complete = trials[trials.stopped != "pruned"]
    assert sorted(summary.table.strategy) == sorted(set(complete.strategy))
    for row in summary.table.itertuples():
        assert row.seeds == int((complete.strategy == row.strategy).sum())
    assert summary.recommended in set(complete.strategy)
    assert summary.skipped(1.0) == by_depth(set(pruned.strategy) - set(complete.strategy))  # hatched in the figure
    kept = {p.name for p in (tmp_path / "s" / "models").iterdir()}
    assert kept == {s.replace(":", "-") for s in complete.strategy}
    stopped = summary.search["pruned"]
    assert summary.search["kind"] == "halving" and len(stopped) == len(pruned)
    assert {(p["strategy"], p["seed"], p["epoch"]) for p in stopped} == \
        {(t.strategy, int(t.seed), int(t.epochs_run)) for t in pruned.itertuples()}
    text = write_report(tmp_path / "s").read_text()
    assert "Successive halving" in text and f"{len(pruned)} trials stopped at a rung" in text
    assert json.loads((tmp_path / "s" / "summary.json").read_text())["search"]["rate"] == 2

    # resume: without its last trial (and with the journal still holding it, as a killed run leaves it), the
    # study reruns that trial alone, against the rivals the store holds, and judges it as before
    last = trials.iloc[-1]
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "s", copy)
    assert (copy / JOURNAL).exists()
    with sqlite3.connect(copy / "study.sqlite") as con:
        for table, key in (("trials", "id"), ("curves", "trial_id"), ("cases", "trial_id"), ("val_cases", "trial_id")):
            con.execute(f"DELETE FROM {table} WHERE {key} = ?", (last.id,))
    resumed = Study(_config(shape_folder), copy, device="cpu", executor="local")
    assert [t.id for t in resumed.pending()] == [last.id]
    resumed.run(log=lambda *_: None)
    again = resumed.results().set_index("id").loc[last.id]
    assert again.stopped == last.stopped and again.epochs_run == last.epochs_run
    np.testing.assert_allclose([s for _, _, s, _ in _judged(StudyStore(copy), last.id)],
                               [s for _, _, s, _ in _judged(store, last.id)], atol=1e-6)
    assert [p for *_, p in _judged(StudyStore(copy), last.id)] == [p for *_, p in _judged(store, last.id)]
