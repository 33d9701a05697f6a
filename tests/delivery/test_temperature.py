"""Temperature scaling: fitted on validation, stored with the model, and what the run folder's p_* columns hold."""

import csv
import json

import numpy as np
import pytest
import torch

from medtransfer import RunConfig, TrainConfig, load_model, train
from medtransfer.training.calibration import fit_temperature, negative_log_likelihood, scaled_probabilities
from medtransfer.errors import ConfigError, DataError
from medtransfer.metrics.calibration import expected_calibration_error
from medtransfer.tasks import get_task

FAST = TrainConfig(epochs=3, batch_size=8, patience=None, warmup_epochs=1)


def test_temperature_recovers_the_scale_of_overconfident_logits():
    rng = np.random.default_rng(0)
    true_logits = rng.normal(0, 1.5, (4000, 3))
    targets = np.array([rng.choice(3, p=p) for p in scaled_probabilities(true_logits, 1.0, "multiclass")])
    overconfident = 3.0 * true_logits
    t = fit_temperature(overconfident, targets, "multiclass")
    assert t == pytest.approx(3.0, rel=0.1)
    before = expected_calibration_error(scaled_probabilities(overconfident, 1.0, "multiclass"), targets, "multiclass")
    after = expected_calibration_error(scaled_probabilities(overconfident, t, "multiclass"), targets, "multiclass")
    assert after < before / 2
    assert negative_log_likelihood(overconfident, targets, t, "multiclass") < negative_log_likelihood(
        overconfident, targets, 1.0, "multiclass")


def test_a_run_stores_its_temperature_and_writes_calibrated_probabilities(shape_folder, tmp_path):
    out = tmp_path / "run"
    train(RunConfig(data=str(shape_folder), strategy="tune:2", input_size=32, train=FAST), out)
    spec = json.loads((out / "model.json").read_text())
    metrics = json.loads((out / "metrics.json").read_text())
    t = spec["temperature"]
    assert spec["calibration"]["fitted_on"] == "validation" and spec["calibration"]["temperature"] == t
    assert t > 0 and metrics["calibration"]["temperature"] == t
    assert {"test_ece_before", "test_ece_after"} <= set(metrics["calibration"])
    assert (out / "reliability.png").is_file()
    rows = list(csv.DictReader((out / "test_predictions.csv").open()))
    p = np.array([[float(r["p_disk"]), float(r["p_square"])] for r in rows])
    u = np.array([[float(r["uncalibrated_p_disk"]), float(r["uncalibrated_p_square"])] for r in rows])
    # the p_* columns are the uncalibrated ones divided by the temperature in logit space
    logit = np.log(u[:, 1] / u[:, 0])
    np.testing.assert_allclose(p[:, 1], 1 / (1 + np.exp(-logit / t)), atol=2e-5)
    # the saved model applies it: its task divides by the same temperature
    saved = load_model(out)
    assert saved.task.scorer.temperature == t
    z = torch.tensor([[0.0, 2.0]])
    assert float(saved.task.scorer.predict(z)[0, 1]) == pytest.approx(1 / (1 + np.exp(-2.0 / t)), abs=1e-6)


def test_calibration_can_be_switched_off_and_a_bad_temperature_is_refused(shape_folder, tmp_path):
    out = tmp_path / "run"
    train(RunConfig(data=str(shape_folder), strategy="linear", input_size=32, train=FAST,
                    task_options={"calibration": "none"}), out)
    spec = json.loads((out / "model.json").read_text())
    assert spec["temperature"] == 1.0 and "calibration" not in json.loads((out / "metrics.json").read_text())
    assert "uncalibrated_p_disk" not in (out / "test_predictions.csv").read_text().splitlines()[0]
    with pytest.raises(ConfigError, match="'calibration' parameter"):
        get_task("classification").inputs.options({"calibration": "platt"})
    (out / "model.json").write_text(json.dumps({**spec, "temperature": -1}))
    with pytest.raises(DataError, match="temperature"):
        load_model(out)
