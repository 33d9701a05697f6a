"""MODEL_CARD.md in every saved model folder; a study's recommended model predicts its stored test probabilities."""

import csv
import json

import numpy as np
from generated import run_cli

from medtransfer import RunConfig, TrainConfig, train
from medtransfer.study import Study
from medtransfer.study.config import StudyConfig
from medtransfer.study.store import StudyStore
from medtransfer.tasks import read_data

TINY = TrainConfig(epochs=2, batch_size=8, patience=None, warmup_epochs=1)
SECTIONS = ("## Model details", "## Intended use", "## Training data", "## Evaluation", "## Calibration",
            "## Limitations", "## How to use", "## Versions")


def test_a_run_folder_has_a_model_card(shape_folder, tmp_path):
    out = tmp_path / "run"
    result = train(RunConfig(data=str(shape_folder), strategy="linear", input_size=32, train=TINY), out)
    card = (out / "MODEL_CARD.md").read_text()
    assert all(s in card for s in SECTIONS)
    auc = result.metrics["test"]["auc"]
    assert f"| auc (study metric) | {auc['value']:.3f} (95 % CI {auc['ci_low']:.3f}–{auc['ci_high']:.3f}) |" in card
    assert f"temperature {json.loads((out / 'model.json').read_text())['temperature']:.3f}" in card
    assert "42 used for training" in card and "12 for test" in card and "torch " in card
    assert "disk_0" not in card and str(shape_folder) not in card  # no file names or paths


def test_a_studys_recommended_model_has_a_card_and_predicts_the_stored_probabilities(shape_folder, tmp_path,
                                                                                     capsys):
    config = StudyConfig(data=str(shape_folder), input_size=32, strategies=["linear", "tune:2"], fractions=[1.0],
                         seeds=[0], train=TINY)
    summary = Study(config, tmp_path / "s", device="cpu").run(log=lambda *_: None)
    for strategy in ("linear", "tune-2"):
        card = (tmp_path / "s" / "models" / strategy / "MODEL_CARD.md").read_text()
        assert all(s in card for s in SECTIONS)
        assert ("the study's recommendation" in card) == (strategy == summary.recommended.replace(":", "-"))
    store = StudyStore(tmp_path / "s")
    spec = json.loads((tmp_path / "s" / "models" / summary.recommended.replace(":", "-") / "model.json").read_text())
    samples, cases = store.cases(spec["trial"])
    _task, data = read_data(str(shape_folder))
    listing = tmp_path / "test.csv"
    listing.write_text("path\n" + "".join(f"{data.samples[int(i)].ref}\n" for i in samples))
    code, _out, err = run_cli(["predict", tmp_path / "s", listing, "--out", tmp_path / "p", "--quiet"], capsys)
    assert code == 0, err
    rows = list(csv.DictReader(open(tmp_path / "p" / "predictions.csv")))
    got = np.array([[float(r["p_disk"]), float(r["p_square"])] for r in rows])
    np.testing.assert_allclose(got, np.asarray(cases["probs"]), atol=1e-5)
