"""A study's report: one self-contained HTML page (figures inlined as PNG) that answers the study's three questions.

1. Does fine-tuning beat training from scratch?  2. Is fine-tuning more robust to small training sets?
3. How deep should one fine-tune?  The page also holds the recommendation and its paired evidence, the results
table, a dataset card, the set-up and any failed trials. It loads nothing from the network.

Every number is in the study's metric: AUC for classification, Dice for segmentation. The last figures show the
recommended model beside scratch on a few test images: ROC curves and Grad-CAM heat maps for classification, the
predicted masks over the images for segmentation.

Privacy: the page never shows patient identifiers or image header values; file names appear only when asked for
(``show_filenames=True``), and paths inside error messages are hidden otherwise.
"""

from __future__ import annotations

import base64
import json
import re
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from medtransfer.errors import DataError, MedTransferError
from medtransfer.files import atomic_write
from medtransfer.report import study_figures as figs
from medtransfer.report.study_figures import Figure, percent
from medtransfer.study.config import StudyConfig
from medtransfer.study.store import StudyStore, trial_id
from medtransfer.study.summary import (
    TASK_METRICS,
    Comparison,
    StudySummary,
    _training_cost,
    strategy_order,
    summarize,
)

if TYPE_CHECKING:
    from medtransfer.run import PreparedData
    from medtransfer.saved_model import SavedModel

REPORT_NAME = "report.html"
FIGURES_DIR = "figures"
#: per task: what the new, always-trained part of the network is called
HEADS = {"classification": "classifier", "segmentation": "decoder"}
#: per metric: what its values mean, for the answers' note
SCALES = {"auc": "0.5 = chance, 1 = perfect", "dice": "overlap of predicted and true masks: 0 = none, 1 = perfect"}
#: column headings of the other test metrics, where the metric's name is not enough
METRIC_HEADINGS = {"balanced_accuracy": "balanced accuracy", "iou": "IoU", "hd95": "HD95 (px)"}


# -- what the report is built from ----------------------------------------------------------------------------------
@dataclass
class StudyFacts:
    """Everything the report shows, read once from the study folder."""

    folder: Path
    store: StudyStore
    config: dict
    environment: dict
    data: dict  # the dataset card written by the study; empty before the first trial ran
    trials: pd.DataFrame
    curves: pd.DataFrame
    summary: StudySummary
    label_kind: str  # classification only; "binary" otherwise

    @classmethod
    def read(cls, folder: Path) -> StudyFacts:
        store = StudyStore(folder)
        if not store.exists():
            raise DataError(f"{folder}: no study here ({store.path.name} is missing); run 'medtransfer study' first")
        store.check()
        meta = store.meta()
        data = json.loads(meta["data"]) if meta.get("data") else {}
        config = json.loads(meta["config"])
        label_kind = data.get("label_kind", "binary")
        return cls(folder, store, config, json.loads(meta.get("environment", "{}")), data, store.trials(),
                   store.curves(), summarize(store, label_kind, task=study_task(config, data)), label_kind)

    @property
    def task(self) -> str:
        """``classification`` or ``segmentation``."""
        return self.summary.task

    @property
    def metric(self) -> str:
        """The study metric's column stem: ``auc`` or ``dice``."""
        return self.summary.metric

    @property
    def metric_label(self) -> str:
        """The study metric as written: ``AUC`` or ``Dice``."""
        return self.summary.metric_label

    @property
    def head(self) -> str:
        """What the new, always-trained part of the network is called: ``classifier`` or ``decoder``."""
        return HEADS[self.task]

    @property
    def done(self) -> pd.DataFrame:
        return self.trials[self.trials.status == "done"] if len(self.trials) else self.trials

    @property
    def order(self) -> list[str]:
        """The strategies with results, shallow to deep."""
        return sorted(self.summary.table.strategy.unique(), key=strategy_order) if len(self.summary.table) else []

    @property
    def fractions(self) -> list[float]:
        """The training fractions with results, largest first."""
        return sorted(self.summary.table.fraction.unique(), reverse=True) if len(self.summary.table) else []

    def cell(self, strategy: str, fraction: float) -> pd.Series | None:
        """The summary row of one strategy at one fraction."""
        t = self.summary.table
        rows = t[(t.strategy == strategy) & (t.fraction == fraction)]
        return None if rows.empty else rows.iloc[0]

    def best(self, fraction: float, *, pretrained_only: bool = False) -> str | None:
        """The strategy with the best mean validation metric at ``fraction``, ties broken as the recommendation does."""
        t = self.summary.table
        rows = t[(t.fraction == fraction) & ((t.strategy != "scratch") | (not pretrained_only))]
        if rows.empty:
            return None
        val = f"val_{self.metric}"
        return min(rows.to_dict("records"), key=lambda r: (-r[val], _training_cost(r["strategy"])))["strategy"]

    def best_fine_tuned(self, fraction: float) -> str | None:
        """The pre-trained strategy with the best mean validation metric at ``fraction``."""
        return self.best(fraction, pretrained_only=True)

    def pair(self) -> tuple[str | None, str | None]:
        """(the recommended strategy, what it is shown against): scratch, or the best fine-tuned when scratch won."""
        rec = self.summary.recommended
        if rec is None:
            return None, None
        if rec != "scratch":
            return rec, "scratch" if "scratch" in self.order else None
        return rec, self.best_fine_tuned(self.summary.recommended_fraction)

    def runs(self, strategy: str, fraction: float) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """seed → (test sample indices, targets, probabilities) of the finished trials of one cell.

        For segmentation the "probabilities" are each test image's Dice (N×1) and the targets are zeros.
        """
        d = self.done
        seeds = d[(d.strategy == strategy) & (d.fraction == fraction)].seed
        out = {}
        for seed in sorted(int(s) for s in seeds):
            pred = self.store.predictions(trial_id(strategy, fraction, seed))
            if pred is not None:
                out[seed] = pred
        return out


