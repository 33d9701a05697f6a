"""One config: the run settings are held once (Settings), validated once, every problem listed in one form."""

from __future__ import annotations

from dataclasses import fields

import pytest

from medtransfer.config import RunConfig, Settings
from medtransfer.errors import ConfigError
from medtransfer.study import StudyConfig


def test_every_problem_at_once_in_one_form():
    with pytest.raises(ConfigError) as caught:
        StudyConfig(data="x", input_size=8, fractions=[2.0], checkpoints="most", cache_views=0)
    message = str(caught.value)
    assert message.startswith("4 problems:")
    for name, got in (("input_size", "8"), ("fractions", "[2.0]"), ("checkpoints", "'most'"), ("cache_views", "0")):
        assert f"The '{name}' parameter of StudyConfig must be " in message and f"Got {got} instead." in message


def test_run_and_study_share_their_settings():
    shared = {f.name for f in fields(Settings)}
    assert shared <= {f.name for f in fields(RunConfig)} and shared <= {f.name for f in fields(StudyConfig)}
    study = StudyConfig(data="d", input_size=64, augmentation="strong", task="segmentation",
                        task_options={"decoder": "fpn"})
    run = study.run_config("tune:2", 0.5, 1)
    assert {k: getattr(run, k) for k in shared} == {k: getattr(study, k) for k in shared}
    assert (run.strategy, run.train_fraction, run.seed) == ("tune:2", 0.5, 1)


def test_task_options_are_the_tasks_to_validate():
    with pytest.raises(ConfigError, match=r"The 'decoder' parameter of the segmentation task options must be one of "
                                          r"unet, fpn\. Got 'fnp' instead\."):
        RunConfig(data="d", task="segmentation", task_options={"decoder": "fnp"})
    with pytest.raises(ConfigError, match=r"The 'task_options' parameter of the classification task must be one of its options \(calibration\)"):
        RunConfig(data="d", task="classification", task_options={"decoder": "fpn"})
    with pytest.raises(ConfigError, match="options of one task"):
        RunConfig(data="d", task_options={"no_such_option": 1})
    assert RunConfig(data="d", task_options={"decoder": "fpn"}).task == "auto"  # checked again once the data tell


def test_older_top_level_task_settings_move_into_the_task_options():
    old = {"data": "d", "decoder": "fpn", "strategies": ["linear", "full"]}
    config = StudyConfig.from_dict(old)
    assert config.task == "segmentation" and config.task_options == {"decoder": "fpn"}
    default = StudyConfig.from_dict({"data": "d", "decoder": "unet"})
    assert default.task_options == {} and default.hash() == StudyConfig(data="d").hash()
