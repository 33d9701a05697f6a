"""User strings are data, never markup: names with ``[``, ``]``, ``\\``, ``<``, ``>``, ``&``, quotes, newlines and
unicode, used as file names, class names and ``--out`` values, go through train, study, report, predict and export
and come back verbatim on the console, in CSVs and JSON, and escaped in HTML and Markdown (issue 37, items 1 and 7).

The console output is captured as a user sees it when piping it: rich's console writes plain text there."""

from __future__ import annotations

import contextlib
import csv
import io
import json
import random
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
from generated import shape_image
from PIL import Image

QUICK = ["--input-size", "32", "--epochs", "1", "--batch-size", "8", "--quiet"]
#: pieces of hostile-but-legal names: rich markup and emoji codes, HTML, Markdown, CSV, quotes, control and unicode
#: (a '/' cannot be in a file name: closing tags like '[/x]' come from paths, see :func:`nasty_path`)
PIECES = ["[", "]", "[red]", "[bold]b", "\\", "\\[", "<", ">", "&", "&amp;", "<img src=x onerror=alert(1)>", "<script>",
          "'", '"', "\n", "é", "日本", "🩻", "|", "*", "_", "`", ":cat:", " ", "#", "$x$", "$x^$", "%s", "{0}", ",", ";", "~~"]


def nasty(seed: int, n: int) -> list[str]:
    """``n`` distinct names from the pieces, each legal as a file name on Linux (no '/', no NUL, not hidden)."""
    rng = random.Random(seed)
    names: list[str] = []
    while len(names) < n:
        name = "".join(rng.choice(PIECES) + rng.choice("abcxyz") for _ in range(rng.randint(1, 4)))
        name = name if name[0] not in ".- " else "n" + name
        if name not in names:
            names.append(name)
    return names


def covering(names: list[str], pieces=PIECES) -> list[str]:
    """``names`` with every one of ``pieces`` added to one of them (round-robin), so that all of them are tried."""
    names = list(names)
    for i, piece in enumerate(pieces):
        if not any(piece in n for n in names):
            names[i % len(names)] += piece + "z"
    return names


def nasty_path(base: Path, seed: int, extra: str = "\n日本") -> Path:
    """``base/<a>[/<b>]``: two nasty folder names whose '/' makes a closing markup tag of the path."""
    a, b = nasty(seed, 2)
    return base / f"{a}[" / f"{b}{extra}]"


def cli(*args) -> tuple[int, str, str]:
    """The ``medtransfer`` entry point in-process: (exit code, stdout, stderr)."""
    from medtransfer.cli import main

    out, err, old = io.StringIO(), io.StringIO(), sys.argv
    sys.argv = ["medtransfer", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    return code, out.getvalue(), err.getvalue()


def clean_exit(result, *needles) -> str:
    """Exit 2 with one ``error:`` line holding every needle verbatim, and no traceback."""
    code, _, err = result
    assert code == 2 and "Traceback" not in err and err.startswith("error:"), err
    for n in needles:
        assert n in err, f"{n!r} not in {err!r}"
    return err


class Page(HTMLParser):
    """An HTML page's tags (with attributes) and its text, character references decoded."""

    def __init__(self, text: str):
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict]] = []
        self.chunks: list[str] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.chunks.append(data)

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def assert_no_injected_html(page: Page) -> None:
    assert not [t for t, a in page.tags if t == "script" or any(k.startswith("on") for k in a)], page.tags
    assert all(a.get("src", "").startswith("data:image/png;base64,") for t, a in page.tags if t == "img")


def quoted(names: list[str]) -> str:
    """Names as the report and the model card list them: each in double quotes, its quotes and backslashes escaped."""
    return ", ".join('"' + n.replace("\\", "\\\\").replace('"', '\\"') + '"' for n in names)


def rendered_markdown(text: str) -> Page:
    """MODEL_CARD.md as a Markdown renderer that allows HTML shows it (markdown-it, with GFM tables)."""
    markdown_it = pytest.importorskip("markdown_it")
    return Page(markdown_it.MarkdownIt("commonmark", {"html": True}).enable("table").render(text))


def write_classes(root: Path, classes: list[str], stems: list[str], n: int = 12) -> Path:
    """``root/<class>/<stem>.png``: 32 px disks for the first class, squares for the second."""
    rng = np.random.default_rng(0)
    for c, (name, kind) in enumerate(zip(classes, ("disk", "square"))):
        (root / name).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(shape_image(kind, rng, size=32)).save(root / name / f"{stems[(c * n + i) % len(stems)]}_{i}.png")
    return root