def study_task(config: dict, data: dict) -> str:
    """The study's task: from the dataset card, else as configured; classification when neither tells."""
    task = data.get("task") or config.get("task")
    return task if task in TASK_METRICS else "classification"


# -- numbers into words ---------------------------------------------------------------------------------------------
def fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def signed(v: float, digits: int = 3) -> str:
    """A number with a real minus sign when negative."""
    return f"{v:.{digits}f}".replace("-", "−")


def ci_text(low: float, high: float, digits: int = 3) -> str:
    return f"95 % CI {signed(low, digits)} to {signed(high, digits)}"


def metric_with_ci(row: pd.Series | None, metric: str) -> str:
    """The mean test metric of a summary row with its interval: '0.912 (95 % CI 0.880 to 0.940)'."""
    if row is None:
        return "–"
    test = f"test_{metric}"
    return f"{fmt(row[test])} ({ci_text(row[f'{test}_low'], row[f'{test}_high'])})"


def describe_strategy(name: str, head: str = "classifier") -> str:
    """What a strategy trains, in words; ``head`` names the new part of the network (classifier, decoder)."""
    if name == "scratch":
        return "train every layer from random initialisation (no pre-training)"
    if name == "linear":
        return f"keep the pre-trained backbone frozen and train only the new {head}"
    if name == "full":
        return "fine-tune every layer of the pre-trained backbone"
    k = name.split(":")[1]
    return f"fine-tune the last {k} layer group{'s' if k != '1' else ''} of the pre-trained backbone and the new {head}"


def difference_sentence(c: Comparison, metric_label: str, winner_label: str | None = None) -> str:
    """'At 25 % of the training data, tune:2 beat scratch by 0.080 AUC (95 % CI 0.030 to 0.130; p = 0.010).'"""
    d = c.difference
    a = winner_label or c.a
    verb = "beat" if d["value"] > 0 else "trailed"
    return (f"At {percent(c.fraction)} of the training data, {a} {verb} {c.b} by {abs(d['value']):.3f} {metric_label} "
            f"({ci_text(d['ci_low'], d['ci_high'])}; p = {d['p_value']:.3f}; "
            f"{'significant' if d['significant'] else 'not significant'}).")


def redact_paths(text: str) -> str:
    """Replace anything that looks like a file path (it may name a patient's file) by '[path]'."""
    return re.sub(r"(?:[A-Za-z]:)?[^\s'\"()\[\]]*[/\\][^\s'\"()\[\],;]+", "[path]", text)


# -- answers to the three questions ---------------------------------------------------------------------------------
@dataclass
class Answer:
    question: str
    headline: str
    details: list[str]


def answer_scratch(facts: StudyFacts) -> Answer:
    """Question 1 from the per-fraction comparisons of the best fine-tuned strategy (by validation) with scratch."""
    q = "Does fine-tuning a pre-trained network beat training from scratch?"
    comps = facts.summary.scratch_vs_best
    if "scratch" not in facts.order:
        return Answer(q, "This study did not train from scratch, so it cannot answer this question.", [])
    if not comps:
        return Answer(q, "No fine-tuned strategy finished beside scratch, so there is nothing to compare.", [])
    wins = [c for c in comps if c.difference["significant"] and c.difference["value"] > 0]
    losses = [c for c in comps if c.difference["significant"] and c.difference["value"] < 0]

    def sizes(cs: list[Comparison]) -> str:
        return ", ".join(percent(c.fraction) for c in cs)

    if wins and len(wins) == len(comps):
        head = (f"Yes. The best fine-tuned strategy beat scratch at every training-set size tested ({sizes(comps)} "
                f"of the training data); every 95 % confidence interval of the difference excludes zero.")
    elif wins and not losses:
        head = (f"Partly. Fine-tuning beat scratch significantly at {sizes(wins)} of the training data; at the "
                f"other sizes the difference was within the uncertainty.")
    elif losses and not wins:
        head = (f"No. Training from scratch did significantly better at {sizes(losses)} of the training data; "
                f"elsewhere the difference was within the uncertainty.")
    elif losses:
        head = (f"It depends on the training-set size: fine-tuning won significantly at {sizes(wins)} and lost "
                f"at {sizes(losses)} of the training data.")
    else:
        ahead = sum(c.difference["value"] > 0 for c in comps)
        head = (f"Not clearly. Fine-tuning was ahead at {ahead} of {len(comps)} training-set sizes, but no "
                f"difference was significant: the study cannot tell the two apart. More seeds or a larger test "
                f"split would narrow the intervals.")
    details = [difference_sentence(c, facts.metric_label, f"fine-tuning ({c.a})") for c in comps]
    return Answer(q, head, details)


