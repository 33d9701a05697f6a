"""``MODEL_CARD.md``: what a saved model is for and how well it works, in the sections of Mitchell et al. (FAT* 2019)
as Hugging Face's model cards use them: model details, intended use, training data, evaluation, calibration,
limitations, how to use it, versions.

The card is written from what the run or the study recorded (the model's ``model.json``, its test metrics, the
dataset card and the package versions); the dataset card is shown without file names, sample references or patient
identifiers. Every recorded value goes through :func:`markdown_text`: a class named ``<img src=x onerror=...>`` or
``a|b`` is shown as that name, never read as HTML, a link or a table column.
"""

from __future__ import annotations

from pathlib import Path

from medtransfer.compat import task_of_model
from medtransfer.files import atomic_write
from medtransfer.names import quoted_name, quoted_names

#: the dataset card's entries that a model card shows (never notices, which may name files, nor fingerprints)
DATA_FIELDS = ("name", "task", "modality", "classes", "split_given", "counts", "patients", "label_kind", "per_class")

#: HTML's special characters as entities (Markdown renderers that allow HTML would run a tag), Markdown's emphasis,
#: code, link and table characters backslash-escaped, and line breaks as character references (a raw one would end
#: a list item or a table row): the rendered text is the original string.
_MARKDOWN = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\n": "&#10;", "\r": "&#13;",
                           **{c: "\\" + c for c in "\\`*_[]|~"}})


def markdown_text(value) -> str:
    """``value`` as Markdown inline text (also inside a table cell) that renders as exactly ``str(value)``."""
    return str(value).translate(_MARKDOWN)


def _value(m: dict) -> str:
    if not isinstance(m, dict) or m.get("value") is None:
        return "–"
    lo, hi = m.get("ci_low"), m.get("ci_high")
    ci = f" (95 % CI {lo:.3f}–{hi:.3f})" if lo is not None and hi is not None else ""
    return f"{m['value']:.3f}{ci}"


def model_card(spec: dict, test: dict, data: dict, environment: dict, *, choice: str, metric: str = "") -> str:
    """The card as Markdown. ``spec``: the model's ``model.json``; ``test``: its test metrics
    (``{name: {value, ci_low, ci_high}}``); ``data``: the dataset card; ``choice``: why this strategy."""
    data = {k: data[k] for k in DATA_FIELDS if k in data}
    task = task_of_model(spec)  # what the model is for and what it outputs are its task's to say
    lines = [*_details(spec, data, choice, task.name, task.writer.uses), *_training_data(data),
             *_evaluation(test, metric), *_calibration(spec.get("calibration"), task.writer.outputs),
             *_limitations(spec, data), *_usage(environment)]
    return "\n".join(lines)


def _details(spec: dict, data: dict, choice: str, task: str, uses: str) -> list[str]:
    md, size, strategy = markdown_text, spec.get("input_size"), markdown_text(spec.get("strategy"))
    return [
        f"# Model card: {md(spec.get('backbone'))} · {strategy} · {md(data.get('name', 'dataset'))}",
        "",
        "## Model details",
        f"- Task: {md(task)}; classes: {md(quoted_names(spec.get('class_names', [])))}.",
        f"- Network: {md(spec.get('backbone'))} (timm), starting from "
        f"{md(spec.get('weights_description') or spec.get('weights'))}; "
        f"strategy {strategy} ({spec.get('frozen_groups')} of {spec.get('num_groups')} layer groups frozen).",
        f"- Input: {size}×{size} px, {'gray' if spec.get('channels') == 1 else 'RGB'}; images are resized to it "
        f"(bicubic, aspect ratio not kept) and normalised inside the network.",
        f"- Why this strategy: {md(choice)}",
        "- Files: `model.safetensors` (weights) + `model.json` (everything needed to rebuild and feed it); no pickle.",
        "",
        "## Intended use",
        f"- Research on {md(data.get('modality') or 'medical')} images like those it was trained on: {uses} "
        f"as a second reader or to sort images, with a person checking every result.",
        "- Not intended for diagnosis or treatment decisions on its own, for other modalities, body parts, devices "
        "or sites than those of the training data, or for images of other classes.",
    ]


