"""A study's data, read once per run: split, loaded and fingerprinted, then written down in the store (the dataset
card, the fingerprint, the task and the example test images) so that a resume can check them and the report needs
neither the data nor the task's source again."""

from __future__ import annotations

from dataclasses import dataclass

from medtransfer.config import RunConfig
from medtransfer.data.fingerprint import DataFingerprint
from medtransfer.study.config import StudyConfig
from medtransfer.study.data_check import FINGERPRINT, notice_lines
from medtransfer.study.examples import EXAMPLES, encode_examples
from medtransfer.study.store import StudyStore
from medtransfer.engine import PreparedData, TrialImages, data_fingerprint, environment, prepare_data


@dataclass
class StudyData:
    """The data as the study's trials read them: ``run_config`` of the trial that read them, the split data, the
    loaded images and their fingerprint."""

    run_config: RunConfig
    prepared: PreparedData
    images: TrialImages
    fingerprint: DataFingerprint


def read_data(config: StudyConfig, run_config: RunConfig, progress, log) -> StudyData:
    """The data as ``run_config`` reads them; bad data or options fail here, before anything is written. The
    source's notices are logged once per run."""
    prepared = prepare_data(run_config)
    for notice in notice_lines(prepared.data.notices):
        log(notice)
    images = TrialImages.load(prepared, config.input_size, progress)
    return StudyData(run_config, prepared, images, data_fingerprint(prepared, images, config.data))


def write_down(store: StudyStore, config: StudyConfig, device: str, data: StudyData) -> None:
    """Create (or upgrade) the store and record the data in it: the dataset card, the fingerprint the first trials
    read, the task's spec and the example test images."""
    if not store.exists():
        store.create(config.to_dict(), config.hash(), {**environment(), "device": device})
    store.upgrade()
    store.set_meta("data", data.prepared.card() | {"source": str(config.data)})
    if store.blob(FINGERPRINT) is None:
        store.put_blob(FINGERPRINT, data.fingerprint.to_json().encode())
    _store_task_and_examples(store, data)


def _store_task_and_examples(store: StudyStore, data: StudyData) -> None:
    """The task's spec, and the test images the report shows with their targets."""
    prepared, images = data.prepared, data.images
    train_targets = images.rows(prepared.split.train)[1]
    task = prepared.task.for_data(prepared.data, train_targets, data.run_config)
    store.set_meta("task", task.config())
    test = prepared.split.test
    test_images, test_targets = images.rows(test)
    chosen = task.inputs.examples(prepared.data, test, test_targets)
    store.put_blob(EXAMPLES, encode_examples(
        images=test_images[chosen].numpy(), targets=task.codec.take(test_targets, chosen),
        refs=[prepared.data.samples[int(test[i])].ref for i in chosen]))