@dataclass
class Drop:
    """How much the mean test metric falls from the largest to the smallest training fraction, with a bootstrap CI."""

    value: float
    low: float
    high: float
    top: float
    small: float


def _interval(draws: np.ndarray) -> tuple[float, float, float]:
    """(point estimate = draw 0, 2.5 % and 97.5 % quantiles of the other draws)."""
    rest = draws[1:][np.isfinite(draws[1:])]
    low, high = np.quantile(rest, [0.025, 0.975]) if len(rest) else (np.nan, np.nan)
    return float(draws[0]), float(low), float(high)


def size_drops(facts: StudyFacts, scratch: str, tuned: str, top: float, small: float,
               n_resamples: int = 2000) -> tuple[Drop, Drop, tuple[float, float, float]] | None:
    """Each strategy's metric drop from ``top`` to ``small``, and the difference of the drops (scratch − tuned).

    All four cells were scored on the same test cases, so one case bootstrap resamples them together; each cell's
    metric is the mean over its seeds. ``None`` when a cell has no predictions or the test cases differ.
    """
    from medtransfer.metrics.paired import resample_cases, resampled_metric

    metric = resampled_metric(facts.task, facts.label_kind)

    cells = {(s, f): facts.runs(s, f) for s in (scratch, tuned) for f in (top, small)}
    if any(not runs for runs in cells.values()):
        return None
    first = next(iter(next(iter(cells.values())).values()))
    if any(not np.array_equal(r[0], first[0]) for runs in cells.values() for r in runs.values()):
        return None
    idx = resample_cases(len(first[0]), n_resamples, seed=0)
    with warnings.catch_warnings(), np.errstate(all="ignore"):  # a resample with one class only has no AUC
        warnings.simplefilter("ignore", RuntimeWarning)
        mean = {k: np.nanmean([metric(p, t, idx) for _s, t, p in runs.values()], axis=0) for k, runs in cells.items()}
    drop_s = mean[(scratch, top)] - mean[(scratch, small)]
    drop_t = mean[(tuned, top)] - mean[(tuned, small)]

    def drop(draws, s):
        return Drop(*_interval(draws), top=float(mean[(s, top)][0]), small=float(mean[(s, small)][0]))

    return drop(drop_s, scratch), drop(drop_t, tuned), _interval(drop_s - drop_t)


def answer_robustness(facts: StudyFacts) -> Answer:
    """Question 2: compare how much scratch and the recommended (or best fine-tuned) strategy lose on less data."""
    q = "Is fine-tuning more robust to small training sets?"
    fractions = facts.fractions
    if len(fractions) < 2:
        return Answer(q, "Only one training-set size was run, so this study cannot answer it; run the study with "
                         "several fractions (e.g. --fractions 1,0.5,0.25,0.1).", [])
    if "scratch" not in facts.order:
        return Answer(q, "This study did not train from scratch, so there is no baseline to compare with.", [])
    rec = facts.summary.recommended
    tuned = rec if rec and rec != "scratch" else facts.best_fine_tuned(fractions[0])
    top, small = fractions[0], fractions[-1]
    drops = size_drops(facts, "scratch", tuned, top, small) if tuned else None
    if drops is None:
        return Answer(q, "The cells needed for this comparison did not all finish, so it cannot be answered.", [])
    ds, dt, (diff, low, high) = drops
    span = f"from {percent(top)} to {percent(small)} of the training data"
    m = facts.metric_label

    def lost(name, d):
        verb = "lost" if d.value >= 0 else "gained"
        return (f"{name} {verb} {abs(d.value):.3f} {m} {span} ({fmt(d.top)} → {fmt(d.small)}; "
                f"{ci_text(d.low, d.high)}).")

    if low > 0:
        head = (f"Yes. Fine-tuning ({tuned}) lost {diff:.3f} {m} less than scratch when the training set shrank "
                f"{span} ({ci_text(low, high)}).")
    elif high < 0:
        head = (f"No. Scratch lost {abs(diff):.3f} {m} less than fine-tuning ({tuned}) when the training set shrank "
                f"{span} ({ci_text(low, high)}).")
    else:
        who = "Fine-tuning" if diff > 0 else "Scratch"
        head = (f"Not clearly. {who} lost {abs(diff):.3f} {m} less {span}, but the 95 % CI of that difference "
                f"({signed(low)} to {signed(high)}) includes zero.")
    return Answer(q, head, [lost("Scratch", ds), lost(f"Fine-tuning ({tuned})", dt)])


