"""Executors: the same trials give the same table whether they run here, in worker processes or on Ray; a store
written by one executor resumes with another; a worker killed mid-trial costs that trial only."""

import os
import signal
import threading

import numpy as np
import pandas as pd
import pytest

from medtransfer import TrainConfig
from medtransfer.errors import ConfigError
from medtransfer.study import Study, StudyConfig
from medtransfer.study.executors import AutoExecutor, LocalExecutor, ProcessExecutor, make_executor
from medtransfer.study.trial_loop import StudyInterrupted
from medtransfer.study.store import StudyStore

TINY = TrainConfig(epochs=3, batch_size=8, patience=None, warmup_epochs=1)
COLUMNS = ["id", "status", "val_score", "test_auc", "best_epoch", "epochs_run"]


def _config(folder):
    return StudyConfig(data=str(folder), input_size=32, strategies=["scratch", "linear", "tune:2", "full"],
                       fractions=[1.0], seeds=[0], train=TINY)


def _table(study):
    return study.results().sort_values("id")[COLUMNS].reset_index(drop=True)


@pytest.fixture(scope="module")
def local_study(shape_folder, tmp_path_factory):
    """The reference: every trial in this process, one thread each."""
    study = Study(_config(shape_folder), tmp_path_factory.mktemp("local") / "s", device="cpu",
                  executor=LocalExecutor(threads=1))
    study.run(log=lambda *_: None)
    return study


def _assert_same_table(a, b):
    ta, tb = _table(a), _table(b)
    assert list(ta.id) == list(tb.id) and set(ta.status) == {"done"}
    np.testing.assert_allclose(ta[["val_score", "test_auc"]].to_numpy(float),
                               tb[["val_score", "test_auc"]].to_numpy(float), atol=1e-9)
    assert list(ta.best_epoch) == list(tb.best_epoch)
    sa, sb = a.summary(), b.summary()
    assert sa.recommended == sb.recommended
    pd.testing.assert_frame_equal(sa.table.drop(columns="seconds"), sb.table.drop(columns="seconds"))


def test_worker_processes_give_the_local_table(local_study, shape_folder, tmp_path):
    study = Study(_config(shape_folder), tmp_path / "s", device="cpu", executor=ProcessExecutor(2, threads=1))
    study.run(log=lambda *_: None)
    _assert_same_table(study, local_study)
    devices = set(study.results().device)
    assert devices == {"cpu · processes, 2 workers × 1 thread"}
    assert sorted(p.name for p in (tmp_path / "s" / "models").iterdir()) == ["full", "linear", "scratch", "tune-2"]
    assert not (tmp_path / "s" / ".staged-models").exists()


def _stop_after_first_trial(study):
    seen = []

    def log(line):
        if "✓" in str(line):
            seen.append(line)
            raise KeyboardInterrupt

    with pytest.raises(StudyInterrupted, match="Run the same command again"):
        study.run(log=log)
    assert len(StudyStore(study.folder).finished_ids()) == 1


@pytest.mark.parametrize("first, then", [("local", "processes"), ("processes", "local")])
def test_a_study_started_by_one_executor_resumes_with_the_other(first, then, local_study, shape_folder, tmp_path):
    executors = {"local": lambda: LocalExecutor(threads=1), "processes": lambda: ProcessExecutor(2, threads=1)}
    _stop_after_first_trial(Study(_config(shape_folder), tmp_path / "s", device="cpu", executor=executors[first]()))
    resumed = Study(_config(shape_folder), tmp_path / "s", device="cpu", executor=executors[then]())
    assert len(resumed.pending()) == 3
    resumed.run(log=lambda *_: None)
    _assert_same_table(resumed, local_study)


def _killer(strategy: str):
    """An executor's on_start hook that kills (SIGKILL) the worker process of the first run of ``strategy`` a
    second after it starts, mid-training; and the list of the pids it killed."""
    killed = []

    def on_start(trial, pid):
        if not killed and trial.strategy == strategy:
            killed.append(pid)
            threading.Timer(1.0, os.kill, (pid, signal.SIGKILL)).start()

    return on_start, killed


def test_a_worker_killed_mid_trial_loses_that_trial_only(local_study, shape_folder, tmp_path):
    executor = ProcessExecutor(2, threads=1)
    executor.on_start, killed = _killer("full")
    lines = []
    study = Study(_config(shape_folder), tmp_path / "s", device="cpu", executor=executor)
    study.run(log=lambda line: lines.append(str(line)))
    assert killed and any("died" in line and "running it again" in line for line in lines)
    assert len(study.results()) == 4  # every trial once
    _assert_same_table(study, local_study)


def test_auto_runs_worker_processes_on_a_multi_core_cpu_and_here_otherwise(local_study, shape_folder, tmp_path):
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("one core: auto is the local executor")
    executor = make_executor("auto", device="cpu")
    assert isinstance(executor, AutoExecutor) and executor.where("cpu") == "cpu · processes, 2 workers × 1 thread"
    pids = []
    executor.on_start = lambda trial, pid: pids.append(pid)
    study = Study(_config(shape_folder), tmp_path / "s", device="cpu", executor=executor)
    study.run(log=lambda *_: None)
    assert len(pids) == 4 and os.getpid() not in pids  # every trial in a worker
    _assert_same_table(study, local_study)  # one thread per trial, as the reference
    # a GPU, or one core, runs trials here
    assert not make_executor("auto", device="cuda").parallel
    assert not make_executor("auto", device="cpu", workers=1).parallel


def test_executor_settings_are_checked():
    with pytest.raises(ConfigError, match="'executor' parameter.*one of auto, local, processes, ray"):
        make_executor("threads")
    with pytest.raises(ConfigError, match="'workers' parameter"):
        make_executor("processes", workers=0)
    with pytest.raises(ConfigError, match="--workers is for the processes executor"):
        make_executor("local", workers=2)
    assert make_executor("processes", threads=2).threads == 2


def test_a_ray_worker_killed_mid_trial_costs_that_trial_only(local_study, shape_folder, tmp_path):
    pytest.importorskip("ray")
    from medtransfer.study.executors.ray_tasks import RayExecutor

    executor = RayExecutor(threads=1, num_cpus=2)  # a local Ray on the loopback address with 2 CPUs
    executor.on_start, killed = _killer("tune:2")
    lines = []
    study = Study(_config(shape_folder), tmp_path / "s", device="cpu", executor=executor)
    study.run(log=lambda line: lines.append(str(line)))
    assert killed and any("Ray runs it again" in line for line in lines), lines
    assert len(study.results()) == 4 and study.results().id.is_unique  # every trial recorded once
    _assert_same_table(study, local_study)
    assert set(study.results().device) == {"cpu · local Ray, 1 CPU per trial"}
