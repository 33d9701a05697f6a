"""The report's page: self-contained HTML (figures inlined as PNG, no network requests), section by section.

Privacy: the page never shows patient identifiers or image header values; file names appear only when asked for
(``show_filenames=True``), and paths inside error messages are hidden otherwise.
"""

from __future__ import annotations

import base64
from pathlib import Path

import numpy as np
import pandas as pd

from medtransfer.plots import Figure, percent
from medtransfer.names import quoted_names
from medtransfer.report.answers import (answer_depth, answer_robustness, answer_scratch, choice_sentences,
                                        describe_strategy, fmt, metric_with_ci, redact_paths, signed)
from medtransfer.report.facts import StudyFacts
from medtransfer.report.markup import escaped, facts_list, html_page, html_table
from medtransfer.study.folder import FAILURES, FIGURES
from medtransfer.training.config import MAX_EPOCHS, MIN_EPOCHS



def section_recommendation(facts: StudyFacts) -> str:
    s = facts.summary
    if s.recommended is None:
        return ('<section id="recommendation"><h2>Recommendation</h2><p class="note">No trial has finished, so '
                'there is no recommendation yet.</p></section>')
    row, m, label = facts.cell(s.recommended, s.recommended_fraction), s.metric.name, s.metric.label
    sd = row[f"test_{m}_sd"] if row is not None else np.nan
    sd = f", SD over seeds {sd:.3f}" if np.isfinite(sd) else ""
    evidence = "".join(f"<li>{escaped(c.sentence(label))}</li>" for c in s.comparisons)
    return (
        '<section id="recommendation"><h2>Recommendation</h2><div class="box">'
        f'<p class="big">Recommended strategy: {escaped(s.recommended)}</p>'
        f"<p>In words: {escaped(describe_strategy(s.recommended, facts.head))}.</p>"
        f"<p>Mean test {label} at {escaped(percent(s.recommended_fraction))} of the training data: "
        f"<b>{escaped(metric_with_ci(row, m))}</b> over "
        f"{escaped(_count(int(row.seeds) if row is not None else 0, 'seed'))}"
        f"{escaped(sd)}; mean validation {label} {escaped(fmt(row[f'val_{m}'] if row is not None else None))}.</p>"
        + "".join(f'<p class="muted">{escaped(t)}</p>' for t in choice_sentences(s, label))
        + '<p class="muted">Confidence intervals come from resampling the test cases (bootstrap); paired comparisons '
        "score both strategies on the same resampled cases.</p>"
        + (f"<h3>Paired evidence on the test split</h3><ul>{evidence}</ul>" if evidence else "")
        + "</div></section>"
    )


def section_model(facts: StudyFacts) -> str:
    """The model the study hands over: its folder, what it takes, its calibration, and how to use it."""
    rec = facts.summary.recommended
    spec = facts.model_spec(rec) if rec is not None else None
    if spec is None:
        return ('<section id="model"><h2>The model</h2><p class="note">'
                + ("No trial has finished, so there is no model yet." if rec is None else
                   f"The study kept no model of {escaped(rec)} "
                   f"(checkpoints: {escaped(facts.config.get('checkpoints', '–'))}).")
                + "</p></section>")
    folder = facts.study_folder.strategy_model(rec)
    size = spec.get("input_size")
    items = [("folder", f"{folder.relative_to(facts.folder)}/ — model.safetensors (weights), model.json, "
                        f"MODEL_CARD.md (the model card: intended use, data, evaluation, limits)"),
             ("strategy", f"{rec}: {describe_strategy(rec, facts.head)}"),
             ("input", f"{size} × {size} px, {'gray' if spec.get('channels') == 1 else 'RGB'}, uint8; the network "
                       f"normalises it"),
             ("classes", quoted_names(spec.get("class_names", [])))]
    cal = spec.get("calibration")
    if cal:
        items.append(("calibration", f"{cal.get('method', 'temperature scaling')} fitted on the validation split, "
                                     f"temperature {cal.get('temperature', 1.0):.3f}; expected calibration error on "
                                     f"test {fmt(cal.get('test_ece_before'))} before, {fmt(cal.get('test_ece_after'))} "
                                     f"after (reliability diagram among the figures)"))
    rows = []
    for strategy in facts.order:
        c = (facts.model_spec(strategy) or {}).get("calibration")
        if c:
            rows.append([escaped(strategy), f"{c.get('temperature', 1.0):.3f}", fmt(c.get("test_ece_before")),
                         fmt(c.get("test_ece_after"))])
    row_classes = ["recommended" if r[0] == escaped(rec) else "" for r in rows]
    table = ("<h3>Calibration of every kept model (test split)</h3>"
             + html_table(["strategy", "temperature", "ECE before", "ECE after"], rows,
                          row_classes=row_classes)) if len(rows) > 1 else ""
    use = (f"<pre>medtransfer predict {escaped(facts.folder.name)} IMAGES/ --out predictions/\n"
           f"medtransfer export {escaped(facts.folder.name)} --format onnx</pre>")
    return ('<section id="model"><h2>The model</h2>' + facts_list(items) + table
            + "<p>Predict new images with it, or export it for a runtime without PyTorch (a study folder stands for "
              "its recommended model; <code>--strategy</code> picks another):</p>" + use + "</section>")


