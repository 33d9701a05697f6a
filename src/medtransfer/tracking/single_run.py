"""``medtransfer train --track …``: the finished run folder as one tracked run (no parent: a run is not a study)."""

from __future__ import annotations

from pathlib import Path

from medtransfer.tracking.base import DictMemory, StudyFacts, StudyResults, TrialFacts
from medtransfer.tracking.guard import Tracking
from medtransfer.tracking.spec import open_trackers, parse_track

#: the run folder's files kept with its run
ARTIFACTS = ("metrics.json", "history.csv", "curve.png", "test_predictions.csv", "MODEL_CARD.md")


def track_run(track, out: Path, metrics: dict, history: list[dict], warn=print, experiment: str | None = None) -> None:
    """Log the run written to ``out`` (its ``metrics.json`` content and epoch ``history``) to the trackers of
    ``track`` (in the MLflow experiment ``experiment``, default the run folder's name); a tracker that fails is
    reported with ``warn`` and the run folder stays as it is."""
    specs = parse_track(track)
    if not specs:
        return
    out = Path(out)
    config, metric = metrics["config"], metrics["metric"]
    tags = {"task": metrics["task"], "data_fingerprint": metrics["data"].get("fingerprint"), "status": "finished",
            "stopped": metrics["stopped"], "best_epoch": metrics["best_epoch"]}
    tags = {k: str(v) for k, v in tags.items() if v is not None}
    tracking = Tracking(open_trackers(specs, out), warn)
    memories: dict[str, DictMemory] = {}
    tracking.start(StudyFacts(name=experiment or out.name, folder=out, config=config, tags=tags, nested=False),
                   lambda key: memories.setdefault(key, DictMemory()))
    params = {k: config.get(k) for k in ("backbone", "weights", "strategy", "seed", "input_size", "augmentation",
                                         "precision")}
    params.update(fraction=config.get("train_fraction"), device=metrics["device"],
                  trainable_parameters=metrics["trainable_parameters"],
                  **{k: (config.get("train") or {}).get(k) for k in ("epochs", "lr", "batch_size", "optimizer")})
    finals = {f"final_val_{metric}": metrics["val"][metric]}
    for name, value in metrics["test"].items():
        finals.update({f"test_{name}": value["value"], f"test_{name}_low": value["ci_low"],
                       f"test_{name}_high": value["ci_high"]})
    key = f"{config.get('strategy')}|{config.get('train_fraction'):g}|{config.get('seed')}"
    tracking.trial_done(TrialFacts(
        key=key, name=f"{out.name} · {config.get('strategy')} · seed {config.get('seed')}",
        params={k: v for k, v in params.items() if v is not None}, history=history,
        metrics={k: float(v) for k, v in finals.items() if v is not None}, tags=tags))
    tracking.end(StudyResults(tags={}, artifacts=[out / n for n in ARTIFACTS], model=out))
