"""Patients in DICOM files: a salted hash of the header's Patient ID (or Study UID) groups splits, never in clear."""

from __future__ import annotations

import dataclasses
import io
import pickle
import re
from pathlib import Path

import numpy as np
import pydicom
import pytest
from generated import gray_dicom
from PIL import Image

import medtransfer.data.sources.dicom as dicom_module
from medtransfer.data import make_split
from medtransfer.data.sources.csv_manifest import CsvManifestSource
from medtransfer.data.sources.dicom import dicom_patient_id
from medtransfer.data.sources.folder import ImageFolderSource
from medtransfer.data.sources.image_files import image_patient_id
from medtransfer.errors import DataError

#: Six patients, three per class; the first has a name-like name and an 8-digit ID, as real headers do.
PATIENTS = {
    "12345678": ("DOE^JANE", "benign"),
    "12345679": ("ROE^RICHARD", "benign"),
    "A-0003": ("POE^EDGAR", "benign"),
    "A-0004": ("MOE^ANNA", "malignant"),
    "A-0005": ("LOE^OTTO", "malignant"),
    "A-0006": ("ZOE^MARIA", "malignant"),
}
IMAGES_PER_PATIENT = 3
STUDY = {pid: f"1.2.826.0.1.3680043.8.498.{1000 + i}" for i, pid in enumerate(PATIENTS)}
HEX16 = re.compile(r"^[0-9a-f]{16}$")
ABSENT = object()


