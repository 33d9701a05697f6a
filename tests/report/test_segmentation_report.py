"""The study report of a segmentation study: every number in Dice, and predicted masks instead of ROC and Grad-CAM."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
from test_report import parse, visible_text

from medtransfer.report import write_report
from medtransfer.tasks import read_data

FIGURES = ("dice_vs_depth", "dice_vs_fraction", "validation_curves", "overlay")


def without_images(html: str) -> str:
    """The page without its inlined PNGs, whose base64 text may hold any word."""
    return re.sub(r"data:image/png;base64,[A-Za-z0-9+/=]+", "", html)


def test_segmentation_report_is_in_dice(segmentation_study):
    html = (segmentation_study / "report.html").read_text()
    text = visible_text(html)
    summary = json.loads((segmentation_study / "summary.json").read_text())
    assert "AUC" not in without_images(html) and "ROC" not in text and "Grad-CAM" not in text
    assert f"Recommended strategy: {summary['recommended']}" in text
    assert "Mean test Dice at 100 % of the training data" in text and "mean validation Dice" in text
    assert "Differences are in Dice" in text and "val Dice at 100 %" in text
    for comparison in summary["comparisons"]:  # the paired evidence, worded by Comparison.sentence()
        assert comparison["sentence"] in text
    assert "At 100 % of the training data, fine-tuning (" in text and " Dice (95 % CI " in text
    assert "IoU" in text and "HD95 (px)" in text and "sensitivity" not in text


def test_segmentation_report_has_the_overlay_figure(segmentation_study):
    html = (segmentation_study / "report.html").read_text()
    ids = {a.get("id") for _, a in parse(html).tags}
    for name in FIGURES:
        assert f"fig-{name}" in ids
        assert (segmentation_study / "figures" / f"{name}.png").is_file(), name
        assert (segmentation_study / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml"), name
    assert not ids & {"fig-roc", "fig-saliency", "fig-auc_vs_depth"}
    assert not (segmentation_study / "figures" / "roc.png").exists()
    assert sum(1 for t, _ in parse(html).tags if t == "img") == len(FIGURES)
    text = visible_text(html)
    assert "Predicted masks on test images" in text and "border of the true mask" in text
    assert "Images, top to bottom" not in text  # no file names by default


def test_segmentation_dataset_card(segmentation_study):
    text = visible_text((segmentation_study / "report.html").read_text())
    assert "segmentation (one class per pixel" in text and '"background", "foreground"' in text  # each class name quoted
    assert "Images per split" in text and "Images per class" not in text
    assert "80/10/10" in text and "class weighting" not in text and "decoder" in text


def test_overlay_without_scratch_model_and_with_file_names(segmentation_study, blob_folder, tmp_path):
    study = shutil.copytree(segmentation_study, tmp_path / "study")
    shutil.rmtree(study / "models" / "scratch")
    html = write_report(study, show_filenames=True).read_text()
    text = visible_text(html)
    assert "The saved model of scratch (models/scratch/) is missing, so its predicted masks are left out" in text
    assert sum(1 for t, _ in parse(html).tags if t == "img") == len(FIGURES)  # the recommended model's masks remain
    assert "Images, top to bottom" in text
    listed = [p.name for p in (blob_folder / "images").iterdir() if p.name in html]
    assert 1 <= len(listed) <= 5


def test_overlay_images_are_spread_evenly_through_the_test_split(blob_folder):
    task, data = read_data(str(blob_folder), task="segmentation")
    test = np.arange(3, 13)
    targets = task.codec.load_targets(data, test, 32)
    chosen = task.inputs.examples(data, test, targets)
    assert [int(test[i]) for i in chosen] == [3, 5, 7, 10, 12]
    assert list(task.inputs.examples(data, test[:2], targets[:2])) == [0, 1]


def test_the_study_stored_its_example_images(segmentation_study):
    """The overlays are drawn from images the study stored, not from the data source read again."""
    from medtransfer.study import StudyStore
    from medtransfer.study.examples import EXAMPLES, decode_examples

    store = StudyStore(segmentation_study)
    examples = decode_examples(store.blob(EXAMPLES))
    n = min(5, json.loads(store.meta()["data"])["counts"]["test"])
    assert examples["images"].shape[0] == n and examples["images"].dtype == np.uint8
    assert examples["targets"].shape == (n, *examples["images"].shape[-2:])
    assert set(np.unique(examples["targets"])) <= {0, 1} and len(examples["refs"]) == n


def test_robustness_answer_in_dice(tmp_path):
    """Question 2 resamples the stored per-image Dice of the four cells together."""
    from medtransfer.study import StudyConfig, StudyStore

    config = StudyConfig(data="blobs", strategies=["scratch", "full"], fractions=[1.0, 0.5], seeds=[0],
                         task="segmentation")
    store = StudyStore(tmp_path / "s")
    store.create(config.to_dict(), config.hash(), {"python": "3", "torch": "2"})
    store.set_meta("data", {"name": "blobs", "task": "segmentation", "classes": ["background", "foreground"],
                            "counts": {"train_used": 64, "train": 64, "val": 8, "test": 30}})
    rng = np.random.default_rng(0)
    means = {("scratch", 1.0): 0.8, ("scratch", 0.5): 0.5, ("full", 1.0): 0.85, ("full", 0.5): 0.8}
    dice = {cell: np.clip(mean + rng.normal(0, 0.05, 30), 0, 1).round(6) for cell, mean in means.items()}
    for (strategy, fraction), d in dice.items():
        metrics = {m: {"value": float(d.mean()), "ci_low": 0.0, "ci_high": 1.0} for m in ("dice", "iou", "hd95")}
        store.record(strategy=strategy, fraction=fraction, seed=0, status="done", val_score=means[strategy, fraction],
                     test_metrics=metrics, seconds=1.0, device="cpu", samples=np.arange(30), cases={"dice": d},
                     history=[{"epoch": 1, "train_loss": 1.0, "val_loss": 1.0, "val_dice": means[strategy, fraction]}])
    html = write_report(tmp_path / "s").read_text()
    text = visible_text(html)
    drop = {s: dice[s, 1.0].mean() - dice[s, 0.5].mean() for s in ("scratch", "full")}
    assert "AUC" not in without_images(html)
    assert f"Yes. Fine-tuning (full) lost {drop['scratch'] - drop['full']:.3f} Dice less than scratch" in text
    assert f"Scratch lost {drop['scratch']:.3f} Dice from 100 % to 50 % of the training data" in text
    assert "The saved model of full (models/full/) is missing, so its predicted masks are left out" in text
