"""Successive halving (``search="halving"``): real trials on generated images pause at every rung; the better half
of the strategies resume. The store's records follow the rule, a surviving trial's epochs are those it has in the
grid, and a study killed mid-search resumes the same search."""

import json

import numpy as np
import pytest
import torch

from medtransfer import TrainConfig
from medtransfer.report import write_report
from medtransfer.strategies import by_depth
from medtransfer.study import Study, StudyConfig
from medtransfer.study.folder import PAUSED
from medtransfer.study.halving import HalvingSearch, TrialStanding, rung_epochs
from medtransfer.study.trial_loop import StudyInterrupted
from medtransfer.study.store import StudyStore

#: 8 epochs: rungs at epochs 1, 2 and 4 (r = 8 / 2³)
HALVING = TrainConfig(epochs=8, batch_size=8, patience=None, warmup_epochs=1)
STRATEGIES = ["linear", "tune:1", "tune:2", "full"]
SEEDS = [0, 1]


def _config(folder, search="halving", strategies=STRATEGIES):
    return StudyConfig(data=str(folder), input_size=32, fractions=[1.0], seeds=SEEDS, train=HALVING,
                       strategies=strategies, search=search)


def _best_so_far(history: list[dict], epoch: int) -> float:
    return max(h["val_auc"] for h in history if h["epoch"] <= epoch)


@pytest.fixture(scope="module")
def halved(shape_folder, tmp_path_factory):
    folder = tmp_path_factory.mktemp("halving") / "s"
    study = Study(_config(shape_folder), folder, device="cpu", executor="local")
    assert len(study.pending()) == len(STRATEGIES) * len(SEEDS)  # every trial starts
    return study, study.run(log=lambda *_: None)


