"""A third task in one file: count the bright discs in an image, scored by mean absolute error (lower is better).

Its targets are ragged (each image's list of disc centres), its source is its own, and nothing under ``src/`` knows
it. ``train``, a study and the report run end to end with it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from medtransfer import (HeadFactory, Metric, RaggedTargets, RunConfig, Scorer, Task, TaskInputs, TaskParts,
                         TrainConfig, register_task, train)
from medtransfer.data import ImageSet, Sample, Source
from medtransfer.data.sources.base import register_source
from medtransfer.report import write_report
from medtransfer.study import Study, StudyConfig


class DiscImages(ImageSet):
    """Images whose target is the list of their disc centres (row, column)."""


@register_source
class DiscSource(Source):
    kind = "discs"

    def __init__(self, root: str):
        self.root = Path(root)

    @classmethod
    def can_open(cls, spec: str) -> bool:
        return (Path(spec) / "discs.json").is_file()

    def read(self) -> DiscImages:
        centres = json.loads((self.root / "discs.json").read_text())
        samples = [Sample(str(self.root / n), lambda p=self.root / n: np.asarray(Image.open(p)), target=tuple(map(tuple, c)))
                   for n, c in sorted(centres.items())]
        return DiscImages(samples=samples, class_names=["disc"], name=self.root.name)


def mean_absolute_error(cases: dict, resamples: np.ndarray) -> np.ndarray:
    return np.abs(np.asarray(cases["predicted"]) - np.asarray(cases["count"]))[resamples].mean(1)


class CountHead(HeadFactory):
    def head(self, backbone, groups, taps):
        return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(backbone.model.num_features, 1))

    def saved_weights(self, backbone, groups, head):
        return nn.ModuleDict({"backbone": backbone.model, "head": head})


class CountScorer(Scorer):
    metric = Metric("mae", "count MAE", mean_absolute_error, higher_is_better=False, unit_interval=False,
                    scale="discs per image: 0 = every count right")

    def loss(self, outputs, targets):
        return F.mse_loss(outputs[:, 0], torch.tensor([float(len(t)) for t in targets], device=outputs.device))

    def predict(self, outputs):
        return outputs[:, 0].float().cpu()

    def case_columns(self, predictions, targets):
        return {"count": np.array([len(t) for t in targets]), "predicted": np.asarray(predictions, dtype=float)}


def count_parts(*_) -> TaskParts:
    return TaskParts(head=CountHead(), scorer=CountScorer())


register_task(Task("disc-counting", TaskInputs(sources=(DiscSource,), data_type=DiscImages, detect_priority=20,
                                               layouts="a folder with discs.json"),
                   codec=RaggedTargets(columns=2),  # ragged: a K×2 array of centres per image
                   build=count_parts, rebuild=count_parts))


@pytest.fixture(scope="module")
def disc_folder(tmp_path_factory) -> Path:
    root, rng, centres = tmp_path_factory.mktemp("discs"), np.random.default_rng(0), {}
    yy, xx = np.mgrid[:48, :48]
    for i in range(40):
        img, found = rng.normal(60, 15, (48, 48)), []
        for _ in range(int(rng.integers(0, 4))):
            cy, cx = (int(v) for v in rng.integers(8, 40, 2))
            img[(yy - cy) ** 2 + (xx - cx) ** 2 <= 16] = 230
            found.append([cy, cx])
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(root / f"{i:02d}.png")
        centres[f"{i:02d}.png"] = found
    (root / "discs.json").write_text(json.dumps(centres))
    return root


QUICK = TrainConfig(epochs=2, batch_size=8, patience=None, warmup_epochs=1)


def test_train_a_third_task(disc_folder, tmp_path):
    result = train(RunConfig(data=str(disc_folder), strategy="linear", input_size=32, train=QUICK), tmp_path / "run")
    assert result.metrics["task"] == "disc-counting" and set(result.metrics["test"]) == {"mae"}
    assert np.isfinite(result.metrics["test"]["mae"]["value"]) and "val_mae" in result.fit.history[0]
    rows = (tmp_path / "run" / "test_predictions.csv").read_text().splitlines()
    assert rows[0] == "sample,count,predicted" and len(rows) == 1 + result.metrics["data"]["counts"]["test"]


def test_study_and_report_of_a_third_task(disc_folder, tmp_path):
    config = StudyConfig(data=str(disc_folder), strategies=["linear", "full"], fractions=[1.0], seeds=[0],
                         input_size=32, train=QUICK, checkpoints="none")
    summary = Study(config, tmp_path / "study", device="cpu").run(log=lambda *_: None)
    assert summary.task == "disc-counting" and summary.metric.name == "mae"
    assert set(summary.table.strategy) == {"linear", "full"} and summary.table["test_mae_low"].notna().all()
    # lower is better: the recommendation is the strategy with the lowest validation MAE
    assert summary.recommended == summary.table.sort_values("val_mae").iloc[0].strategy
    html = write_report(tmp_path / "study").read_text()
    assert "count MAE" in html and "Lower is better" in html and "AUC" not in html.split("<img")[0]