def answer_depth(facts: StudyFacts) -> Answer:
    """Question 3: the recommended depth, its neighbours' paired differences, and the best depth at each size."""
    q = "How deep should one fine-tune?"
    s = facts.summary
    if s.recommended is None:
        return Answer(q, "No trial finished, so there is no recommendation.", [])
    row, m = facts.cell(s.recommended, s.recommended_fraction), facts.metric_label
    if s.recommended == "scratch":
        head = (f"Training from scratch had the best validation {m} at {percent(s.recommended_fraction)} of the "
                f"training data; no fine-tuning depth did better on this dataset.")
    else:
        head = (f"{s.recommended}: {describe_strategy(s.recommended, facts.head)}. It had the best mean validation "
                f"{m} at {percent(s.recommended_fraction)} of the training data (test {m} "
                f"{metric_with_ci(row, facts.metric)}).")
    neighbours = [c for c in s.comparisons if c.b != "scratch"]
    better = [c for c in neighbours if c.difference["significant"] and c.difference["value"] < 0]
    if neighbours and not any(c.difference["significant"] for c in neighbours):
        head += (f" On the test split it was not significantly different from the neighbouring depth"
                 f"{'s' if len(neighbours) > 1 else ''} ({', '.join(c.b for c in neighbours)}): nearby depths "
                 f"perform alike here, so the cheaper one is a fair choice.")
    elif better:
        head += (f" Note that {', '.join(c.b for c in better)} scored significantly higher on the test split; "
                 f"the recommendation was made on the validation split alone.")
    details = [difference_sentence(c, m) for c in neighbours]
    per_size = [f"{percent(f)}: {facts.best(f)}" for f in facts.fractions]
    if len(per_size) > 1:
        details.append(f"Best strategy by validation {m} at each training-set size: " + "; ".join(per_size) + ".")
    return Answer(q, head, details)


# -- figures --------------------------------------------------------------------------------------------------------
def build_figures(facts: StudyFacts, out_dir: Path, *, show_filenames: bool) -> list[Figure]:
    """Draw every figure into ``out_dir``; a figure that cannot be drawn comes back with a note instead."""
    s = facts.summary
    if s.table.empty:
        return [Figure("results", "Results", note="No trial has finished yet, so there is nothing to plot.")]
    top = facts.fractions[0]
    figures = [
        figs.plot_metric_vs_depth(s.table, s.metric, facts.order, s.recommended, s.recommended_fraction, out_dir,
                                  head=facts.head),
        figs.plot_metric_vs_fraction(s.table, s.metric, facts.order, s.recommended, out_dir),
        figs.plot_validation_curves(facts.curves, facts.trials, s.metric, facts.order, s.recommended, top, out_dir),
    ]
    if facts.task == "segmentation":
        return [*figures, overlay_figure(facts, out_dir, show_filenames=show_filenames)]
    return [*figures, roc_figure(facts, top, out_dir), saliency_figure(facts, out_dir, show_filenames=show_filenames)]


def roc_figure(facts: StudyFacts, fraction: float, out_dir: Path) -> Figure:
    """ROC of the recommended strategy and its reference (scratch) from the stored test predictions."""
    runs = []
    for strategy in facts.pair():
        cell = facts.runs(strategy, fraction) if strategy else {}
        if cell:
            preds = list(cell.values())
            if all(np.array_equal(p[0], preds[0][0]) for p in preds):
                runs.append(figs.RocRuns(strategy, preds[0][1], [p[2] for p in preds]))
    return figs.plot_roc(runs, facts.label_kind, facts.data.get("classes", []), fraction, facts.summary.recommended,
                         out_dir)


def model_folder(facts: StudyFacts, strategy: str) -> Path | None:
    """The saved model of ``strategy``: ``models/<strategy>/`` (best per strategy), else its best trial's folder."""
    folder = facts.folder / "models" / strategy.replace(":", "-")
    if (folder / "model.json").is_file():
        return folder
    d = facts.done[facts.done.strategy == strategy].sort_values("val_score", ascending=False)
    for tid in d.id:
        folder = facts.folder / "models" / tid.replace("|", "_").replace(":", "-")
        if (folder / "model.json").is_file():
            return folder
    return None


@dataclass
class ModelInputs:
    """The saved models of the recommended strategy and its reference, and the study's data to show them on."""

    models: list[tuple[str, SavedModel]]  # the recommended strategy first
    prepared: PreparedData  # the study's data, read and split again
    input_size: int
    models_note: str  # which trial each model comes from, for the caption
    note: str  # which saved models are missing