def section_questions(facts: StudyFacts) -> str:
    blocks = []
    for i, a in enumerate((answer_scratch(facts), answer_robustness(facts), answer_depth(facts)), start=1):
        details = "".join(f"<li>{escaped(d)}</li>" for d in a.details)
        blocks.append(f'<div class="answer"><h3>{i}. {escaped(a.question)}</h3>'
                      f'<p class="headline">{escaped(a.headline)}</p>'
                      + (f"<ul>{details}</ul>" if details else "") + "</div>")
    metric = facts.metric
    scale = f" ({metric.scale})" if metric.scale else ""
    direction = "" if metric.higher_is_better else " Lower is better."
    return ('<section id="answers"><h2>Answers</h2><p class="muted">Differences are in '
            f"{escaped(metric.label)}{escaped(scale)}, with 95 % confidence intervals; 'significant' "
            f"means the interval excludes zero.{escaped(direction)}</p>"
            + "".join(blocks) + "</section>")


def section_results(facts: StudyFacts) -> str:
    t = facts.summary.table
    if t.empty:
        return ""
    fractions, rec, m, label = facts.fractions, facts.summary.recommended, facts.metric.name, facts.metric.label
    rows, classes = [], []
    for s in facts.order:
        cells = [_result_cell(facts.cell(s, f), m) for f in fractions]
        top = facts.cell(s, fractions[0])
        name = f"{escaped(s)}{' ★' if s == rec else ''}"
        rows.append([name, *cells, fmt(top[f"val_{m}"] if top is not None else None),
                     str(int(t[t.strategy == s].seeds.max()))])
        classes.append("recommended" if s == rec else "")
    main = html_table(["strategy", *[f"{escaped(percent(f))} of train" for f in fractions],
                        f"val {label} at " + escaped(percent(fractions[0])), "seeds"], rows, classes)
    return ('<section id="results"><h2>Results</h2>'
            f"<p>Mean test {label} over seeds for each strategy (rows, shallow to deep) and training-set size "
            "(columns), with its 95 % case-bootstrap confidence interval below. ★ marks the recommended strategy.</p>"
            + _extra_strategies(facts) + main
            + f"<h3>Other test metrics at {escaped(percent(fractions[0]))} of the training data</h3>"
            f"<p class='muted'>Means over seeds; {escaped(_metrics_note(facts))}</p>" + _other_metrics(facts)
            + "</section>")


def _extra_strategies(facts: StudyFacts) -> str:
    """What the strategies beyond the paper's layer-wise list are, when the study ran any."""
    extra = [s for s in facts.order if s == "lp-ft" or s.startswith("surgical:")]
    if not extra:
        return ""
    return ("<p>Beyond the paper's depths:</p><ul>"
            + "".join(f"<li>{escaped(s)}: {escaped(describe_strategy(s, facts.head))}</li>" for s in extra) + "</ul>")


def _result_cell(row: pd.Series | None, metric: str) -> str:
    """A results-table cell: the mean test metric, with its interval below."""
    if row is None:
        return "–"
    test = f"test_{metric}"
    return f"{fmt(row[test])}<br><small>{signed(row[f'{test}_low'], 2)} to {signed(row[f'{test}_high'], 2)}</small>"


def _other_metrics(facts: StudyFacts) -> str:
    """The task's other test metrics and the time per trial, at the largest fraction."""
    metric = facts.metric
    rows = []
    for s in facts.order:
        row = facts.cell(s, facts.fractions[0])
        if row is not None:
            rows.append([escaped(s), *[fmt(row.get(f"test_{n}")) for n in metric.others], f"{row.seconds:.0f}"])
    return html_table(["strategy", *[escaped(metric.heading(n)) for n in metric.others], "seconds / trial"], rows)


def _metrics_note(facts: StudyFacts) -> str:
    return facts.section.metrics_note(facts)


