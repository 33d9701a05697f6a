"""``--track tensorboard``: each trial's event files under ``tensorboard/<trial>/``, read back with TensorBoard's own
reader, hold its per-epoch curve as the store recorded it; a rerun writes no second copy."""

import pytest

pytest.importorskip("tensorboard",
                    reason="the tensorboard extra is not installed (pip install 'medtransfer[tensorboard]')")

from generated import run_cli  # noqa: E402
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator  # noqa: E402

from medtransfer.study.store import StudyStore  # noqa: E402


def test_each_trial_has_its_curve_in_tensorboard_event_files(shape_folder, tmp_path, capsys):
    args = ["study", "--data", shape_folder, "--out", tmp_path / "s", "--strategies", "scratch,linear", "--fractions",
            "1", "--seeds", "1", "--input-size", "32", "--epochs", "2", "--executor", "local", "--device", "cpu",
            "--quiet", "--track", "tensorboard"]
    code, _, err = run_cli(args, capsys)
    assert code == 0, err
    store = StudyStore(tmp_path / "s")
    histories = store.histories()
    folders = sorted(p.name for p in (tmp_path / "s" / "tensorboard").iterdir())
    assert folders == ["linear_1_0", "scratch_1_0"] and set(histories) == {"linear|1|0", "scratch|1|0"}
    for tid, history in histories.items():
        events = EventAccumulator(str(tmp_path / "s" / "tensorboard" / tid.replace("|", "_"))).Reload()
        assert {"train_loss", "val_auc", "test_auc"} <= set(events.Tags()["scalars"])
        curve = events.Scalars("train_loss")
        assert [e.step for e in curve] == [h["epoch"] for h in history] == [1, 2]
        assert [e.value for e in curve] == pytest.approx([h["train_loss"] for h in history], rel=1e-6)
        test_auc = store.trials().set_index("id").loc[tid, "test_auc"]
        assert events.Scalars("test_auc")[-1].value == pytest.approx(test_auc, rel=1e-6)
    files = sorted(p.name for p in (tmp_path / "s" / "tensorboard").rglob("events.*"))

    code, _, err = run_cli(args, capsys)  # nothing left to train: nothing is written twice
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "s" / "tensorboard").rglob("events.*")) == files
