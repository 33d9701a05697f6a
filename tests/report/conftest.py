"""A small real study on generated images, run once through the CLI and shared by the report tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
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