def model_inputs(facts: StudyFacts, name: str, title: str, drawn: str, *, show_filenames: bool) -> ModelInputs | Figure:
    """Load the saved models of :meth:`StudyFacts.pair` and re-read the data; or, when neither model is there or the
    data cannot be read, the figure ``name`` with a note saying so (``drawn``: what the figure draws per model)."""
    from medtransfer.run import prepare_data
    from medtransfer.saved_model import load_model

    notes, models, trained_on = [], [], []
    for strategy in [s for s in facts.pair() if s]:
        folder = model_folder(facts, strategy)
        if folder is None:
            notes.append(f"The saved model of {strategy} (models/{strategy.replace(':', '-')}/) is missing, so its "
                         f"{drawn} are left out.")
            continue
        saved = load_model(folder)
        models.append((strategy, saved))
        trained_on.append(_trained_on(strategy, saved.spec.get("trial")))
    if not models:
        return Figure(name, title, note=" ".join(notes) or "No model to show.")
    config = StudyConfig(**facts.config)
    try:
        prepared = prepare_data(config.run_config(models[0][0], 1.0, config.seeds[0], "cpu"))
    except (MedTransferError, OSError) as e:
        reason = str(e) if show_filenames else redact_paths(str(e))
        return Figure(name, title, note=f"The test images could not be re-read from the data source ({reason}), so "
                                        f"no {drawn} were drawn. " + " ".join(notes))
    models_note = (f"Models: {'; '.join(trained_on)} (each strategy's trial with the best validation "
                   f"{facts.metric_label}). ")
    return ModelInputs(models, prepared, config.input_size, models_note, " ".join(notes))


def figure_of_models(facts: StudyFacts, name: str, title: str, drawn: str,
                     draw: Callable[[ModelInputs], Figure], *, show_filenames: bool) -> Figure:
    """``draw`` with the saved models of :meth:`StudyFacts.pair` and the re-read data, the missing models noted; or
    figure ``name`` with only a note when there is nothing to draw with."""
    inputs = model_inputs(facts, name, title, drawn, show_filenames=show_filenames)
    if isinstance(inputs, Figure):
        return inputs
    figure = draw(inputs)
    figure.note = " ".join(n for n in (figure.note, inputs.note) if n)
    return figure


def saliency_figure(facts: StudyFacts, out_dir: Path, *, show_filenames: bool) -> Figure:
    """Grad-CAM of the recommended model beside the scratch model on a few test images re-read from the source."""

    def draw(inputs: ModelInputs) -> Figure:
        images = figs.pick_test_images(inputs.prepared.data, inputs.prepared.split.test, inputs.input_size)
        return figs.plot_saliency(images, [(s, saved.net) for s, saved in inputs.models],
                                  {s: saved.task.probabilities for s, saved in inputs.models}, out_dir,
                                  fraction_note=inputs.models_note)

    return figure_of_models(facts, "saliency", "Where the models look: Grad-CAM on test images", "heat maps", draw,
                            show_filenames=show_filenames)


def overlay_figure(facts: StudyFacts, out_dir: Path, *, show_filenames: bool) -> Figure:
    """The masks predicted by the recommended model and its reference (scratch, or the best fine-tuned strategy when
    scratch won) over a few test images re-read from the source."""

    def draw(inputs: ModelInputs) -> Figure:
        data = inputs.prepared.data
        images = figs.pick_overlay_images(data, inputs.prepared.split.test, inputs.input_size)
        predictions = [figs.predict_masks(s, saved, images) for s, saved in inputs.models] if images else []
        return figs.plot_overlays(images, predictions, data.class_names, out_dir,
                                  recommended=facts.summary.recommended, models_note=inputs.models_note)

    return figure_of_models(facts, "overlay", "Predicted masks on test images", "predicted masks", draw,
                            show_filenames=show_filenames)


def _trained_on(strategy: str, tid: str | None) -> str:
    """'tune:2 trained on 100 % of the training data, seed 0' from a trial id 'tune:2|1|0'."""
    if not tid or tid.count("|") != 2:
        return strategy
    _s, fraction, seed = tid.split("|")
    return f"{strategy} trained on {percent(float(fraction))} of the training data (seed {seed})"


# -- HTML -----------------------------------------------------------------------------------------------------------
CSS = """
*{box-sizing:border-box}
html{-webkit-text-size-adjust:100%}
body{margin:0;background:#fff;color:#1f2328;font:15px/1.55 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",
Arial,sans-serif;overflow-wrap:break-word}
main{max-width:960px;margin:0 auto;padding:28px 24px 56px}
h1{font-size:1.75em;line-height:1.25;margin:0 0 .2em}
h2{font-size:1.3em;margin:2em 0 .6em;padding-bottom:.25em;border-bottom:1px solid #d8dee4}
h3{font-size:1.05em;margin:1.4em 0 .4em}
p,li{max-width:75ch}
.subtitle{color:#57606a;margin:0 0 1.2em}
nav{font-size:.9em;color:#57606a;margin-bottom:1.5em}
nav a{color:#0b5cad;text-decoration:none;margin-right:1em;white-space:nowrap}
.box{border:1px solid #d8dee4;border-left:5px solid #c0392b;background:#fdf5f4;padding:14px 18px;border-radius:4px}
.box .big{font-size:1.25em;font-weight:600;margin:0 0 .3em}
.answer{border-left:4px solid #0b5cad;padding:2px 0 2px 14px;margin:1em 0}
.answer p.headline{font-weight:600;margin:.2em 0}
.answer ul{margin:.3em 0 .3em 1.2em;padding:0}
.muted{color:#57606a;font-size:.9em}
.note{background:#fff8e1;border:1px solid #f0d58a;padding:8px 12px;border-radius:4px;font-size:.92em}
.table-box{max-width:100%;overflow-x:auto;margin:.6em 0 1em}
table{border-collapse:collapse;font-size:.9em}
th,td{padding:5px 10px;border-bottom:1px solid #e1e4e8;text-align:right;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
th:first-child,td:first-child{text-align:left}
td.text{text-align:left;white-space:normal;overflow-wrap:anywhere}
td small{color:#57606a;white-space:nowrap}
tr.recommended td{background:#fdf5f4;font-weight:600}
dl.facts{display:grid;grid-template-columns:minmax(10em,max-content) 1fr;gap:4px 18px;margin:.5em 0}
dl.facts dt{color:#57606a}
dl.facts dd{margin:0;overflow-wrap:anywhere}
figure{margin:1.6em 0;padding:0}
figure img{display:block;max-width:100%;height:auto;margin:0 auto;border:1px solid #eef0f2}
figcaption{font-size:.9em;color:#3d444d;margin-top:.5em}
ol.refs{font-size:.85em;color:#3d444d;columns:2;column-gap:2em}
img{max-width:100%;height:auto}
@media print{
  body{font-size:10.5pt}
  main{max-width:none;padding:0}
  nav{display:none}
  h2{break-after:avoid}
  figure,.box,.answer,table,dl.facts{break-inside:avoid}
  .table-box{overflow:visible}
}
"""


