"""``--track mlflow`` on a real MLflow SQLite store: a parent run per study, a child per trial holding what the store
holds, no duplicate after an interrupted study resumes, and a study that finishes when the server cannot be
reached."""

import json

import pytest

pytest.importorskip("mlflow", reason="the mlflow extra is not installed (pip install 'medtransfer[mlflow]')")

from generated import run_cli  # noqa: E402
from mlflow import MlflowClient  # noqa: E402

from medtransfer import TrainConfig  # noqa: E402
from medtransfer.study import Study, StudyConfig, StudyInterrupted  # noqa: E402
from medtransfer.study.store import StudyStore  # noqa: E402

TINY = TrainConfig(epochs=2, batch_size=8, patience=None, warmup_epochs=1)


def _config(data, **kw):
    return StudyConfig(**{**dict(data=str(data), input_size=32, strategies=["scratch", "linear"], fractions=[1.0],
                                 seeds=[0], train=TINY, track=["mlflow"]), **kw})


def _runs(folder):
    client = MlflowClient(f"sqlite:///{folder.resolve() / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(folder.name)
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return client, experiment, parents, children


def test_study_logs_a_parent_and_a_child_per_trial_and_a_resume_logs_none_twice(shape_folder, tmp_path, capsys):
    folder = tmp_path / "study"

    def stop_after_first_trial(line):
        if "✓" in str(line):
            raise KeyboardInterrupt  # as Ctrl-C: the trial is recorded, its run is not logged yet

    with pytest.raises(StudyInterrupted):
        Study(_config(shape_folder), folder, device="cpu", executor="local").run(log=stop_after_first_trial)
    assert len(StudyStore(folder).trials()) == 1
    _, _, parents, children = _runs(folder)
    assert len(parents) == 1 and children == []

    lines = []
    summary = Study(_config(shape_folder), folder, device="cpu", executor="local").run(log=lines.append)
    client, experiment, parents, children = _runs(folder)
    assert len(parents) == 1 and len(children) == 2  # the recorded trial was logged on resume, once
    parent = parents[0]
    assert all(c.data.tags["mlflow.parentRunId"] == parent.info.run_id for c in children)
    assert parent.data.tags["recommended"] == summary.recommended
    assert {"summary.csv", "study_config.json"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert not [line for line in lines if "warning" in str(line)]

    store = StudyStore(folder)
    trials, histories = store.trials().set_index("id"), store.histories()
    for child in children:
        tid = child.data.tags["medtransfer.trial"]
        row = trials.loc[tid]
        assert child.data.params["strategy"] == row.strategy and child.data.params["seed"] == "0"
        frozen = "0" if row.strategy == "scratch" else child.data.params["layer_groups"]  # linear: every group
        assert child.data.params["frozen_groups"] == frozen
        assert child.data.tags["status"] == "finished" and child.info.status == "FINISHED"
        curve = [m.value for m in sorted(client.get_metric_history(child.info.run_id, "train_loss"),
                                         key=lambda m: m.step)]
        assert curve == pytest.approx([h["train_loss"] for h in histories[tid]]) and len(curve) == 2
        assert child.data.metrics["test_auc"] == pytest.approx(row.test_auc)
        assert child.data.metrics["test_auc_low"] == pytest.approx(row.test_auc_low)
        assert child.data.metrics["final_val_auc"] == pytest.approx(row.val_score)
    models = client.search_logged_models([experiment.experiment_id])
    assert len(models) == 1 and models[0].source_run_id == parent.info.run_id

    Study(_config(shape_folder), folder, device="cpu", executor="local").run(log=lines.append)  # nothing pending
    _, _, again_parents, again_children = _runs(folder)
    assert [p.info.run_id for p in again_parents] == [parent.info.run_id]
    assert sorted(c.info.run_id for c in again_children) == sorted(c.info.run_id for c in children)
    assert len(client.search_logged_models([experiment.experiment_id])) == 1

    # `train` logs one run, no parent; here into the study's database (a URI given), in the experiment it names
    code, _, err = run_cli(["train", "--data", shape_folder, "--out", tmp_path / "run", "--strategy", "linear",
                            "--input-size", "32", "--epochs", "1", "--device", "cpu", "--quiet",
                            "--track", f"mlflow=sqlite:///{folder.resolve() / 'mlflow.db'}",
                            "--experiment", "single runs"], capsys)
    assert code == 0, err
    assert client.get_experiment_by_name("run") is None
    experiment = client.get_experiment_by_name("single runs")
    (run,) = client.search_runs([experiment.experiment_id])
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert run.data.metrics["test_auc"] == pytest.approx(metrics["test"]["auc"]["value"])
    assert run.data.params["strategy"] == "linear" and "mlflow.parentRunId" not in run.data.tags
    assert len(client.search_logged_models([experiment.experiment_id])) == 1
    assert "MODEL_CARD.md" in {a.path for a in client.list_artifacts(run.info.run_id)}


def test_an_unreachable_server_warns_once_and_the_study_finishes(shape_folder, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "2")
    config = tmp_path / "study.yaml"  # the config file's key, as the flag would give it
    config.write_text(json.dumps({"data": str(shape_folder), "input_size": 32, "strategies": ["scratch", "linear"],
                                  "fractions": [1.0], "seeds": [0], "train": {"epochs": 1, "batch_size": 8},
                                  "track": "mlflow=http://127.0.0.1:9"}))
    code, out, err = run_cli(["study", "--config", config, "--out", tmp_path / "s", "--executor", "local",
                              "--device", "cpu", "--quiet"], capsys)
    assert code == 0, err
    text = " ".join((out + err).split())
    assert text.count("tracking with mlflow (http://127.0.0.1:9) failed") == 1
    assert set(StudyStore(tmp_path / "s").trials().status) == {"done"} and len(StudyStore(tmp_path / "s").trials()) == 2
    assert (tmp_path / "s" / "report.html").is_file()


def test_a_tracker_that_is_not_one_is_refused_before_anything_runs(shape_folder, tmp_path, capsys):
    code, _, err = run_cli(["study", "--data", shape_folder, "--out", tmp_path / "s", "--track", "wandb"], capsys)
    assert code == 2 and "give mlflow, mlflow=URI" in err and not (tmp_path / "s").exists()


def test_an_empty_experiment_name_is_refused_before_anything_runs(shape_folder, tmp_path, capsys):
    code, _, err = run_cli(["study", "--data", shape_folder, "--out", tmp_path / "s", "--track", "mlflow",
                            "--experiment", " "], capsys)
    assert code == 2 and "experiment" in err and "Traceback" not in err
    assert not (tmp_path / "s").exists()