def _training_data(data: dict) -> list[str]:
    md, counts = markdown_text, data.get("counts", {})
    lines = [
        "",
        "## Training data",
        f"- Dataset: {md(data.get('name'))} ({md(data.get('modality') or 'modality not recorded')}); split "
        f"{'as given by the source' if data.get('split_given') else 'made by medtransfer, seeded'}.",
        f"- Images: {counts.get('train_used', '–')} used for training (of {counts.get('train', '–')} in the training "
        f"split), {counts.get('val', '–')} for validation, {counts.get('test', '–')} for test.",
    ]
    if data.get("patients"):
        p = data["patients"]
        lines.append(f"- Patients: {p.get('count')} (images per patient: min / median / max "
                     f"{' / '.join(map(md, p.get('images_per_patient', [])))}); no patient is in two splits.")
    for part, per in (data.get("per_class") or {}).items():
        lines.append(f"- {md(part)}: " + ", ".join(f"{md(quoted_name(k))} {md(v)}" for k, v in per.items()))
    return lines


def _evaluation(test: dict, metric: str) -> list[str]:
    lines = ["", "## Evaluation (test split, never used for choosing or fitting)", "",
             "| metric | value (95 % bootstrap CI) |", "|---|---|"]
    return lines + [f"| {markdown_text(name.replace('_', ' ', 1))}{' (study metric)' if name == metric else ''} | "
                    f"{_value(m)} |" for name, m in test.items()]


def _calibration(cal: dict | None, outputs: str | None) -> list[str]:
    """The fitted calibration; else why there is none (``outputs``: what the model outputs, when not
    probabilities)."""
    lines = ["", "## Calibration"]
    if cal:
        lines.append(f"- {cal.get('method', 'calibration').capitalize()} fitted on the validation split: temperature "
                     f"{cal.get('temperature', 1.0):.3f}; the probabilities `predict` and the ONNX export give "
                     f"include it.")
        if cal.get("test_ece_before") is not None:
            lines.append(f"- Expected calibration error on test (15 bins): {cal['test_ece_before']:.3f} before, "
                         f"{cal['test_ece_after']:.3f} after (`reliability.png` in a run folder).")
    elif outputs is None:
        lines.append("- None: the probabilities are the network's softmax as trained; read them as scores, not risks.")
    else:
        lines.append(f"- Not applicable: the model outputs {outputs}.")
    return lines


def _limitations(spec: dict, data: dict) -> list[str]:
    size, counts = spec.get("input_size"), data.get("counts", {})
    return [
        "",
        "## Limitations",
        f"- Small data: {counts.get('train_used', '–')} training images; the test metrics' intervals above show how "
        f"uncertain they are with {counts.get('test', '–')} test images.",
        "- One source: the images come from one dataset and are likely from few sites and devices; performance on "
        "other sites, scanners or populations is unknown until measured there.",
        f"- Input size: the network sees {size}×{size} px; finer detail than that is lost, and images of other "
        "aspect ratios are distorted by the resize.",
        "- Probabilities are calibrated on the validation split of the same source; on other data they may not be.",
    ]


def _usage(environment: dict) -> list[str]:
    return [
        "",
        "## How to use",
        "```bash",
        "medtransfer predict MODEL_FOLDER IMAGES/ --out predictions/   # CSV (masks, boxes) per image, errors.csv",
        "medtransfer export MODEL_FOLDER --format onnx                  # model.onnx + model.onnx.json",
        "```",
        "",
        "## Versions",
        "- " + ", ".join(f"{markdown_text(k)} {markdown_text(v)}" for k, v in environment.items() if k != "platform"),
        "",
    ]


def write_model_card(folder: str | Path, spec: dict, test: dict, data: dict, environment: dict, *, choice: str,
                     metric: str = "") -> Path:
    path = Path(folder) / "MODEL_CARD.md"
    atomic_write(path, model_card(spec, test, data, environment, choice=choice, metric=metric))
    return path