def test_halving_keeps_the_better_half_of_the_strategies_at_each_rung(halved):
    study, summary = halved
    assert rung_epochs(8, 2) == [1, 2, 4] and rung_epochs(30, 2) == [4, 8, 16] and rung_epochs(30, 3) == [1, 3, 9, 27]
    store = StudyStore(study.folder)
    trials, histories = study.results(), store.histories()
    assert set(trials.status) == {"done"} and len(trials) == len(STRATEGIES) * len(SEEDS)
    assert not (study.folder / PAUSED).exists()  # no paused trial is left once the search has ended

    # the synchronous rule, checked on the store alone: at each rung the strategies still going are ranked by their
    # mean (over seeds) best validation AUC up to the rung, and the best half of them (at least one) go on
    alive = list(STRATEGIES)
    for rung, epoch in enumerate([1, 2, 4]):
        mean = {s: np.mean([_best_so_far(histories[f"{s}|1|{seed}"], epoch) for seed in SEEDS]) for s in alive}
        keep = sorted(alive, key=lambda s: -mean[s])[:max(1, len(alive) // 2)]
        for s in alive:
            for seed in SEEDS:
                t = trials.set_index("id").loc[f"{s}|1|{seed}"]
                marked = [h for h in histories[f"{s}|1|{seed}"] if h["epoch"] == epoch][0]
                assert marked["rung"] == rung and marked["promoted"] == (s in keep), (s, rung, mean)
                if s not in keep:  # stopped where it lost, and tested on its best weights up to there
                    assert t.stopped == "pruned" and t.epochs_run == epoch
                    assert t.val_score == pytest.approx(_best_so_far(histories[t.name], epoch), abs=1e-6)
                    assert 0.0 <= t.test_auc <= 1.0 and t.seconds > sum(h["seconds"] for h in histories[t.name])
        alive = keep
    assert len(alive) == 1
    winner = alive[0]
    complete = trials[trials.stopped != "pruned"]
    assert set(complete.strategy) == {winner} and set(complete.epochs_run) == {HALVING.epochs}
    assert summary.recommended == winner and list(summary.table.strategy) == [winner]
    assert summary.skipped(1.0) == by_depth(set(STRATEGIES) - {winner})  # hatched in the figure
    assert {p.name for p in (study.folder / "models").iterdir()} == {winner.replace(":", "-")}
    # 2 strategies × 2 seeds stop at epoch 1, 1 × 2 at epoch 2, the winner's 2 train 8: 3/8 of the grid's epochs
    assert trials.epochs_run.sum() == 2 * 2 * 1 + 1 * 2 * 2 + 1 * 2 * 8
    stopped = summary.search["pruned"]
    assert summary.search["kind"] == "halving" and len(stopped) == len(STRATEGIES) * len(SEEDS) - len(SEEDS)
    text = write_report(study.folder).read_text()
    assert "Successive halving" in text and f"{len(stopped)} trials stopped at a rung" in text
    assert json.loads((study.folder / "summary.json").read_text())["search"]["rate"] == 2


def test_a_trial_that_survives_every_rung_trains_as_it_does_in_the_grid(halved, shape_folder, tmp_path):
    """Paused at three rungs and resumed three times, the winner's epochs are the uninterrupted run's, number for
    number: the pause keeps the weights, optimiser, schedule, weight average and every random state."""
    study, summary = halved
    winner = summary.recommended
    grid = Study(_config(shape_folder, "grid", [winner]), tmp_path / "grid", device="cpu", executor="local")
    grid.run(log=lambda *_: None)
    halved_curves, grid_curves = StudyStore(study.folder).histories(), StudyStore(tmp_path / "grid").histories()
    for seed in SEEDS:
        a, b = halved_curves[f"{winner}|1|{seed}"], grid_curves[f"{winner}|1|{seed}"]
        assert [h["epoch"] for h in a] == [h["epoch"] for h in b] == list(range(1, 9))
        for key in ("train_loss", "val_loss", "val_auc", "lr"):
            np.testing.assert_allclose([h[key] for h in a], [h[key] for h in b], rtol=1e-5, atol=1e-6, err_msg=key)
    a = study.results().set_index("id")
    b = grid.results().set_index("id")
    for seed in SEEDS:
        tid = f"{winner}|1|{seed}"
        assert a.loc[tid, "test_auc"] == pytest.approx(b.loc[tid, "test_auc"], abs=1e-6)


def test_a_killed_search_resumes_the_same_search(halved, shape_folder, tmp_path):
    study, _ = halved
    lines = []

    def kill_at_the_tenth_pause(line):  # the second trial paused at rung 1: rung 0's losers are recorded
        lines.append(line)
        if sum("⏸" in x for x in lines) == 10:
            raise KeyboardInterrupt

    killed = Study(_config(shape_folder), tmp_path / "s", device="cpu", executor="local")
    with pytest.raises(StudyInterrupted):
        killed.run(log=kill_at_the_tenth_pause)
    assert len(killed.results()) == 4  # rung 0's losers, recorded as they paused
    assert len(list((tmp_path / "s" / PAUSED).glob("*.pt"))) == 4  # the survivors: two at rung 1, two at rung 0
    resumed = Study(_config(shape_folder), tmp_path / "s", device="cpu", executor="local")
    pending = resumed.pending()  # the two survivors of rung 0 that had not reached rung 1, from their pause there
    assert len(pending) == 2 and {t.rung for t in pending} == {1}
    for t in pending:
        saved = torch.load(tmp_path / "s" / PAUSED / f"{t.id.replace('|', '_').replace(':', '-')}.pt",
                           weights_only=False)
        assert saved["record"]["history"][-1]["rung"] == 0 and saved["resume"]["fit"]["epoch"] == 1
        assert "test_metrics" not in saved["record"]  # a trial is tested where it ends, not at a pause
    resumed.run(log=lambda *_: None)
    a = resumed.results().set_index("id").sort_index()
    b = study.results().set_index("id").sort_index()
    assert list(a.index) == list(b.index)
    assert list(a.stopped) == list(b.stopped) and list(a.epochs_run) == list(b.epochs_run)
    np.testing.assert_allclose(a.val_score, b.val_score, atol=1e-6)


def test_the_search_counts_a_failed_trial_as_the_worst_and_asks_for_every_trial_behind_the_rung():
    """The planner on hand-made standings: trials not at rung 0 yet are asked for; then the best half by mean
    best-so-far score goes on, a failed trial losing."""
    search = HalvingSearch(["a", "b", "c", "d"], [1.0], [0], higher_is_better=True, rate=2)

    def history(*scores):
        return [{"epoch": e, "val_auc": v, **({"rung": 0} if e == len(scores) else {})}
                for e, v in enumerate(scores, start=1)]

    paused = {"a": TrialStanding(rung=0, history=history(0.6)), "b": TrialStanding()}
    first = search.next_round(lambda s, f, seed: paused.get(s, TrialStanding()), "val_auc")
    assert sorted(w[0] for w in first.work) == ["b", "c", "d"] and all(w[3] == 0 for w in first.work)
    at_rung = {"a": TrialStanding(rung=0, history=history(0.6)), "b": TrialStanding(rung=0, history=history(0.9)),
               "c": TrialStanding(done=True, failed=True), "d": TrialStanding(rung=0, history=history(0.7))}
    second = search.next_round(lambda s, f, seed: at_rung[s], "val_auc")
    assert second.stop == [("a", 1.0, 0)]  # b and d go on; c is recorded already (failed)
    assert second.work == [("b", 1.0, 0, 1), ("d", 1.0, 0, 1)]


def test_the_search_takes_one_fraction_at_a_time_and_fills_a_short_round_with_the_next():
    search = HalvingSearch(["a", "b"], [1.0, 0.5], [0], higher_is_better=True, rate=2)
    fresh = search.next_round(lambda s, f, seed: TrialStanding(), "val_auc", width=2)
    assert fresh.work == [("a", 1.0, 0, 0), ("b", 1.0, 0, 0)]  # 0.5 waits: fewer trials paused on disk
    rung0 = [{"epoch": 1, "val_auc": 0.9, "rung": 0}]

    def standing(s, f, seed):  # at 100 %: b lost rung 0 and is recorded; a goes on alone
        if f == 1.0:
            return TrialStanding(rung=0, history=rung0) if s == "a" else \
                TrialStanding(done=True, history=[{"epoch": 1, "val_auc": 0.5, "rung": 0}])
        return TrialStanding()

    later = search.next_round(standing, "val_auc", width=2)
    assert later.work == [("a", 1.0, 0, 1), ("a", 0.5, 0, 0), ("b", 0.5, 0, 0)] and later.stop == []