def _h(text) -> str:
    return escape(str(text))


def _table(header: list[str], rows: list[list[str]], row_classes: list[str] | None = None,
           text_columns: tuple[int, ...] = ()) -> str:
    """An HTML table in a box that scrolls sideways on narrow screens; cells are already-escaped HTML.

    ``text_columns`` hold prose (left-aligned, wrapped anywhere); the others hold numbers.
    """
    head = "".join(f"<th>{h}</th>" for h in header)

    def cell(i: int, c: str) -> str:
        return f'<td class="text">{c}</td>' if i in text_columns else f"<td>{c}</td>"

    body = "".join(
        (f'<tr class="{cls}">' if cls else "<tr>") + "".join(cell(i, c) for i, c in enumerate(row)) + "</tr>"
        for row, cls in zip(rows, row_classes or [""] * len(rows))
    )
    return f'<div class="table-box"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def _facts_list(items: list[tuple[str, str]]) -> str:
    return '<dl class="facts">' + "".join(f"<dt>{_h(k)}</dt><dd>{_h(v)}</dd>" for k, v in items) + "</dl>"


def section_recommendation(facts: StudyFacts) -> str:
    s = facts.summary
    if s.recommended is None:
        return ('<section id="recommendation"><h2>Recommendation</h2><p class="note">No trial has finished, so '
                'there is no recommendation yet.</p></section>')
    row, m, label = facts.cell(s.recommended, s.recommended_fraction), s.metric, s.metric_label
    sd = row[f"test_{m}_sd"] if row is not None else np.nan
    sd = f", SD over seeds {sd:.3f}" if np.isfinite(sd) else ""
    evidence = "".join(f"<li>{_h(c.sentence(label))}</li>" for c in s.comparisons)
    return (
        '<section id="recommendation"><h2>Recommendation</h2><div class="box">'
        f'<p class="big">Recommended strategy: {_h(s.recommended)}</p>'
        f"<p>In words: {_h(describe_strategy(s.recommended, facts.head))}.</p>"
        f"<p>Mean test {label} at {_h(percent(s.recommended_fraction))} of the training data: "
        f"<b>{_h(metric_with_ci(row, m))}</b> over {_h(_count(int(row.seeds) if row is not None else 0, 'seed'))}"
        f"{_h(sd)}; mean validation {label} {_h(fmt(row[f'val_{m}'] if row is not None else None))}.</p>"
        f'<p class="muted">Chosen as the strategy with the best mean validation {label} at the largest training set '
        "(ties go to the one that trains fewer layers); the test split was used only to report. Confidence "
        "intervals come from resampling the test cases (bootstrap); paired comparisons score both strategies on the "
        "same resampled cases.</p>"
        + (f"<h3>Paired evidence on the test split</h3><ul>{evidence}</ul>" if evidence else "")
        + "</div></section>"
    )


def section_questions(facts: StudyFacts) -> str:
    blocks = []
    for i, a in enumerate((answer_scratch(facts), answer_robustness(facts), answer_depth(facts)), start=1):
        details = "".join(f"<li>{_h(d)}</li>" for d in a.details)
        blocks.append(f'<div class="answer"><h3>{i}. {_h(a.question)}</h3><p class="headline">{_h(a.headline)}</p>'
                      + (f"<ul>{details}</ul>" if details else "") + "</div>")
    return ('<section id="answers"><h2>Answers</h2><p class="muted">Differences are in '
            f"{_h(facts.metric_label)} ({_h(SCALES[facts.metric])}), with 95 % confidence intervals; 'significant' "
            "means the interval excludes zero.</p>"
            + "".join(blocks) + "</section>")