def write_dicom(
    path: Path,
    *,
    patient_id: object = ABSENT,
    study_uid: object = ABSENT,
    name: str = "DOE^JANE",
    size: int = 4,
    seed: int = 0,
    preamble: bool = True,
) -> Path:
    """A small 16-bit gray DICOM file; ``patient_id``/``study_uid`` left out of the header unless given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tags = {"PatientName": name, "Modality": "OT"}
    if patient_id is not ABSENT:
        tags["PatientID"] = patient_id
    if study_uid is not ABSENT:
        tags["StudyInstanceUID"] = study_uid
    ds = gray_dicom(size, size, np.random.default_rng(seed).integers(0, 4096, (size, size)), **tags)
    ds["PixelData"].VR = "OW"
    ds.save_as(path, enforce_file_format=preamble)
    return path


@pytest.fixture
def patient_folder(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """``root/<class>/img_<n>.dcm``, 6 patients × 3 images, files named without the patient; and file -> patient."""
    root = tmp_path / "dicoms"
    owner: dict[str, str] = {}
    n = 0
    for pid, (name, label) in PATIENTS.items():
        for _ in range(IMAGES_PER_PATIENT):
            f = write_dicom(root / label / f"img_{n:02d}.dcm", patient_id=pid, study_uid=STUDY[pid], name=name, seed=n)
            owner[str(f)] = pid
            n += 1
    return root, owner


def _ids_by_patient(samples, owner: dict[str, str]) -> dict[str, set]:
    by: dict[str, set] = {}
    for s in samples:
        by.setdefault(owner[s.ref], set()).add(s.patient_id)
    return by


# -- (a) one id per patient ----------------------------------------------------------------------------------
def test_folder_samples_get_one_id_per_patient(patient_folder) -> None:
    root, owner = patient_folder
    data = ImageFolderSource(root).read()
    assert len(data.samples) == len(PATIENTS) * IMAGES_PER_PATIENT
    by = _ids_by_patient(data.samples, owner)
    assert all(len(ids) == 1 for ids in by.values()), by  # equal for the images of one patient
    ids = {next(iter(v)) for v in by.values()}
    assert len(ids) == len(PATIENTS)  # different across patients
    assert all(isinstance(i, str) and HEX16.match(i) for i in ids)
    assert len({s.patient_id for s in data.samples if s.patient_id}) == 6  # what the dataset card counts
    assert "6 patients" in data.description
    # stable: a second read gives the same ids
    again = ImageFolderSource(root).read()
    assert [s.patient_id for s in again.samples] == [s.patient_id for s in data.samples]


def test_dicom_without_suffix_gets_an_id_and_other_images_none(tmp_path: Path) -> None:
    write_dicom(tmp_path / "a" / "IM0001", patient_id="12345678")
    write_dicom(tmp_path / "a" / "IM0002.dcm", patient_id="12345678")
    png = tmp_path / "b" / "x.png"
    png.parent.mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(png)
    data = ImageFolderSource(tmp_path).read()
    by_name = {Path(s.ref).name: s.patient_id for s in data.samples}
    assert by_name["IM0001"] is not None and by_name["IM0001"] == by_name["IM0002.dcm"]
    assert by_name["x.png"] is None
    assert image_patient_id(png) is None



def test_file_without_preamble_gets_its_id(tmp_path: Path) -> None:
    with_marker = write_dicom(tmp_path / "a.dcm", patient_id="12345678")
    without = write_dicom(tmp_path / "b.dcm", patient_id="12345678", preamble=False)
    assert without.read_bytes()[128:132] != b"DICM"
    assert dicom_patient_id(without) is not None and dicom_patient_id(without) == dicom_patient_id(with_marker)
    not_dicom = tmp_path / "c.dcm"
    not_dicom.write_bytes(b"not a DICOM file at all")
    assert dicom_patient_id(not_dicom) is None  # reading its image reports the problem
    assert dicom_patient_id(tmp_path / "missing.dcm") is None


# -- (b) splits keep each patient in one split ---------------------------------------------------------------
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_seeded_split_puts_every_patient_in_exactly_one_split(patient_folder, seed: int) -> None:
    root, owner = patient_folder
    data = ImageFolderSource(root).read()
    split = make_split(data, seed=seed)
    where: dict[str, set[str]] = {}
    for part in ("train", "val", "test"):
        for i in getattr(split, part):
            where.setdefault(owner[data.samples[i].ref], set()).add(part)
    assert set(where) == set(PATIENTS)
    assert all(len(parts) == 1 for parts in where.values()), where
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(len(data.samples)))


# -- (c) never in clear -------------------------------------------------------------------------------------
def _clear_values() -> list[str]:
    return [v for pid, (name, _) in PATIENTS.items() for v in (pid, name, STUDY[pid])]


def test_clear_patient_id_appears_in_no_sample_repr_or_pickle(patient_folder) -> None:
    root, _ = patient_folder
    data = ImageFolderSource(root).read()
    texts = [repr(data), data.description, data.name, *(repr(s) for s in data.samples)]
    for s in data.samples:
        texts.extend(str(getattr(s, f.name)) for f in dataclasses.fields(s))
    blob = pickle.dumps(data.samples)
    for value in _clear_values():
        assert not any(value in t for t in texts), value
        assert value.encode() not in blob, value
    assert "12345678" not in dicom_patient_id(root / "benign" / "img_00.dcm")


def test_clear_patient_id_not_in_error_messages(tmp_path: Path) -> None:
    f = write_dicom(tmp_path / "broken.dcm", patient_id="12345678", name="DOE^JANE", size=64)
    f.write_bytes(f.read_bytes()[:-100])  # pixel data cut short
    pid = dicom_patient_id(f)
    assert pid is not None and HEX16.match(pid)  # the header is still readable
    with pytest.raises(DataError) as err:
        dicom_module.read_dicom(f)
    assert "12345678" not in str(err.value) and "DOE^JANE" not in str(err.value)


# -- (d) Study Instance UID when the Patient ID is empty ----------------------------------------------------
def test_study_uid_is_used_when_patient_id_is_empty_or_absent(tmp_path: Path) -> None:
    study_a, study_b = "1.2.826.0.1.3680043.8.498.1", "1.2.826.0.1.3680043.8.498.2"
    files = {
        "a1": write_dicom(tmp_path / "x" / "a1.dcm", patient_id="", study_uid=study_a),
        "a2": write_dicom(tmp_path / "x" / "a2.dcm", study_uid=study_a),  # no Patient ID at all
        "a3": write_dicom(tmp_path / "y" / "a3.dcm", patient_id="   ", study_uid=study_a),  # blank
        "b1": write_dicom(tmp_path / "y" / "b1.dcm", patient_id="", study_uid=study_b),
        "none": write_dicom(tmp_path / "y" / "none.dcm"),  # neither tag
        "empty": write_dicom(tmp_path / "y" / "empty.dcm", patient_id="", study_uid=""),
    }
    data = ImageFolderSource(tmp_path).read()
    ids = {Path(s.ref).stem: s.patient_id for s in data.samples}
    assert ids["a1"] is not None and ids["a1"] == ids["a2"] == ids["a3"]
    assert ids["b1"] is not None and ids["b1"] != ids["a1"]
    assert ids["none"] is None and ids["empty"] is None
    assert all(study_a not in repr(s) and study_b not in repr(s) for s in data.samples)
    # a Patient ID wins over the Study UID when both are there
    both = write_dicom(tmp_path / "z" / "both.dcm", patient_id="12345678", study_uid=study_a)
    assert dicom_patient_id(both) not in (None, ids["a1"])
    assert dicom_patient_id(files["a1"]) == ids["a1"]


# -- (e) a CSV's own patient ids win ------------------------------------------------------------------------
def test_csv_patient_column_wins_over_the_header(patient_folder) -> None:
    root, owner = patient_folder
    manifest = root / "with_patients.csv"
    lines = ["path,label,patient_id"]
    own = {pid: f"P{i}" for i, pid in enumerate(PATIENTS)}
    for f, pid in owner.items():
        rel = Path(f).relative_to(root)
        lines.append(f"{rel.as_posix()},{rel.parts[0]},{own[pid]}")
    manifest.write_text("\n".join(lines) + "\n")
    data = CsvManifestSource(manifest).read()
    assert [s.patient_id for s in data.samples] == [own[owner[str(root / line.split(',')[0])]] for line in lines[1:]]


def test_csv_without_patient_column_uses_the_header(patient_folder) -> None:
    root, owner = patient_folder
    manifest = root / "plain.csv"
    rels = [Path(f).relative_to(root) for f in owner]
    manifest.write_text("path,label\n" + "".join(f"{r.as_posix()},{r.parts[0]}\n" for r in rels))
    data = CsvManifestSource(manifest).read()
    folder = {s.ref: s.patient_id for s in ImageFolderSource(root).read().samples}
    assert all(s.patient_id is not None and s.patient_id == folder[s.ref] for s in data.samples)
    assert len({s.patient_id for s in data.samples}) == len(PATIENTS)
    split = make_split(data, seed=0)
    parts = {owner[data.samples[i].ref]: set() for i in range(len(data.samples))}
    for part in ("train", "val", "test"):
        for i in getattr(split, part):
            parts[owner[data.samples[i].ref]].add(part)
    assert all(len(p) == 1 for p in parts.values())
    assert not any(v in repr(data) for v in _clear_values())


# -- (f) header only ----------------------------------------------------------------------------------------
def test_reading_a_folder_reads_headers_only(patient_folder, monkeypatch) -> None:
    root, owner = patient_folder
    calls: list[dict] = []
    real = pydicom.dcmread

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real(*args, **kwargs)

    def no_pixels(*args, **kwargs):
        raise AssertionError("pixel data decoded while reading the source")

    monkeypatch.setattr(dicom_module.pydicom, "dcmread", spy)
    monkeypatch.setattr(dicom_module, "pixel_array", no_pixels)
    data = ImageFolderSource(root).read()
    assert len(calls) == len(owner)  # one header read per file
    assert all(kw.get("stop_before_pixels") is True for kw in calls)
    assert all(s.patient_id for s in data.samples)


def test_patient_id_reads_a_small_part_of_a_large_file(tmp_path: Path, monkeypatch) -> None:
    """Of a file with 8 MB of pixel data, only the header (a few hundred bytes) is read for the patient id."""
    f = write_dicom(tmp_path / "big.dcm", patient_id="12345678", size=2048)
    assert f.stat().st_size > 8_000_000
    read_bytes: list[int] = []
    real = pydicom.dcmread

    class Counting(io.FileIO):
        def read(self, size=-1):
            data = super().read(size)
            read_bytes.append(len(data))
            return data

    def counting_dcmread(path, **kwargs):
        with Counting(path, "rb") as fp:
            return real(fp, **kwargs)

    monkeypatch.setattr(dicom_module.pydicom, "dcmread", counting_dcmread)
    pid = dicom_patient_id(f)
    assert pid is not None and HEX16.match(pid)
    assert 0 < sum(read_bytes) < 64_000
