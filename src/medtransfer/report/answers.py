"""The report's prose: numbers into words, and the answers to the study's three questions.

1. Does fine-tuning beat training from scratch?  2. Is fine-tuning more robust to small training sets?
3. How deep should one fine-tune?  Every sentence speaks the task's metric, in its direction ("beat" means better
by the metric, whether higher or lower is better); the numbers come from :mod:`medtransfer.study.summary`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from medtransfer.plots import percent
from medtransfer.report.facts import StudyFacts
from medtransfer.study.recommend import rule_phrase, rule_sentence
from medtransfer.study.halving import describe_halving
from medtransfer.study.search import describe_chains
from medtransfer.study.summary import Comparison, size_drops


# -- numbers into words ---------------------------------------------------------------------------------------------
def fmt(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or not np.isfinite(v) else f"{v:.{digits}f}"


def signed(v: float, digits: int = 3) -> str:
    """A number with a real minus sign when negative."""
    return f"{v:.{digits}f}".replace("-", "−")


def ci_text(low: float, high: float, digits: int = 3) -> str:
    return f"95 % CI {signed(low, digits)} to {signed(high, digits)}"


def metric_with_ci(row: pd.Series | None, metric: str) -> str:  # metric: the column stem
    """The mean test metric of a summary row with its interval: '0.912 (95 % CI 0.880 to 0.940)'."""
    if row is None:
        return "–"
    test = f"test_{metric}"
    return f"{fmt(row[test])} ({ci_text(row[f'{test}_low'], row[f'{test}_high'])})"


def describe_strategy(name: str, head: str = "head") -> str:
    """What a strategy trains, in words; ``head`` names the new part of the network (classifier, decoder)."""
    if name == "scratch":
        return "train every layer from random initialisation (no pre-training)"
    if name == "linear":
        return f"keep the pre-trained backbone frozen and train only the new {head}"
    if name == "full":
        return "fine-tune every layer of the pre-trained backbone"
    if name == "lp-ft":
        return (f"train the new {head} on the frozen pre-trained backbone first, then fine-tune every layer from "
                f"there (LP-FT)")
    k = name.split(":")[1]
    if name.startswith("surgical:"):
        return (f"fine-tune only layer group {k} (counted from the input) of the pre-trained backbone and the new "
                f"{head} (surgical fine-tuning)")
    return f"fine-tune the last {k} layer group{'s' if k != '1' else ''} of the pre-trained backbone and the new {head}"


def choice_sentences(summary, metric_label: str) -> list[str]:
    """How the recommendation was chosen: the rule, the strategies level with the best on validation, and where a
    layer-wise search stopped."""
    out = [f"Chosen by {rule_sentence(summary.rule, metric_label)}; the test split was used only to report."]
    choice = summary.choices.get(summary.recommended_fraction)
    if choice is not None:
        others = [s for s in choice.level if s != summary.recommended]
        se = choice.evidence[choice.best].se if choice.best in choice.evidence else float("nan")
        if not np.isfinite(se):
            out.append("With one seed and no per-case validation records there is no standard error, so it cannot "
                       "be said which strategies the validation data separate.")
        elif others:
            out.append(f"Level with the best on validation (within one standard error, {se:.3f}, of "
                       f"{choice.best}'s mean): {', '.join(others)}. The validation data cannot separate "
                       f"{'these' if len(others) > 1 else 'the two'}.")
        else:
            out.append(f"No other strategy came within one standard error ({se:.3f}) of the best validation mean.")
    chains = (summary.search or {}).get("chains", [])
    if chains:
        out.append(f"Layer-wise search (deeper one group at a time, stopping after "
                   f"{(summary.search or {}).get('patience_depth')} depths in a row without a gain beyond one "
                   f"standard error; scratch and full always trained): {describe_chains(chains, percent)}.")
    if (summary.search or {}).get("kind") == "halving":
        out.append(f"Successive halving (every trial started; at each rung the worse ones stopped, and only the "
                   f"trials that trained to the end are compared): {describe_halving(summary.search, percent)}.")
    return out


def difference_sentence(c: Comparison, metric_label: str, winner_label: str | None = None) -> str:
    """'At 25 % of the training data, tune:2 beat scratch by 0.080 AUC (95 % CI 0.030 to 0.130; p = 0.010).'"""
    d = c.difference
    a = winner_label or c.a
    verb = "beat" if c.a_better else "trailed"
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
    wins = [c for c in comps if c.difference["significant"] and c.a_better]
    losses = [c for c in comps if c.difference["significant"] and not c.a_better]

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
        ahead = sum(c.a_better for c in comps)
        head = (f"Not clearly. Fine-tuning was ahead at {ahead} of {len(comps)} training-set sizes, but no "
                f"difference was significant: the study cannot tell the two apart. More seeds or a larger test "
                f"split would narrow the intervals.")
    details = [difference_sentence(c, facts.metric.label, f"fine-tuning ({c.a})") for c in comps]
    return Answer(q, head, details)


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
    drops = size_drops(facts.records, "scratch", tuned, top, small) if tuned else None
    if drops is None:
        return Answer(q, "The cells needed for this comparison did not all finish, so it cannot be answered.", [])
    ds, dt, d = drops
    diff, low, high = d["value"], d["ci_low"], d["ci_high"]
    span = f"from {percent(top)} to {percent(small)} of the training data"
    m = facts.metric.label

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
    row, m = facts.cell(s.recommended, s.recommended_fraction), facts.metric.label
    if s.recommended == "scratch":
        head = (f"Training from scratch had the best validation {m} at {percent(s.recommended_fraction)} of the "
                f"training data; no fine-tuning depth did better on this dataset.")
    else:
        head = (f"{s.recommended}: {describe_strategy(s.recommended, facts.head)}. It was chosen as the "
                f"{rule_phrase(s.rule)} {m} at {percent(s.recommended_fraction)} of the training data (test {m} "
                f"{metric_with_ci(row, facts.metric.name)}).")
    neighbours = [c for c in s.comparisons if c.b != "scratch"]
    better = [c for c in neighbours if c.difference["significant"] and not c.a_better]
    if neighbours and not any(c.difference["significant"] for c in neighbours):
        head += (f" On the test split it was not significantly different from the neighbouring depth"
                 f"{'s' if len(neighbours) > 1 else ''} ({', '.join(c.b for c in neighbours)}): nearby depths "
                 f"perform alike here, so the cheaper one is a fair choice.")
    elif better:
        head += (f" Note that {', '.join(c.b for c in better)} scored significantly higher on the test split; "
                 f"the recommendation was made on the validation split alone.")
    details = [difference_sentence(c, m) for c in neighbours] + choice_sentences(s, m)[1:]
    per_size = [f"{percent(f)}: {facts.best(f)}" for f in facts.fractions]
    if len(per_size) > 1:
        details.append(f"The rule's pick on validation {m} at each training-set size: " + "; ".join(per_size) + ".")
    return Answer(q, head, details)
