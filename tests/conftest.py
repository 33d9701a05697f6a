"""Shared fixtures: small generated images, and the real data in ../shared when it is there."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
from generated import write_mask_folder, write_shape_folder

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDTRANSFER_SHARED_DATA", REPO.parent / "shared" / "data"))
BREASTMNIST = SHARED_DATA / "medmnist" / "breastmnist.npz"
KVASIR = SHARED_DATA / "kvasir-seg"
# the depthwise gradient's timings (fast_depthwise "auto") go to a folder of this test session, not the user's cache
os.environ.setdefault("MEDTRANSFER_CACHE_DIR", tempfile.mkdtemp(prefix="medtransfer-test-cache-"))


@pytest.fixture(scope="session")
def shape_folder(tmp_path_factory) -> Path:
    return write_shape_folder(tmp_path_factory.mktemp("shapes") / "data")


@pytest.fixture(scope="session")
def blob_folder(tmp_path_factory) -> Path:
    """Generated segmentation data: ``images/`` + ``masks/`` with one bright ellipse per image."""
    return write_mask_folder(tmp_path_factory.mktemp("blobs") / "data")


@pytest.fixture
def kvasir() -> Path:
    if not (KVASIR / "images").is_dir():
        pytest.skip(f"real data not available: {KVASIR} is absent (../shared/data)")
    return KVASIR


@pytest.fixture
def breastmnist() -> Path:
    if not BREASTMNIST.is_file():
        pytest.skip(f"real data not available: {BREASTMNIST} is absent (../shared/data)")
    return BREASTMNIST