def section_figures(figures: list[Figure], show_filenames: bool, source: str) -> str:
    parts = [('<section id="figures"><h2>Figures</h2><p class="muted">Vector versions (SVG) for publication are in '
              f"the study folder under {FIGURES}/.</p>")]
    for n, f in enumerate(figures, start=1):
        parts.append(f'<figure id="fig-{escaped(f.name)}">')
        if f.png is not None:
            data = base64.b64encode(f.png.read_bytes()).decode("ascii")
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{escaped(f.title)}">')
        parts.append(f"<figcaption><b>Figure {n}. {escaped(f.title)}.</b> {escaped(f.caption)}</figcaption>")
        if f.note:
            parts.append(f'<p class="note">{escaped(f.note)}</p>')
        if f.image_refs and show_filenames:
            refs = "".join(f"<li>{escaped(display_ref(r, source))}</li>" for r in f.image_refs)
            parts.append(f'<p class="muted">Images, {escaped(f.image_order)}:</p><ol class="refs">{refs}</ol>')
        parts.append("</figure>")
    return "".join(parts) + "</section>"


def display_ref(ref: str, source: str) -> str:
    """A sample's file name relative to the data source where it lies inside it."""
    root = Path(source)
    for base in (root, root.parent):
        try:
            return str(Path(ref).relative_to(base))
        except ValueError:
            continue
    return ref


def section_dataset(facts: StudyFacts) -> str:
    d = facts.data
    if not d:
        return '<section id="dataset"><h2>Dataset</h2><p class="note">No trial has run, so the data were not read.</p></section>'
    counts = d.get("counts", {})
    source = Path(str(d.get("source", ""))).name or d.get("name", "")
    items = [("name", d.get("name", "–")), ("source", source), ("modality", d.get("modality") or "not recorded"),
             ("task", _task_text(facts)),
             ("classes", quoted_names(d.get("classes", []))),
             ("split", _split_text(facts)),
             ("images", (f"train {counts.get('train', '–')}, validation {counts.get('val', '–')}, test "
                         f"{counts.get('test', '–')}")),
             *([("patients", f"{d['patients']['count']} (images per patient: min, median, max "
                             f"{', '.join(str(v) for v in d['patients']['images_per_patient'])})")]
               if d.get("patients") else []),
             ("image size", (f"resized to {facts.config.get('input_size')} × {facts.config.get('input_size')} px "
                             f"for the networks"))]
    per_class = d.get("per_class", {})  # for tasks that label whole images
    part = "train_used" if "train_used" in counts else "train"  # a study's whole split; older cards, one trial's
    used = counts.get(part)
    train_label = "train" if used == counts.get("train") else f"train (the {used} of one trial)"
    rows = [[escaped(c), *[str(per_class.get(k, {}).get(c, "–")) for k in (part, "val", "test")]]
            for c in (d.get("classes", []) if per_class else [])]
    rows.append(["<b>all</b>", *[f"<b>{v}</b>" for v in (used, counts.get("val", "–"), counts.get("test", "–"))]])
    heading, first = ("Images per class and split", "class") if per_class else ("Images per split", "")
    notices = "".join(f'<p class="note">{escaped(n)}</p>' for n in d.get("notices", []))
    return ('<section id="dataset"><h2>Dataset</h2>' + facts_list(items) + notices
            + f"<h3>{heading}</h3>" + html_table([first, escaped(train_label), "validation", "test"], rows)
            + "</section>")


def _task_text(facts: StudyFacts) -> str:
    return facts.section.describe_task(facts.data)


def _split_text(facts: StudyFacts) -> str:
    """How the data were split into train, validation and test."""
    if facts.data.get("split_given"):
        return "given by the source"
    test = facts.config.get("test_fraction") or facts.task.inputs.test_fraction
    return (f"made by medtransfer: {facts.section.split_method()}, {round(100 * (0.9 - test))}/10/{round(100 * test)}, "
            f"split seed {facts.config.get('split_seed', 0)}")


_PRECISIONS = {
    "auto": "auto: mixed precision on a GPU; on a CPU with bf16 units bf16 for the networks whose training step was "
            "timed at least 1.1× faster in it, else float32 (each trial's model.json says which)",
    "fp32": "float32", "bf16": "bf16 autocast (depthwise convolutions in float32)",
    "fp16": "float16 autocast with a gradient scaler",
}