# -- one trained run, one study, their predictions and export, shared by the checks below ---------------------------
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    base = tmp_path_factory.mktemp("markup")
    classes = covering(nasty(1, 2), ["\n", "<img src=x onerror=alert(1)>", "[red]", "\\", "&", "'", '"', "🩻", "|",
                                     "$x^$"])  # a broken formula for matplotlib's math text, too
    data = write_classes(nasty_path(base, 2, extra="\n$x^$"), classes, covering(nasty(3, 24)))
    new = base / "new images"
    new.mkdir()
    for i, stem in enumerate(covering(nasty(4, 5))):
        Image.fromarray(shape_image("disk", np.random.default_rng(i), size=32)).save(new / f"{stem}.png")
    (new / f"{nasty(5, 1)[0]}.png").write_bytes(b"not a png")
    run, study, preds = nasty_path(base / "run", 6), nasty_path(base / "study", 7), nasty_path(base / "p", 8)
    onnx = nasty_path(base / "onnx", 9) / f"{nasty(10, 1)[0]}.onnx"
    w = {"base": base, "classes": classes, "data": data, "new": new, "run": run, "study": study, "preds": preds,
         "onnx": onnx}
    w["train"] = cli("train", "--data", data, "--strategy", "linear", "--out", run, *QUICK)
    w["study_out"] = cli("study", "--data", data, "--strategies", "linear", "--fractions", "1", "--seeds", "1",
                         "--executor", "local", "--device", "cpu", "--out", study, *QUICK)
    w["report"] = cli("report", study, "--show-filenames")
    w["predict"] = cli("predict", study, new, "--out", preds, "--quiet")
    w["export"] = cli("export", run, "--out", onnx)
    return w


def test_train_prints_and_saves_user_strings_verbatim(world):
    code, out, err = world["train"]
    assert code == 0, err
    assert f"run folder: {world['run']}\n" in out
    metrics = json.loads((world["run"] / "metrics.json").read_text())
    assert sorted(metrics["data"]["classes"]) == sorted(world["classes"])
    assert json.loads((world["run"] / "model.json").read_text())["class_names"] == metrics["data"]["classes"]
    header = next(csv.reader(open(world["run"] / "test_predictions.csv", newline="")))
    assert {f"p_{c}" for c in world["classes"]} <= set(header)


def test_the_model_card_shows_class_names_as_text_never_as_html(world):
    for folder in (world["run"], world["study"] / "models" / "linear"):
        card = (folder / "MODEL_CARD.md").read_text()
        assert "<img" not in card and "<script" not in card
        page = rendered_markdown(card)
        assert_no_injected_html(page)
        assert [t for t, _ in page.tags if t == "table"] and f"classes: {quoted(sorted(world['classes']))}." in page.text


def test_study_and_report_print_user_strings_verbatim_and_escape_them_in_html(world):
    code, out, err = world["study_out"]
    assert code == 0, err
    study = world["study"]
    assert f"Study in {study}: " in out and f"Saved in {study}: study.sqlite" in out
    assert f"Report: {study / 'report.html'}\n" in out
    assert "\n✓ linear · " in out and "\nRecommended: linear (the " in out  # styled spans, not markup, around them
    code, out, err = world["report"]
    assert code == 0 and out == f"Report: {study / 'report.html'}\n", err
    html = (study / "report.html").read_text()
    assert "<img src=x" not in html and "<script>alert" not in html and "could not be drawn" not in html
    page = Page(html)
    assert_no_injected_html(page)
    assert f"classes{quoted(sorted(world['classes']))}" in page.text  # the dataset's facts: a <dt> then its <dd>
    assert world["data"].name in page.text
    shown = [str(f.relative_to(world["data"])) for f in world["data"].rglob("*.png")]
    assert any(f in page.text for f in shown)  # --show-filenames lists images
    spec = json.loads((study / "models" / "linear" / "model.json").read_text())
    assert sorted(spec["class_names"]) == sorted(world["classes"])


