"""MLflow: one experiment per study, a parent run per study (continued on resume), a nested child run per trial,
and the recommended model logged once with its model card.

Everything goes through :class:`mlflow.MlflowClient` with explicit run ids, so the tracker never depends on (or
changes) an active run of the process, except for ``mlflow.pytorch.log_model``, which logs into the run it is
started in.
"""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

from medtransfer.tracking.base import RunMemory, StudyFacts, StudyResults, TrialFacts

#: MLflow's limits per ``log_batch`` call
_MAX_METRICS, _MAX_PARAMS = 1000, 100
_STUDY = "study"  # the parent run's key in the memory


class MlflowTracker:
    def __init__(self, uri: str):
        self.uri = uri
        self.label = f"mlflow ({uri})"
        self.key = f"mlflow:{uri}"
        self.client = None
        self.experiment_id = self.parent = None
        self.last_run = None  # the latest trial's run: a single run's (``train``) results go there
        self.memory: RunMemory | None = None
        self.fresh = False  # the parent run was made now: remembered child runs belong to another store

    # -- study -------------------------------------------------------------------------------------------
    def on_study_start(self, study: StudyFacts, memory: RunMemory) -> None:
        from mlflow import MlflowClient

        for name in ("mlflow", "alembic"):  # their set-up chatter (database migrations) is not the study's output
            logging.getLogger(name).setLevel(logging.WARNING)
        self.client, self.memory, self.nested = MlflowClient(self.uri), memory, study.nested
        self.experiment_id = self._experiment(study.name, study.folder)
        if not study.nested:
            return
        known = memory.get(_STUDY)
        if known is not None and self._exists(known[0]):
            self.parent = known[0]
            self.client.update_run(self.parent, status="RUNNING")
            return
        self.fresh = True
        run = self.client.create_run(self.experiment_id, run_name=study.name,
                                     tags={**study.tags, "medtransfer.kind": "study"})
        self.parent = run.info.run_id
        memory.remember(_STUDY, self.parent, False)
        self._log(self.parent, params=_flat_params(study.config))
        self.client.log_dict(self.parent, study.config, "study_config.json")

    def _experiment(self, name: str, folder: Path) -> str:
        found = self.client.get_experiment_by_name(name)
        if found is None:
            location = (Path(folder) / "mlartifacts").resolve().as_uri() if self.uri.startswith("sqlite:") else None
            # a model-training experiment (MLflow 3's UI otherwise opens it as a GenAI one, on traces)
            return self.client.create_experiment(name, artifact_location=location,
                                                 tags={"mlflow.experimentKind": "custom_model_development"})
        if found.lifecycle_stage == "deleted":
            self.client.restore_experiment(found.experiment_id)
        return found.experiment_id

    def _exists(self, run_id: str) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            return self.client.get_run(run_id).info.lifecycle_stage == "active"
        except MlflowException:
            return False

    # -- trials ------------------------------------------------------------------------------------------
    def on_trial_done(self, trial: TrialFacts) -> None:
        known = self.memory.get(trial.key)
        if known is not None and not self.fresh:
            if known[1]:
                return  # logged in full before: a resume does not log it twice
            if self._exists(known[0]):
                self.client.delete_run(known[0])  # half logged when the study was killed: logged again below
        tags = {**trial.tags, "medtransfer.trial": trial.key}
        if self.parent is not None:
            tags["mlflow.parentRunId"] = self.parent
        end = int(trial.ended * 1000) if trial.ended else None  # the run spans the trial's training, not its logging
        start = end - int((trial.seconds or 0) * 1000) if end else None
        run_id = self.client.create_run(self.experiment_id, start_time=start, run_name=trial.name,
                                        tags=tags).info.run_id
        self.memory.remember(trial.key, run_id, False)
        self._log(run_id, params=trial.params, metrics=_metrics(trial))
        self.client.set_terminated(run_id, status="FAILED" if trial.status == "failed" else "FINISHED", end_time=end)
        self.memory.remember(trial.key, run_id, True)
        self.last_run = run_id

    def _log(self, run_id: str, params: dict | None = None, metrics: list | None = None,
             tags: dict | None = None) -> None:
        from mlflow.entities import Param, RunTag

        params = [Param(k, _text(v)) for k, v in (params or {}).items()]
        for i in range(0, len(params), _MAX_PARAMS):
            self.client.log_batch(run_id, params=params[i:i + _MAX_PARAMS])
        metrics = metrics or []
        for i in range(0, len(metrics), _MAX_METRICS):
            self.client.log_batch(run_id, metrics=metrics[i:i + _MAX_METRICS])
        if tags:
            self.client.log_batch(run_id, tags=[RunTag(k, _text(v)) for k, v in tags.items()])

    # -- results -----------------------------------------------------------------------------------------
    def on_study_end(self, results: StudyResults) -> None:
        run_id = self.parent or self.last_run
        if run_id is None:
            return
        self._log(run_id, tags=results.tags)
        for path in results.artifacts:
            if Path(path).is_file():
                self.client.log_artifact(run_id, str(path))
        if results.model is not None:
            known = self.memory.get(results.model_key)
            if known is None or not known[1] or self.fresh:
                self._log_model(run_id, Path(results.model))
                self.memory.remember(results.model_key, run_id, True)
        if self.parent is not None:
            self.client.set_terminated(self.parent, status="FINISHED")
            self.memory.remember(_STUDY, self.parent, True)

    def _log_model(self, run_id: str, folder: Path) -> None:
        """The saved model as ``mlflow.pytorch`` logs it: the network with its task's outputs (what ``predict``
        computes), an example input (uint8 images, as ``predict`` feeds them) and the signature they give."""
        import mlflow
        import mlflow.pytorch
        import torch
        from mlflow.models import infer_signature

        from medtransfer.model.saved import DeliveredNet, load_model

        saved = load_model(folder, "cpu")
        net = DeliveredNet(saved).eval()
        channels = int(saved.spec.get("channels", 3))  # 1: the study's images were gray
        # two images: torch.export (MLflow 3's "pt2" format) keeps a batch dimension of 1 fixed
        example = torch.full((2, channels, saved.input_size, saved.input_size), 128, dtype=torch.uint8)
        with torch.no_grad():
            output = net(example)
        signature = infer_signature(example.numpy(), output.numpy())
        requirements = [f"torch=={torch.__version__.split('+')[0]}", "medtransfer"]
        mlflow.set_tracking_uri(self.uri)
        with mlflow.start_run(run_id=run_id):
            mlflow.pytorch.log_model(net, name="model", signature=signature, input_example=example.numpy(),
                                     pip_requirements=requirements)
            for extra in ("MODEL_CARD.md", "model.json"):
                if (folder / extra).is_file():
                    mlflow.log_artifact(str(folder / extra), artifact_path="model_card")

    def on_artifacts(self, paths: list[Path]) -> None:
        run_id = self.parent or self.last_run
        for path in paths if run_id else []:
            if path.is_dir():
                self.client.log_artifacts(run_id, str(path), artifact_path=path.name)
            else:
                self.client.log_artifact(run_id, str(path))


def _metrics(trial: TrialFacts) -> list:
    """The per-epoch curves (step: the epoch) and the final metrics (step: the last epoch)."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    out = []
    for record in trial.history:
        step = int(record.get("epoch", len(out)))
        out += [Metric(k, float(v), now, step) for k, v in record.items()
                if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool) and _finite(v)]
    last = int(trial.history[-1].get("epoch", 0)) if trial.history else 0
    out += [Metric(k, float(v), now, last) for k, v in trial.metrics.items() if v is not None and _finite(v)]
    return out


def _finite(v) -> bool:
    return float(v) == float(v) and abs(float(v)) != float("inf")


def _flat_params(config: dict, prefix: str = "") -> dict:
    """A nested configuration as MLflow parameters: ``train.lr``, lists as JSON."""
    out = {}
    for k, v in config.items():
        if isinstance(v, dict):
            out.update(_flat_params(v, f"{prefix}{k}."))
        elif v is not None:
            out[f"{prefix}{k}"] = v
    return out


def _text(v) -> str:
    text = v if isinstance(v, str) else json.dumps(v, default=str)
    return text[:6000]  # MLflow's limit on a parameter's value
