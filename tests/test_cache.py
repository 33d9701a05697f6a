"""The frozen-prefix cache: same results as recomputing the prefix, and never reused when the prefix changes."""

import pytest
from generated import assert_cache_changes_nothing, trial_setup

from medtransfer import RunConfig, TrainConfig
from medtransfer.engine import TrialImages, build_cache, cache_key, run_trial
from medtransfer.strategies import parse_strategy

EPOCHS = TrainConfig(epochs=3, batch_size=8, patience=None, warmup_epochs=1)


def _setup(folder, **kw):
    return trial_setup(folder, 32, EPOCHS, **kw)


@pytest.mark.parametrize("strategy, fold", [("linear", True), ("tune:2", True), ("tune:2", False)])
def test_cached_trial_matches_the_uncached_one(shape_folder, strategy, fold):
    """With BatchNorm folded (the default) or not, as long as cache and trainer agree."""
    cfg, prepared, images = _setup(shape_folder, strategy=strategy, seed=1, fold_batchnorm=fold)
    cache = build_cache(cfg, prepared, images, [parse_strategy(strategy)])
    assert cache is not None and cache.views == 1
    assert_cache_changes_nothing(cfg, prepared, images, cache, "auc")


def test_one_cache_serves_every_depth_and_skips_scratch_and_full(shape_folder):
    cfg, prepared, images = _setup(shape_folder, strategy="linear")
    strategies = [parse_strategy(s) for s in ("scratch", "linear", "tune:1", "tune:3", "full")]
    cache = build_cache(cfg, prepared, images, strategies)
    assert sorted(cache.train) == [5, 7, 8]  # frozen groups of tune:3, tune:1, linear
    for name in ("scratch", "full"):
        c = RunConfig(**{**cfg.__dict__, "strategy": name})
        assert not run_trial(c, prepared, images, cache=cache).fit.cached


def test_cache_key_changes_with_everything_that_changes_the_prefix(shape_folder, tmp_path):
    cfg, prepared, images = _setup(shape_folder, strategy="linear")
    cache = build_cache(cfg, prepared, images, [parse_strategy("linear")])
    backbone = cache.backbone
    base = cache_key(cfg, backbone, images)
    assert cache.covers(base, 8)

    def changed(**kw):
        return cache_key(RunConfig(**{**cfg.__dict__, **kw}), backbone, images)

    assert not cache.covers(changed(augmentation="light"), 8)  # views and preprocessing
    assert not cache.covers(changed(input_size=48), 8)
    assert not cache.covers(changed(fold_batchnorm=False), 8)  # unfolded BatchNorm rounds differently
    # other weights: a file
    from safetensors.torch import save_file

    save_file(backbone.model.state_dict(), str(tmp_path / "w.safetensors"))
    assert not cache.covers(changed(weights=str(tmp_path / "w.safetensors")), 8)
    # other images (another resize of the same data)
    other = TrialImages.load(prepared, 40)
    assert not cache.covers(cache_key(cfg, backbone, other), 8)
    # other normalisation
    from dataclasses import replace as dc_replace

    shifted = dc_replace(backbone, mean=(0.4, 0.4, 0.4))
    assert not cache.covers(cache_key(cfg, shifted, images), 8)
    # and a trial whose key differs recomputes its prefix instead of reading the cache
    c = RunConfig(**{**cfg.__dict__, "augmentation": "light"})
    assert not run_trial(c, prepared, images, cache=cache).fit.cached


def test_over_budget_spills_to_disk_or_is_skipped(shape_folder, tmp_path):
    cfg, prepared, images = _setup(shape_folder, strategy="tune:1")
    spilled = build_cache(cfg, prepared, images, [parse_strategy("tune:1")], memory_budget=1, spill_dir=tmp_path)
    assert spilled.storage == "memmap" and list(tmp_path.rglob("*.npy"))
    assert run_trial(cfg, prepared, images, cache=spilled).fit.cached
    notes = []
    assert build_cache(cfg, prepared, images, [parse_strategy("tune:1")], memory_budget=1, log=notes.append) is None
    assert "cache off" in notes[0]
