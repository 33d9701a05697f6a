"""Small real studies on generated images, run once and shared by the report tests: a classification study through
the CLI (which writes its report) and a segmentation study through :class:`~medtransfer.study.Study`."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

STUDY_ARGS = ["--strategies", "scratch,linear,full", "--fractions", "1,0.5", "--seeds", "1", "--input-size", "32",
              "--epochs", "2", "--device", "cpu", "--quiet"]


@pytest.fixture(scope="session")
def study_run(shape_folder, tmp_path_factory):
    """(study folder, CLI output) of ``medtransfer study`` on the generated shapes; the study writes its report."""
    from medtransfer.cli import app

    out = tmp_path_factory.mktemp("report-study") / "study"
    result = CliRunner().invoke(app, ["study", "--data", str(shape_folder), "--out", str(out), *STUDY_ARGS])
    if result.exception is not None:
        raise result.exception
    assert result.exit_code == 0, result.output
    return out, result.output


@pytest.fixture
def study_copy(study_run, tmp_path) -> Path:
    """A private copy of the study folder, for tests that change it."""
    return Path(shutil.copytree(study_run[0], tmp_path / "study"))


@pytest.fixture(scope="session")
def segmentation_study(blob_folder, tmp_path_factory) -> Path:
    """A segmentation study (U-Net) on the generated blobs, with its report written."""
    from medtransfer import TrainConfig
    from medtransfer.report import write_report
    from medtransfer.study import Study, StudyConfig

    out = tmp_path_factory.mktemp("report-segmentation") / "study"
    config = StudyConfig(data=str(blob_folder), strategies=["scratch", "linear", "full"], fractions=[1.0], seeds=[0],
                         input_size=64, train=TrainConfig(epochs=2, batch_size=8))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the networks are tiny; one thread is as fast, and much faster on a busy machine
    try:
        Study(config, out, device="cpu").run(log=lambda *_: None)
        write_report(out)
    finally:
        torch.set_num_threads(threads)
    return out