def section_results(facts: StudyFacts) -> str:
    t = facts.summary.table
    if t.empty:
        return ""
    fractions, rec, m, label = facts.fractions, facts.summary.recommended, facts.metric, facts.metric_label
    rows, classes = [], []
    for s in facts.order:
        cells = [_result_cell(facts.cell(s, f), m) for f in fractions]
        top = facts.cell(s, fractions[0])
        name = f"{_h(s)}{' ★' if s == rec else ''}"
        rows.append([name, *cells, fmt(top[f"val_{m}"] if top is not None else None),
                     str(int(t[t.strategy == s].seeds.max()))])
        classes.append("recommended" if s == rec else "")
    main = _table(["strategy", *[f"{_h(percent(f))} of train" for f in fractions],
                   f"val {label} at " + _h(percent(fractions[0])), "seeds"], rows, classes)
    return ('<section id="results"><h2>Results</h2>'
            f"<p>Mean test {label} over seeds for each strategy (rows, shallow to deep) and training-set size "
            "(columns), with its 95 % case-bootstrap confidence interval below. ★ marks the recommended strategy.</p>"
            + main + f"<h3>Other test metrics at {_h(percent(fractions[0]))} of the training data</h3>"
            f"<p class='muted'>Means over seeds; {_h(_metrics_note(facts))}</p>" + _other_metrics(facts)
            + "</section>")


def _result_cell(row: pd.Series | None, metric: str) -> str:
    """A results-table cell: the mean test metric, with its interval below."""
    if row is None:
        return "–"
    test = f"test_{metric}"
    return f"{fmt(row[test])}<br><small>{signed(row[f'{test}_low'], 2)} to {signed(row[f'{test}_high'], 2)}</small>"


def _other_metrics(facts: StudyFacts) -> str:
    """The task's other test metrics (accuracy …, or IoU and HD95) and the time per trial, at the largest fraction."""
    names = TASK_METRICS[facts.task][2]
    rows = []
    for s in facts.order:
        row = facts.cell(s, facts.fractions[0])
        if row is not None:
            rows.append([_h(s), *[fmt(row.get(f"test_{n}")) for n in names], f"{row.seconds:.0f}"])
    return _table(["strategy", *[_h(METRIC_HEADINGS.get(n, n)) for n in names], "seconds / trial"], rows)


def _metrics_note(facts: StudyFacts) -> str:
    """How the other test metrics were computed, for the task and label kind at hand."""
    classes = facts.data.get("classes", [])
    if facts.task == "segmentation":
        return ("Dice and IoU compare each test image's predicted mask with the true one, per foreground class, and "
                "are averaged over images (1 when both masks are empty); HD95 is the 95th percentile of the distances "
                f"between the two masks' borders, in pixels at the {facts.config.get('input_size')} px input size, "
                "over the images where neither mask is empty.")
    if facts.label_kind == "binary" and len(classes) == 2:
        return (f"each image is assigned its most probable class (threshold 0.5); sensitivity and specificity treat "
                f"'{classes[1]}' as the positive class.")
    if facts.label_kind == "multilabel":
        return "a label counts as present at probability 0.5 or more; sensitivity and specificity are averaged over labels."
    return "each image is assigned its most probable class; sensitivity and specificity are averaged over classes."


def section_figures(figures: list[Figure], show_filenames: bool, source: str) -> str:
    parts = [('<section id="figures"><h2>Figures</h2><p class="muted">Vector versions (SVG) for publication are in '
              f"the study folder under {FIGURES_DIR}/.</p>")]
    for n, f in enumerate(figures, start=1):
        parts.append(f'<figure id="fig-{_h(f.name)}">')
        if f.png is not None:
            data = base64.b64encode(f.png.read_bytes()).decode("ascii")
            parts.append(f'<img src="data:image/png;base64,{data}" alt="{_h(f.title)}">')
        parts.append(f"<figcaption><b>Figure {n}. {_h(f.title)}.</b> {_h(f.caption)}</figcaption>")
        if f.note:
            parts.append(f'<p class="note">{_h(f.note)}</p>')
        if f.image_refs and show_filenames:
            refs = "".join(f"<li>{_h(display_ref(r, source))}</li>" for r in f.image_refs)
            parts.append(f'<p class="muted">Images, {_h(f.image_order)}:</p><ol class="refs">{refs}</ol>')
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
             ("classes", ", ".join(d.get("classes", []))),
             ("split", _split_text(facts)),
             ("images", (f"train {counts.get('train', '–')}, validation {counts.get('val', '–')}, test "
                         f"{counts.get('test', '–')}")),
             ("image size", (f"resized to {facts.config.get('input_size')} × {facts.config.get('input_size')} px "
                             f"for the networks"))]
    per_class = d.get("per_class", {})  # classification only: segmentation labels pixels, not images
    used = counts.get("train_used")
    train_label = "train" if used == counts.get("train") else f"train (the {used} used by the first trial)"
    rows = []
    for c in d.get("classes", []) if per_class else []:
        rows.append([_h(c), *[str(per_class.get(k, {}).get(c, "–")) for k in ("train_used", "val", "test")]])
    rows.append(["<b>all</b>", *[f"<b>{v}</b>" for v in (used, counts.get("val", "–"), counts.get("test", "–"))]])
    heading, first = ("Images per class and split", "class") if per_class else ("Images per split", "")
    return ('<section id="dataset"><h2>Dataset</h2>' + _facts_list(items)
            + f"<h3>{heading}</h3>" + _table([first, _h(train_label), "validation", "test"], rows)
            + "</section>")


