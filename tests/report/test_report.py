"""The study report on a small real study: one self-contained page with the answers, the figures and no file names."""

from __future__ import annotations

import base64
import io
import json
import re
import shutil
from html.parser import HTMLParser

from PIL import Image
from typer.testing import CliRunner

from medtransfer.cli import app
from medtransfer.errors import MedTransferError
from medtransfer.report import write_report
from medtransfer.report.answers import redact_paths

FIGURES = ("auc_vs_depth", "auc_vs_fraction", "validation_curves", "roc", "saliency", "calibration")


class PageParser(HTMLParser):
    """Collects every tag with its attributes, and the visible text."""

    def __init__(self):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def parse(html: str) -> PageParser:
    p = PageParser()
    p.feed(html)
    return p


def visible_text(html: str) -> str:
    return re.sub(r"\s+", " ", " ".join(parse(html).text))


def test_the_study_writes_its_report_at_the_end(study_run):
    folder, output = study_run
    report = folder / "report.html"
    assert report.is_file()
    assert "Report:" in output and "report.html" in output
    for name in FIGURES:
        assert (folder / "figures" / f"{name}.png").is_file(), name
        assert (folder / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml"), name


def test_report_is_self_contained(study_run):
    html = (study_run[0] / "report.html").read_text()
    page = parse(html)
    assert not re.search(r"https?://", html)
    assert "@import" not in html and "url(" not in html
    tags = {t for t, _ in page.tags}
    assert not tags & {"script", "link", "iframe", "object", "embed", "video", "audio", "source"}
    for tag, attrs in page.tags:
        for key in ("src", "href", "srcset", "poster", "data"):
            value = attrs.get(key)
            if value is None:
                continue
            if tag == "img" and key == "src":
                assert value.startswith("data:image/png;base64,"), value[:60]
            else:
                assert value.startswith("#"), f"<{tag} {key}={value!r}> points outside the page"
    images = [a for t, a in page.tags if t == "img"]
    assert len(images) == len(FIGURES)
    for attrs in images:
        png = Image.open(io.BytesIO(base64.b64decode(attrs["src"].split(",", 1)[1])))
        assert png.format == "PNG" and min(png.size) > 100


def test_report_holds_every_figure_the_recommendation_and_the_answers(study_run):
    folder = study_run[0]
    html = (folder / "report.html").read_text()
    ids = {a.get("id") for _, a in parse(html).tags}
    summary = json.loads((folder / "summary.json").read_text())
    text = visible_text(html)
    for name in FIGURES:
        assert f"fig-{name}" in ids
    assert f"Recommended strategy: {summary['recommended']}" in text
    for question in ("Does fine-tuning a pre-trained network beat training from scratch?",
                     "Is fine-tuning more robust to small training sets?", "How deep should one fine-tune?"):
        assert question in text
    assert "95 % CI" in text
    for comparison in summary["comparisons"]:  # the paired evidence, worded by Comparison.sentence()
        assert comparison["sentence"] in text
    assert "Grad-CAM" in text and "Images per class and split" in text and "torch" in text
    assert "training precision" in text and "each trial's model.json says which" in text  # the default, auto
    assert "Failed trials" in text and "every recorded trial finished" in text
    # the model handed over: its folder and card, its calibration (the one predict and export apply), its use
    spec = json.loads((folder / "models" / summary["recommended"].replace(":", "-") / "model.json").read_text())
    cal = spec["calibration"]
    assert "model" in ids and "MODEL_CARD.md" in text and "medtransfer predict" in text
    assert f"temperature {cal['temperature']:.3f}" in text
    assert f"{cal['test_ece_before']:.3f} before, {cal['test_ece_after']:.3f} after" in text
    assert "Calibration of every kept model" in text  # scratch and the fine-tuned depths each have one


def test_file_names_only_when_asked(study_copy, shape_folder):
    names = [p.name for p in shape_folder.rglob("*.png")]
    default = write_report(study_copy).read_text()
    assert not [n for n in names if n in default]
    assert str(shape_folder) not in default  # no machine path either
    assert "Images, left to right" not in default

    shown = write_report(study_copy, show_filenames=True).read_text()
    listed = [n for n in names if n in shown]
    assert 2 <= len(listed) <= 8  # the heat-map images, up to two per class
    assert "Images, left to right" in shown


def test_missing_model_folder_leaves_out_its_heat_maps_with_a_note(study_copy):
    shutil.rmtree(study_copy / "models" / "scratch")
    html = write_report(study_copy).read_text()
    text = visible_text(html)
    assert "The saved model of scratch (models/scratch/) is missing" in text
    recommended = json.loads((study_copy / "summary.json").read_text())["recommended"]
    # the recommended model's maps remain; its reliability diagram goes with its folder when that was scratch's
    assert sum(1 for t, _ in parse(html).tags if t == "img") == len(FIGURES) - (recommended == "scratch")


def test_report_command(study_copy):
    (study_copy / "report.html").unlink()
    result = CliRunner().invoke(app, ["report", str(study_copy), "--show-filenames"])
    assert result.exit_code == 0, result.output
    assert (study_copy / "report.html").is_file() and "report.html" in result.output
    result = CliRunner().invoke(app, ["report", str(study_copy / "nothing-here")])
    assert isinstance(result.exception, MedTransferError) and "no study here" in str(result.exception)


def test_paths_in_error_messages_are_hidden():
    message = "DataError: /data/patients/anna_smith_1970.dcm: cannot read (C:\\scans\\x.png too)"
    assert "anna_smith" not in redact_paths(message) and "x.png" not in redact_paths(message)
    assert redact_paths("loss became NaN at epoch 3") == "loss became NaN at epoch 3"


def test_a_study_without_results_still_gets_a_page(tmp_path):
    from medtransfer.study import StudyConfig, StudyStore

    config = StudyConfig(data="shapes", strategies=["full"], fractions=[1.0], seeds=[0])
    store = StudyStore(tmp_path / "s")
    store.create(config.to_dict(), config.hash(), {"python": "3", "torch": "2"})
    store.record(strategy="full", fraction=1.0, seed=0, status="failed", seconds=1.0, device="cpu",
                 error="DataError: /data/patients/anna_smith.png: cannot read")
    text = visible_text(write_report(tmp_path / "s").read_text())
    assert "no recommendation yet" in text and "nothing to plot" in text
    assert "1 trial(s) failed" in text and "[path]" in text and "anna_smith" not in text
