"""The layer-wise search on generated images built to saturate, its resume, and the opt-in strategies in a study."""

import dataclasses
import json
import shutil
import sqlite3

import numpy as np
import pytest
from PIL import Image

from medtransfer import TrainConfig
from medtransfer.report import write_report
from medtransfer.study import Study, StudyConfig
from medtransfer.study.store import StudyStore

QUICK = TrainConfig(epochs=3, batch_size=8, patience=None, warmup_epochs=1)
#: enough steps for a linear head to separate the saturating set (12 steps of 1e-3 leave a random head's sign)
SEARCH = TrainConfig(epochs=6, batch_size=8, patience=None, warmup_epochs=1, lr=3e-3)


@pytest.fixture(scope="module")
def saturating(tmp_path_factory):
    """Dark and bright images: the frozen backbone separates them perfectly, so no depth can improve on linear."""
    root = tmp_path_factory.mktemp("saturating") / "data"
    rng = np.random.default_rng(0)
    for name, level in (("dark", 40), ("bright", 200)):
        (root / name).mkdir(parents=True)
        for i in range(40):
            img = np.clip(rng.normal(level, 12, (32, 32)), 0, 255).astype(np.uint8)
            Image.fromarray(img).save(root / name / f"{name}_{i:02d}.png")
    return root


def _config(folder, **kw):
    base = dict(data=str(folder), input_size=32, fractions=[1.0], seeds=[0], train=SEARCH, search="layerwise",
                patience_depth=2)
    return StudyConfig(**{**base, **kw})


def test_layerwise_search_stops_where_the_data_saturate_and_resumes_the_same_search(saturating, tmp_path):
    study = Study(_config(saturating), tmp_path / "s", device="cpu", executor="local")
    assert [t.strategy for t in study.pending()] == ["scratch", "full", "linear"]  # the anchors and the first depth
    summary = study.run(log=lambda *_: None)
    trials = study.results()
    val = dict(zip(trials.strategy, trials.val_score))
    assert val["linear"] == 1.0  # the precondition: the data saturate at the shallowest depth
    # linear is the best; tune:1 and tune:2 cannot improve on it, so patience 2 stops the chain there
    assert sorted(trials.strategy) == sorted(["scratch", "full", "linear", "tune:1", "tune:2"])
    groups = study.num_groups  # tune:1 … tune:{groups - 1}
    assert summary.skipped(1.0) == [f"tune:{k}" for k in range(3, groups)]
    chain = summary.search["chains"][0]
    assert chain["stopped_after"] == "tune:2" and chain["best"] == "linear"
    assert study.pending() == []  # a finished search plans nothing more

    # resume mid-search: a copy of the study without its last round continues with exactly that round
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "s", copy)
    with sqlite3.connect(copy / "study.sqlite") as con:
        for table, key in (("trials", "id"), ("curves", "trial_id"), ("cases", "trial_id"), ("val_cases", "trial_id")):
            con.execute(f"DELETE FROM {table} WHERE {key} = 'tune:2|1|0'")
    resumed = Study(_config(saturating), copy, device="cpu", executor="local")
    assert [t.id for t in resumed.pending()] == ["tune:2|1|0"]
    resumed.run(log=lambda *_: None)
    assert sorted(resumed.results().strategy) == sorted(trials.strategy)
    assert resumed.summary().skipped(1.0) == summary.skipped(1.0)

    text = write_report(tmp_path / "s").read_text()
    assert "Layer-wise search" in text and "stopped after tune:2" in text


def test_opt_in_strategies_and_the_one_se_rule_in_a_study(shape_folder, tmp_path):
    config = StudyConfig(data=str(shape_folder), input_size=32, fractions=[1.0], seeds=[0, 1], train=QUICK,
                         strategies=["linear", "surgical:2", "lp-ft", "full"], recommend="one-se")
    study = Study(config, tmp_path / "s", device="cpu")
    summary = study.run(log=lambda *_: None)
    assert set(summary.table.strategy) == {"linear", "surgical:2", "lp-ft", "full"}
    assert set(study.results().status) == {"done"}
    # the two-stage strategy trained its probe first and says so in its model
    spec = json.loads((tmp_path / "s" / "models" / "lp-ft" / "model.json").read_text())
    assert spec["strategy"] == "lp-ft" and spec["linear_probe"]["epochs"] == QUICK.epochs
    # every trial stored its validation cases; the rule's evidence is a bootstrap over them and the two seeds
    store = StudyStore(tmp_path / "s")
    assert all(store.val_cases(t) is not None for t in study.results().id)
    choice = summary.choices[1.0]
    assert {e.source for e in choice.evidence.values()} == {"cases"} and choice.rule == "one-se"
    assert summary.recommended == choice.level[0] and summary.recommended in choice.level
    best_mean = max(e.mean for e in choice.evidence.values())
    assert choice.evidence[summary.recommended].mean >= best_mean - choice.evidence[choice.best].se - 1e-12
    text = write_report(tmp_path / "s").read_text()
    assert "one-standard-error rule" in text and "surgical fine-tuning" in text
    saved = json.loads((tmp_path / "s" / "summary.json").read_text())
    assert saved["rule"] == "one-se" and saved["level_with_best"] == choice.level

    # the rule only reads the trials: the finished study is chosen again under argmax, without training
    again = Study(dataclasses.replace(config, recommend="argmax"), tmp_path / "s", device="cpu")
    assert again.pending() == []
    argmax = again.run(log=lambda *_: None)
    assert argmax.rule == "argmax" and StudyStore(tmp_path / "s").config()["recommend"] == "argmax"
    best = max(argmax.choices[1.0].evidence.items(), key=lambda kv: kv[1].mean)[0]
    assert argmax.recommended == best
    assert len(again.results()) == len(study.results())