def test_predict_reads_writes_and_prints_file_names_verbatim(world):
    code, out, err = world["predict"]
    assert code == 0, err
    preds = world["preds"]
    assert f"written to {preds}\n" in out and f"see {preds / 'errors.csv'}\n" in out
    rows = list(csv.DictReader(open(preds / "predictions.csv", newline="")))
    good = {str(p) for p in world["new"].iterdir() if p.read_bytes()[:4] == b"\x89PNG"}
    assert {r["path"] for r in rows} == good
    assert {f"p_{c}" for c in world["classes"]} <= set(rows[0])
    errors = list(csv.reader(open(preds / "errors.csv", newline="")))
    assert str(world["new"] / f"{nasty(5, 1)[0]}.png") in [c for row in errors for c in row]


def test_export_prints_its_file_verbatim(world):
    code, out, err = world["export"]
    assert code == 0, err
    onnx = world["onnx"]
    assert out.startswith(f"{onnx} (+ {onnx.name}.json) from {world['run']}: ")
    assert json.loads(Path(f"{onnx}.json").read_text())["class_names"] == \
        json.loads((world["run"] / "model.json").read_text())["class_names"]


# -- errors that name a user's file --------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_an_unreadable_file_is_named_verbatim_in_the_error(world, seed, tmp_path):
    data = shutil.copytree(world["data"], tmp_path / "data")
    name = nasty(seed, 1)[0]
    bad = data / world["classes"][0] / f"{name}.png"
    bad.write_bytes(b"not a png")
    out = nasty_path(tmp_path / "out", seed + 100)
    clean_exit(cli("train", "--data", data, "--out", out, *QUICK), f"{bad}: not a readable image")
    assert not out.exists()  # no run folder


@pytest.mark.parametrize("name", ["sub[/x].png", "scan[red]7.png"])
def test_the_issues_file_names_are_reported_as_they_are(world, name, tmp_path):
    data = shutil.copytree(world["data"], tmp_path / "a")
    bad = data / world["classes"][1] / name
    bad.parent.mkdir(parents=True, exist_ok=True)
    bad.write_bytes(b"junk")
    clean_exit(cli("train", "--data", data, "--out", tmp_path / "out", *QUICK), f"{bad}: not a readable image")
    assert not (tmp_path / "out").exists()


def test_an_out_name_the_os_refuses_is_a_clean_error(world, tmp_path):
    out = tmp_path / ("[red]x" + "é" * 200)  # over 255 bytes: the file system refuses the name
    clean_exit(cli("train", "--data", world["data"], "--out", out, *QUICK), "File name too long")
    assert sorted(tmp_path.iterdir()) == []


def test_the_ray_install_hint_keeps_its_extra(world, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed: importing it fails
    clean_exit(cli("study", "--data", world["data"], "--executor", "ray", "--out", tmp_path / "s", *QUICK),
               "pip install 'medtransfer[ray]'")
    assert not (tmp_path / "s").exists()


def test_a_voc_class_that_looks_like_markup_is_printed_as_it_is(tmp_path):
    """The VOC class '[/x]blob' made the final table print raise MarkupError after the run was saved."""
    from xml.sax.saxutils import escape

    from medtransfer.console import metrics_table, stdout
    from medtransfer.tasks import read_data

    root = tmp_path / "[bold]voc :cat:"
    (root / "JPEGImages").mkdir(parents=True)
    (root / "Annotations").mkdir()
    names = ["[/x]blob", "<img src=x onerror=alert(1)>", "my_class"]
    for i, name in enumerate(names):
        Image.fromarray(np.full((48, 64, 3), 90, np.uint8)).save(root / "JPEGImages" / f"{i}.jpg")
        (root / "Annotations" / f"{i}.xml").write_text(
            f"<annotation><filename>{i}.jpg</filename><size><width>64</width><height>48</height></size><object>"
            f"<name>{escape(name)}</name><bndbox><xmin>5</xmin><ymin>5</ymin><xmax>30</xmax><ymax>30</ymax></bndbox>"
            "</object></annotation>")
    task, data = read_data(str(root))
    assert task.name == "detection" and sorted(data.class_names) == sorted(names)
    table = metrics_table({f"ap50_{c}": {"value": 0.5, "ci_low": 0.25, "ci_high": 0.75} for c in data.class_names},
                          f"{root.name} · linear · seed 0 · test")
    with stdout.capture() as captured:
        stdout.print(table)
    assert f"{root.name} · linear · seed 0 · test" in captured.get()  # the title, as every cell, is plain text
    for c in names:
        assert f"│ ap50 {c} " in captured.get()