def section_setup(facts: StudyFacts) -> str:
    c, env, t = facts.config, facts.environment, facts.trials
    train = c.get("train", {})
    weights = c.get("weights", "imagenet")
    devices = sorted({str(v) for v in t.device.dropna()}) if len(t) else []
    seconds = t.seconds.dropna() if len(t) else pd.Series(dtype=float)
    planned = len(c.get("seeds", [])) * len(c.get("fractions", [])) * len(c.get("strategies") or facts.order or [])
    items = [
        ("backbone", c.get("backbone", "–")),
        ("pre-trained weights", weights if weights in ("imagenet", "scratch") else Path(weights).name),
        ("strategies", ", ".join(facts.order) or "–"),
        ("training fractions", ", ".join(percent(f) for f in c.get("fractions", []))),
        ("seeds", ", ".join(str(s) for s in c.get("seeds", []))),
        ("input size", f"{c.get('input_size')} px"),
        ("augmentation", c.get("augmentation", "–")),
        ("epochs", (f"at most {train['epochs']}" if train.get("epochs") else
                    f"from the training set: {train.get('budget_steps', '–')} optimisation steps in {MIN_EPOCHS} to {MAX_EPOCHS} epochs")
                   + (f", early stop after {train['patience']} epochs without validation gain"
                      if train.get("patience") else "")),
        ("optimiser", (f"{train.get('optimizer', '–')}, learning rate {train.get('lr', '–')} ({facts.head} ×"
                       f"{train.get('head_lr_multiplier', 1)}), weight decay {train.get('weight_decay', '–')}, "
                       f"batch size {train.get('batch_size', '–')}, warm-up {train.get('warmup_epochs', 0)} "
                       f"epoch(s)")),
        ("training precision", _PRECISIONS.get(c.get("precision", "auto"), c.get("precision"))),
        *facts.section.setup_items(c),
        ("checkpoints kept", c.get("checkpoints", "–")),
        ("trials", f"{int((t.status == 'done').sum()) if len(t) else 0} finished, "
                   f"{int((t.status == 'failed').sum()) if len(t) else 0} failed"
                   + (f", of {planned} planned" if planned else "")),
        ("time per trial", f"{seconds.mean():.0f} s on average" if len(seconds) else "–"),
        ("total training time", _duration(seconds.sum()) if len(seconds) else "–"),
        ("device", ", ".join(devices) or env.get("device", "–")),
        ("software", ", ".join(f"{k} {env[k]}" for k in ("python", "torch", "torchvision", "timm") if k in env)),
        ("platform", env.get("platform", "–")),
        ("configuration hash", facts.store.meta().get("config_hash", "–")),
    ]
    return '<section id="setup"><h2>Set-up</h2>' + facts_list(items) + "</section>"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if seconds < 120 else f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def section_failed(facts: StudyFacts, show_filenames: bool) -> str:
    failed = facts.summary.failed
    notes = "".join(f'<p class="note">{escaped(n)}</p>' for n in facts.summary.notes)
    if failed is None or len(failed) == 0:
        return ('<section id="failed"><h2>Failed trials</h2><p>None: every recorded trial finished.</p>'
                + notes + "</section>")
    rows = []
    for r in failed.itertuples():
        error = str(r.error or "") if show_filenames else redact_paths(str(r.error or ""))
        rows.append([escaped(r.strategy), escaped(percent(r.fraction)), escaped(r.seed), escaped(error)])
    hidden = "" if show_filenames else f" Paths in the messages are hidden; {FAILURES} in the study folder has them."
    return ('<section id="failed"><h2>Failed trials</h2>'
            f"<p>{len(failed)} trial(s) failed and are left out of every number above.{hidden}</p>"
            + html_table(["strategy", "fraction", "seed", "error"], rows, text_columns=(3,))
            + notes + "</section>")


def render(facts: StudyFacts, figures: list[Figure], *, show_filenames: bool) -> str:
    """The whole page."""
    name = facts.data.get("name") or Path(str(facts.config.get("data", "study"))).name
    modality = facts.data.get("modality")
    subtitle = (f"{modality + ' · ' if modality else ''}{facts.config.get('backbone', '')} · "
                f"{len(facts.order)} strategies × {len(facts.fractions)} training-set sizes × "
                f"{len(facts.config.get('seeds', []))} seeds")
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("recommendation", "Recommendation"), ("model", "Model"), ("answers", "Answers"), ("results", "Results"), ("figures", "Figures"),
        ("dataset", "Dataset"), ("setup", "Set-up"), ("failed", "Failed trials")))
    body = "".join([
        f"<header><h1>Full training or fine-tuning? {escaped(name)}</h1>"
        f"<p class='subtitle'>{escaped(subtitle)}</p></header>",
        f"<nav>{nav}</nav>",
        section_recommendation(facts),
        section_model(facts),
        section_questions(facts),
        section_results(facts),
        section_figures(figures, show_filenames, str(facts.data.get("source", facts.config.get("data", "")))),
        section_dataset(facts),
        section_setup(facts),
        section_failed(facts, show_filenames),
    ])
    return html_page(f"Transfer-learning study: {name}", body)
