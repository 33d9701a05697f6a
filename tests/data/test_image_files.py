"""Reading single image files: Pillow formats and DICOM (modality LUT, windowing, MONOCHROME1, codecs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.pixels import apply_modality_lut, apply_voi_lut
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from medtransfer.data.sources.base import scale_to_uint8
from medtransfer.data.sources.image_files import (
    IMAGE_SUFFIXES,
    is_image_file,
    read_image_file,
)
from medtransfer.errors import ConfigError, DataError


# -- helpers -------------------------------------------------------------------------------------------------
def write_dicom(
    path: Path,
    pixels: np.ndarray,
    *,
    signed: bool | None = None,
    photometric: str | None = None,
    transfer_syntax: str = ExplicitVRLittleEndian,
    preamble: bool = True,
    **attributes,
) -> Path:
    """Write ``pixels`` (``H×W``, ``F×H×W`` or ``H×W×3``) as a real DICOM file; ``attributes`` go in the header."""
    pixels = np.asarray(pixels)
    colour = pixels.ndim == 3 and pixels.shape[-1] == 3
    frames = pixels.shape[0] if pixels.ndim == 3 and not colour else 1
    signed = pixels.dtype.kind == "i" if signed is None else signed
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.file_meta.MediaStorageSOPClassUID = SecondaryCaptureImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = SecondaryCaptureImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.PatientName = "Doe^Jane"
    ds.PatientID = "SECRET-123"
    ds.Modality = "OT"
    ds.Rows, ds.Columns = (pixels.shape[-3:-1] if colour else pixels.shape[-2:])
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = photometric or ("RGB" if colour else "MONOCHROME2")
    if colour:
        ds.PlanarConfiguration = 0
    if frames > 1:
        ds.NumberOfFrames = frames
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if signed else 0
    for key, value in attributes.items():
        setattr(ds, key, value)
    if transfer_syntax == ExplicitVRLittleEndian:
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
        ds["PixelData"].VR = "OW" if bits > 8 else "OB"
    else:
        ds.PixelData = encapsulate([b"\xff\xd8 not really a JPEG stream \xff\xd9"])
        ds["PixelData"].VR = "OB"
    ds.save_as(path, enforce_file_format=preamble)
    return path


def ramp(dtype: str = "int16") -> np.ndarray:
    """A 4×8 image whose values are known per pixel: -1000 … 2100 in steps of 100."""
    return (np.arange(32).reshape(4, 8) * 100 - 1000).astype(dtype)


# -- Pillow formats ------------------------------------------------------------------------------------------
def test_png_gray_and_rgb(tmp_path: Path) -> None:
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8)
    Image.fromarray(gray).save(tmp_path / "g.png")
    rgb = np.stack([gray, gray // 2, 255 - gray], axis=-1)
    Image.fromarray(rgb).save(tmp_path / "c.PNG")
    assert np.array_equal(read_image_file(tmp_path / "g.png"), gray)
    out = read_image_file(tmp_path / "c.PNG")
    assert out.shape == (6, 8, 3) and out.dtype == np.uint8
    assert np.array_equal(out, rgb)


def test_rgb_with_identical_channels_is_gray(tmp_path: Path) -> None:
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8)
    Image.fromarray(np.stack([gray] * 3, axis=-1)).save(tmp_path / "x.bmp")
    out = read_image_file(tmp_path / "x.bmp")
    assert out.shape == (6, 8) and np.array_equal(out, gray)


def test_alpha_palette_and_bilevel_modes(tmp_path: Path) -> None:
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8)
    Image.fromarray(gray).convert("LA").save(tmp_path / "la.png")
    assert np.array_equal(read_image_file(tmp_path / "la.png"), gray)

    rgba = np.zeros((6, 8, 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 1], rgba[..., 3] = 200, gray, 17
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    out = read_image_file(tmp_path / "rgba.png")
    assert out.shape == (6, 8, 3) and np.array_equal(out[..., 1], gray) and (out[..., 0] == 200).all()

    pal = Image.fromarray(np.stack([gray, gray, gray // 3], axis=-1)).quantize(colors=16)
    assert pal.mode == "P"
    pal.save(tmp_path / "p.png")
    assert read_image_file(tmp_path / "p.png").shape == (6, 8, 3)

    Image.fromarray(gray > 20).save(tmp_path / "b.tif")
    assert set(np.unique(read_image_file(tmp_path / "b.tif"))) == {0, 255}


def test_16bit_gray_is_min_max_scaled(tmp_path: Path) -> None:
    raw = np.linspace(1000, 5000, 48).reshape(6, 8).astype(np.uint16)
    Image.fromarray(raw).save(tmp_path / "x16.png")
    Image.fromarray(raw).save(tmp_path / "x16.tiff")
    for name in ("x16.png", "x16.tiff"):
        out = read_image_file(tmp_path / name)
        assert out.dtype == np.uint8 and out.shape == (6, 8)
        assert out.min() == 0 and out.max() == 255
        assert np.all(np.diff(out.ravel().astype(int)) >= 0)


def test_window_applies_to_16bit_gray(tmp_path: Path) -> None:
    raw = np.array([[1000, 2000, 3000, 4000]], dtype=np.uint16)
    Image.fromarray(raw).save(tmp_path / "x16.png")
    assert read_image_file(tmp_path / "x16.png", window=(2500, 1000)).tolist() == [[0, 0, 255, 255]]


def test_image_suffixes_and_is_image_file(tmp_path: Path) -> None:
    assert {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".dcm", ".dicom"} <= set(IMAGE_SUFFIXES)
    (tmp_path / "notes.txt").write_text("hello")
    assert is_image_file(tmp_path / "A.JPG")
    assert not is_image_file(tmp_path / "notes.txt")
    no_suffix = write_dicom(tmp_path / "IM0001", ramp())
    uid_named = write_dicom(tmp_path / "1.2.840.99.7", ramp())
    (tmp_path / "README").write_text("not dicom")
    assert is_image_file(no_suffix) and is_image_file(uid_named)
    assert not is_image_file(tmp_path / "README")


# -- Pillow failures -----------------------------------------------------------------------------------------
def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match=r"nope\.png: no such file"):
        read_image_file(tmp_path / "nope.png")


def test_not_an_image(tmp_path: Path) -> None:
    (tmp_path / "fake.png").write_text("this is text")
    with pytest.raises(DataError, match=r"fake\.png: not a readable image") as err:
        read_image_file(tmp_path / "fake.png")
    assert "\n" not in str(err.value)


def test_truncated_png(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    Image.fromarray(rng.integers(0, 255, (64, 64), dtype=np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"t\.png: cannot decode the image .*truncated"):
        read_image_file(tmp_path / "t.png")


def test_unsupported_suffix_and_folder(tmp_path: Path) -> None:
    (tmp_path / "x.gif").write_bytes(b"GIF89a")
    with pytest.raises(DataError, match=r"x\.gif: not a supported image type \(\.gif\)"):
        read_image_file(tmp_path / "x.gif")
    (tmp_path / "d.png").mkdir()
    with pytest.raises(DataError, match=r"d\.png: is a folder"):
        read_image_file(tmp_path / "d.png")


def test_bad_window_argument(tmp_path: Path) -> None:
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "z.png")
    with pytest.raises(ConfigError, match="positive"):
        read_image_file(tmp_path / "z.png", window=(40, 0))


# -- DICOM ---------------------------------------------------------------------------------------------------
def test_dicom_header_window_after_rescale(tmp_path: Path) -> None:
    # stored = HU + 1024 (slope 1, intercept -1024); window centre 40 HU, width 400 HU -> [-160, 240] HU.
    hu = np.array([[-1000, -160, 40, 240, 1000]], dtype=np.int16)
    path = write_dicom(
        tmp_path / "ct.dcm", (hu + 1024).astype(np.uint16), RescaleSlope=1, RescaleIntercept=-1024,
        WindowCenter=40, WindowWidth=400,
    )
    out = read_image_file(path)
    assert out.dtype == np.uint8 and out.shape == (1, 5)
    assert out[0, 0] == 0 and out[0, 1] == 0  # below / at the window's low end
    assert abs(int(out[0, 2]) - 128) <= 1  # the window centre
    assert out[0, 3] == 255 and out[0, 4] == 255


def test_dicom_slope_is_applied(tmp_path: Path) -> None:
    stored = np.array([[0, 10, 20, 30]], dtype=np.uint16)  # x 2 - 20 -> -20, 0, 20, 40
    path = write_dicom(
        tmp_path / "s.dcm", stored, RescaleSlope=2, RescaleIntercept=-20, WindowCenter=10, WindowWidth=20
    )
    assert read_image_file(path).tolist() == [[0, 0, 255, 255]]
    assert abs(int(read_image_file(path, window=(0, 40))[0, 1]) - 128) <= 1


def test_dicom_multivalued_window_takes_first(tmp_path: Path) -> None:
    stored = np.array([[0, 50, 100]], dtype=np.int16)
    path = write_dicom(tmp_path / "m.dcm", stored, WindowCenter=[50, 1000], WindowWidth=[100, 10])
    out = read_image_file(path)
    assert out[0, 0] == 0 and abs(int(out[0, 1]) - 128) <= 1 and out[0, 2] == 255


def test_explicit_window_beats_header(tmp_path: Path) -> None:
    path = write_dicom(tmp_path / "w.dcm", ramp("int16"), WindowCenter=0, WindowWidth=10)
    out = read_image_file(path, window=(1000, 2000))  # [0, 2000]
    values = ramp("int16")
    assert (out[values <= 0] == 0).all() and (out[values >= 2000] == 255).all()
    assert abs(int(out[values == 1000][0]) - 128) <= 1


def test_dicom_without_window_is_min_max(tmp_path: Path) -> None:
    for dtype in ("int16", "uint16", "uint8", "int8"):
        pixels = ramp("int16") if dtype == "int16" else (np.arange(32).reshape(4, 8) * 3).astype(dtype)
        out = read_image_file(write_dicom(tmp_path / f"{dtype}.dcm", pixels))
        assert out.dtype == np.uint8 and out.shape == (4, 8), dtype
        assert out[0, 0] == 0 and out[-1, -1] == 255, dtype
        assert np.all(np.diff(out.ravel().astype(int)) >= 0), dtype


def test_signed_values_are_read_as_signed(tmp_path: Path) -> None:
    # -100 stored as int16 must stay below 100, not wrap to 65436.
    pixels = np.array([[-100, 0, 100]], dtype=np.int16)
    out = read_image_file(write_dicom(tmp_path / "neg.dcm", pixels))
    assert out.tolist() == [[0, 128, 255]]


def test_monochrome1_is_inverted(tmp_path: Path) -> None:
    pixels = np.array([[0, 100, 200]], dtype=np.uint16)
    m2 = read_image_file(write_dicom(tmp_path / "m2.dcm", pixels))
    m1 = read_image_file(write_dicom(tmp_path / "m1.dcm", pixels, photometric="MONOCHROME1"))
    assert m2.tolist() == [[0, 128, 255]]
    assert m1.tolist() == [[255, 127, 0]]
    m1w = write_dicom(tmp_path / "m1w.dcm", pixels, photometric="MONOCHROME1", WindowCenter=50, WindowWidth=20)
    windowed = read_image_file(m1w)
    assert windowed.tolist() == [[255, 0, 0]]


def test_voi_lut_sequence(tmp_path: Path) -> None:
    item = Dataset()
    item.add_new("LUTDescriptor", "US", [4, 0, 8])  # 4 entries, first stored value 0, 8 bits
    item.add_new("LUTData", "US", [0, 10, 20, 40])
    pixels = np.array([[0, 1, 2, 3, 9]], dtype=np.uint16)
    path = write_dicom(tmp_path / "voi.dcm", pixels, VOILUTSequence=Sequence([item]), WindowCenter=100, WindowWidth=1)
    assert read_image_file(path).tolist() == [[0, 64, 128, 255, 255]]


# -- DICOM header windows: pydicom's VOI LUT functions (PS3.3 C.11.2.1.2) -------------------------------------
# Modality values 6 … 13 under a header window centre 10, width 4. LINEAR (the default) maps
# (x - 9.5) / 3 + 0.5, i.e. 8 -> 0, 9 -> 85, 10 -> 170, 11 -> 255; LINEAR_EXACT maps [8, 12]: 9 -> 64, 10 -> 128;
# SIGMOID is 1 / (1 + exp(-4 (x - 10) / 4)).
MODALITY = np.arange(6, 14, dtype=np.float64).reshape(1, 8)


def display_by_pydicom(path: Path) -> np.ndarray:
    """What pydicom's ``apply_voi_lut`` makes of the file, mapped from its output range to 0..255 (and inverted for
    MONOCHROME1): that range is the stored values' (``BitsStored`` bits, signed if ``PixelRepresentation`` is 1)
    through Rescale Slope/Intercept."""
    ds = pydicom.dcmread(path)
    windowed = apply_voi_lut(apply_modality_lut(ds.pixel_array, ds), ds)
    bits = int(ds.BitsStored)
    low, high = (0, 2**bits - 1) if ds.PixelRepresentation == 0 else (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    if "RescaleSlope" in ds:
        low, high = (v * float(ds.RescaleSlope) + float(ds.RescaleIntercept) for v in (low, high))
    out = np.round(np.clip((windowed - low) / (high - low), 0.0, 1.0) * 255.0).astype(np.uint8)
    return 255 - out if ds.PhotometricInterpretation == "MONOCHROME1" else out


def windowed_files(tmp_path: Path, **attributes) -> list[Path]:
    """:data:`MODALITY` under ``attributes`` as an unsigned 16-bit file and as a signed 12-bit file with a rescale."""
    plain = write_dicom(tmp_path / "u16.dcm", MODALITY.astype(np.uint16), **attributes)
    # stored = (HU - 20) * 2, negative, in 12 signed bits; slope 0.5, intercept 20 bring it back.
    stored = ((MODALITY - 20) * 2).astype(np.int16)
    signed = write_dicom(
        tmp_path / "s12.dcm", stored, BitsStored=12, HighBit=11, RescaleSlope=0.5, RescaleIntercept=20, **attributes
    )
    return [plain, signed]


def test_header_window_is_linear_as_pydicom_applies_it(tmp_path: Path) -> None:
    exact = [[0, 0, 0, 64, 128, 191, 255, 255]]  # what the LINEAR_EXACT formula gives; LINEAR is not that
    for path in windowed_files(tmp_path, WindowCenter=10, WindowWidth=4):
        out = read_image_file(path)
        assert out.tolist() == display_by_pydicom(path).tolist(), path.name
        assert out.tolist() == [[0, 0, 0, 85, 170, 255, 255, 255]], path.name
        assert out.tolist() != exact


@pytest.mark.parametrize(
    ("function", "expected"),
    [("LINEAR_EXACT", [[0, 0, 0, 64, 128, 191, 255, 255]]), ("SIGMOID", [[5, 12, 30, 69, 128, 186, 225, 243]])],
)
def test_header_voi_lut_function_is_honoured(tmp_path: Path, function: str, expected: list) -> None:
    for path in windowed_files(tmp_path, WindowCenter=10, WindowWidth=4, VOILUTFunction=function):
        out = read_image_file(path)
        assert out.tolist() == display_by_pydicom(path).tolist(), path.name
        assert out.tolist() == expected, path.name


def test_header_window_of_monochrome1_is_inverted(tmp_path: Path) -> None:
    path = write_dicom(
        tmp_path / "m1.dcm", MODALITY.astype(np.uint16), photometric="MONOCHROME1", WindowCenter=10, WindowWidth=4
    )
    out = read_image_file(path)
    assert out.tolist() == display_by_pydicom(path).tolist() == [[255, 255, 255, 170, 85, 0, 0, 0]]


def test_window_argument_is_a_plain_linear_map_over_the_header(tmp_path: Path) -> None:
    # [centre - width/2, centre + width/2] = [8, 12] in modality units, whatever the header's window and function.
    for path in windowed_files(tmp_path, WindowCenter=100, WindowWidth=50, VOILUTFunction="SIGMOID"):
        assert read_image_file(path, window=(10, 4)).tolist() == [[0, 0, 0, 64, 128, 191, 255, 255]], path.name


def test_no_usable_header_window_is_min_max(tmp_path: Path) -> None:
    min_max = [[0, 36, 73, 109, 146, 182, 219, 255]]  # (x - 6) / 7
    for attributes in (
        {},
        {"WindowCenter": 10, "WindowWidth": 0},  # not above 0
        {"WindowCenter": 10, "WindowWidth": 0.5},  # LINEAR needs a width of at least 1
        {"WindowCenter": 10},
    ):
        for path in windowed_files(tmp_path, **attributes):
            assert read_image_file(path).tolist() == min_max, (path.name, attributes)
    # LINEAR_EXACT only needs a positive width; an unknown function is the default, LINEAR.
    narrow = write_dicom(
        tmp_path / "narrow.dcm", MODALITY.astype(np.uint16), WindowCenter=10, WindowWidth=0.5,
        VOILUTFunction="LINEAR_EXACT",
    )
    assert read_image_file(narrow).tolist() == [[0, 0, 0, 0, 128, 255, 255, 255]]  # [9.75, 10.25]
    unknown = write_dicom(
        tmp_path / "unknown.dcm", MODALITY.astype(np.uint16), WindowCenter=10, WindowWidth=4, VOILUTFunction="GAMMA"
    )
    assert read_image_file(unknown).tolist() == [[0, 0, 0, 85, 170, 255, 255, 255]]


# -- one uint8 scaling -----------------------------------------------------------------------------------------
def test_scale_to_uint8() -> None:
    values = np.array([-5.0, 0.0, 0.5, 1.0, 2.0, 3.0, 4.0, 9.0])
    assert scale_to_uint8(values, 0.0, 4.0).tolist() == [0, 0, 32, 64, 128, 191, 255, 255]
    assert scale_to_uint8(np.arange(5, dtype=np.uint16), 0, 4).tolist() == [0, 64, 128, 191, 255]
    assert scale_to_uint8(values, 1.0, 0.0).tolist() == [0] * 8  # no width
    assert scale_to_uint8(values, 1.0, -2.0).dtype == np.uint8
    # float32 input is computed in float32, as the NIfTI volumes always were
    v32 = np.random.default_rng(0).normal(size=10_000).astype(np.float32)
    lo, hi = float(v32.min()), float(v32.max())
    expected = np.round(np.clip((v32 - lo) / (hi - lo), 0.0, 1.0) * 255.0).astype(np.uint8)
    assert np.array_equal(scale_to_uint8(v32, lo, hi - lo), expected)


def test_dicom_rgb(tmp_path: Path) -> None:
    rgb = np.zeros((3, 4, 3), dtype=np.uint8)
    rgb[..., 0], rgb[..., 1], rgb[..., 2] = 10, 100, 200
    out = read_image_file(write_dicom(tmp_path / "rgb.dcm", rgb))
    assert out.shape == (3, 4, 3) and np.array_equal(out, rgb)


def test_multiframe_takes_middle_frame(tmp_path: Path) -> None:
    frames = np.zeros((5, 2, 4), dtype=np.uint16)
    frames[2] = [[0, 50, 100, 100], [100, 100, 100, 100]]
    frames[[0, 1, 3, 4]] = 7
    out = read_image_file(write_dicom(tmp_path / "mf.dcm", frames))
    assert out.tolist() == [[0, 128, 255, 255], [255, 255, 255, 255]]


def test_dicom_without_suffix_or_preamble(tmp_path: Path) -> None:
    pixels = np.array([[0, 10]], dtype=np.uint16)
    assert read_image_file(write_dicom(tmp_path / "IM0001", pixels)).tolist() == [[0, 255]]
    raw = write_dicom(tmp_path / "raw.dcm", pixels, preamble=False)
    assert raw.read_bytes()[128:132] != b"DICM"
    assert read_image_file(raw).tolist() == [[0, 255]]


def test_compressed_dicom_without_decoder_names_the_packages(tmp_path: Path) -> None:
    pixels = np.zeros((4, 4), dtype=np.uint8)
    path = write_dicom(tmp_path / "jpeg.dcm", pixels, transfer_syntax=JPEGBaseline8Bit)
    with pytest.raises(DataError) as err:
        read_image_file(path)
    msg = str(err.value)
    assert "jpeg.dcm" in msg and "JPEG Baseline" in msg
    assert "pip install pylibjpeg pylibjpeg-libjpeg" in msg and "python-gdcm" in msg
    assert "\n" not in msg

    path = write_dicom(tmp_path / "jls.dcm", pixels, transfer_syntax=JPEGLSLossless)
    with pytest.raises(DataError, match=r"jls\.dcm: pixel data compressed as 'JPEG-LS Lossless.*pip install"):
        read_image_file(path)


def test_dicom_errors_name_the_file_and_hide_patient_data(tmp_path: Path) -> None:
    (tmp_path / "junk.dcm").write_bytes(b"\x00" * 40)
    with pytest.raises(DataError, match=r"junk\.dcm: not a DICOM file") as err:
        read_image_file(tmp_path / "junk.dcm")
    assert "\n" not in str(err.value)

    full = write_dicom(tmp_path / "full.dcm", ramp("uint16"))
    data = full.read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) - 30])
    with pytest.raises(DataError, match=r"cut\.dcm: cannot decode the pixel data .*truncated") as err:
        read_image_file(tmp_path / "cut.dcm")
    assert "SECRET" not in str(err.value) and "Doe" not in str(err.value)

    no_pixels = Dataset()
    no_pixels.file_meta = FileMetaDataset()
    no_pixels.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    no_pixels.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR
    no_pixels.SOPInstanceUID = generate_uid()
    no_pixels.PatientID = "SECRET-123"
    no_pixels.save_as(tmp_path / "report.dcm", enforce_file_format=True)
    with pytest.raises(DataError, match=r"report\.dcm: not a DICOM image \(no pixel data") as err:
        read_image_file(tmp_path / "report.dcm")
    assert "SECRET" not in str(err.value)