def _task_text(facts: StudyFacts) -> str:
    """'binary classification', 'multi-class classification', …, or segmentation."""
    if facts.task == "segmentation":
        return "segmentation (one class per pixel, the first class being the background)"
    kind = facts.data.get("label_kind")
    return {"binary": "binary classification", "multiclass": "multi-class classification",
            "multilabel": "multi-label classification"}.get(kind, kind or "–")


def _split_text(facts: StudyFacts) -> str:
    """How the data were split into train, validation and test."""
    if facts.data.get("split_given"):
        return "given by the source"
    from medtransfer.tasks import TASKS

    test = facts.config.get("test_fraction") or TASKS[facts.task].test_fraction
    how = "grouped by patient (or volume) where known" if facts.task == "segmentation" else \
        "stratified and grouped by patient where known"
    return (f"made by medtransfer: {how}, {round(100 * (0.9 - test))}/10/{round(100 * test)}, split seed "
            f"{facts.config.get('split_seed', 0)}")


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
        ("epochs", f"at most {train.get('epochs', '–')}"
                   + (f", early stop after {train['patience']} epochs without validation gain"
                      if train.get("patience") else "")),
        ("optimiser", (f"{train.get('optimizer', '–')}, learning rate {train.get('lr', '–')} ({facts.head} ×"
                       f"{train.get('head_lr_multiplier', 1)}), weight decay {train.get('weight_decay', '–')}, "
                       f"batch size {train.get('batch_size', '–')}, warm-up {train.get('warmup_epochs', 0)} "
                       f"epoch(s)")),
        *([("class weighting", "balanced" if train.get("class_weighting") else "none")]
          if facts.task == "classification" else []),  # segmentation does not weight classes
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
    return '<section id="setup"><h2>Set-up</h2>' + _facts_list(items) + "</section>"


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if seconds < 120 else f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"


def section_failed(facts: StudyFacts, show_filenames: bool) -> str:
    failed = facts.summary.failed
    if failed is None or len(failed) == 0:
        return '<section id="failed"><h2>Failed trials</h2><p>None: every recorded trial finished.</p></section>'
    rows = []
    for r in failed.itertuples():
        error = str(r.error or "") if show_filenames else redact_paths(str(r.error or ""))
        rows.append([_h(r.strategy), _h(percent(r.fraction)), _h(r.seed), _h(error)])
    hidden = "" if show_filenames else " Paths in the messages are hidden; failures.log in the study folder has them."
    return ('<section id="failed"><h2>Failed trials</h2>'
            f"<p>{len(failed)} trial(s) failed and are left out of every number above.{hidden}</p>"
            + _table(["strategy", "fraction", "seed", "error"], rows, text_columns=(3,))
            + "</section>")


def render(facts: StudyFacts, figures: list[Figure], *, show_filenames: bool) -> str:
    """The whole page."""
    name = facts.data.get("name") or Path(str(facts.config.get("data", "study"))).name
    modality = facts.data.get("modality")
    subtitle = (f"{modality + ' · ' if modality else ''}{facts.config.get('backbone', '')} · "
                f"{len(facts.order)} strategies × {len(facts.fractions)} training-set sizes × "
                f"{len(facts.config.get('seeds', []))} seeds")
    nav = "".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("recommendation", "Recommendation"), ("answers", "Answers"), ("results", "Results"), ("figures", "Figures"),
        ("dataset", "Dataset"), ("setup", "Set-up"), ("failed", "Failed trials")))
    body = "".join([
        f"<header><h1>Full training or fine-tuning? {_h(name)}</h1><p class='subtitle'>{_h(subtitle)}</p></header>",
        f"<nav>{nav}</nav>",
        section_recommendation(facts),
        section_questions(facts),
        section_results(facts),
        section_figures(figures, show_filenames, str(facts.data.get("source", facts.config.get("data", "")))),
        section_dataset(facts),
        section_setup(facts),
        section_failed(facts, show_filenames),
    ])
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>Transfer-learning study: {_h(name)}</title><style>{CSS}</style></head>"
            f"<body><main>{body}</main></body></html>\n")


def write_report(study_dir: str | Path, *, show_filenames: bool = False) -> Path:
    """Write ``study_dir/report.html`` (and the figures as PNG and SVG in ``study_dir/figures/``); return its path.

    ``show_filenames=True`` lists the file name of each image shown in the heat maps; by default no file name
    appears on the page.
    """
    folder = Path(study_dir)
    facts = StudyFacts.read(folder)
    figures = build_figures(facts, folder / FIGURES_DIR, show_filenames=show_filenames)
    path = folder / REPORT_NAME
    atomic_write(path, render(facts, figures, show_filenames=show_filenames))
    return path
