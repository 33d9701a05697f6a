"""The trial engine on generated images: a strategy's earlier stages (lp-ft's linear probe) run through the strategy
hook and not again on resume, a paused state survives a file, and each trial carries its own training subset."""

import io

import numpy as np
import torch

from medtransfer import RunConfig, TrainConfig
from medtransfer.engine import TrialImages, prepare_data, run_trial, trial_subset
from medtransfer.strategies import Strategy, parse_strategy

TINY = TrainConfig(epochs=2, batch_size=8, patience=None, warmup_epochs=1, ema_decay=None)


def _setup(folder, **config):
    cfg = RunConfig(data=str(folder), input_size=32, augmentation="none", precision="fp32", train=TINY, **config)
    prepared = prepare_data(cfg)
    return cfg, prepared, TrialImages.load(prepared, cfg.input_size)


def test_only_lp_ft_has_a_stage_before_its_own():
    assert [(s.name, s.strategy) for s in parse_strategy("lp-ft").stages] == [("linear_probe", Strategy("linear"))]
    assert all(not parse_strategy(s).stages for s in ("scratch", "linear", "tune:2", "full", "surgical:2"))


def test_a_paused_lp_ft_trial_resumes_from_a_file_without_its_probe_and_ends_as_the_uninterrupted_one(shape_folder):
    cfg, prepared, images = _setup(shape_folder, strategy="lp-ft", train_fraction=0.5)
    whole = run_trial(cfg, prepared, images)
    paused = run_trial(cfg, prepared, images, on_epoch=lambda epoch, epochs, score: {"pause": epoch == 1})
    assert paused.fit.stopped == "paused" and paused.test_metrics == {}
    buf = io.BytesIO()
    torch.save(paused.resume_state(), buf)  # as a study keeps a paused trial: a plain dict in a file
    saved = torch.load(io.BytesIO(buf.getvalue()), weights_only=False)
    assert saved["fit"]["epoch"] == 1 and set(saved["stages"]) == {"linear_probe"}
    resumed = run_trial(cfg, prepared, images, resume=saved)
    assert [h["train_loss"] for h in resumed.fit.history] == [h["train_loss"] for h in whole.fit.history]
    assert all(torch.equal(a, b) for a, b in zip(resumed.net.suffix.state_dict().values(),
                                                  whole.net.suffix.state_dict().values()))
    assert resumed.test_metrics == whole.test_metrics
    # the probe is the paused run's, carried over, not trained again
    assert resumed.spec["linear_probe"] == paused.spec["linear_probe"]
    assert resumed.spec["linear_probe"]["epochs"] == TINY.epochs and whole.spec["strategy"] == "lp-ft"
    # the trial carries its own training subset: half of the training split, the one its seed draws
    np.testing.assert_array_equal(whole.train_idx, trial_subset(cfg, prepared))
    assert len(whole.train_idx) < len(prepared.split.train)


def test_a_study_card_counts_the_training_split_and_a_run_card_its_own_subset(shape_folder):
    cfg, prepared, _ = _setup(shape_folder, strategy="linear", train_fraction=0.25)
    study = prepared.card()
    assert study["counts"] == prepared.split.counts() and "train_used" not in study["counts"]
    assert sum(study["per_class"]["train"].values()) == len(prepared.split.train)
    subset = trial_subset(cfg, prepared)
    run = prepared.card(subset)
    assert run["counts"]["train_used"] == len(subset) < run["counts"]["train"]
    assert sum(run["per_class"]["train_used"].values()) == len(subset)
