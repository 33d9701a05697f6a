"""Shared fixtures: small generated images, and the real data in ../shared when it is there."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from generated import write_shape_folder

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MEDTRANSFER_SHARED_DATA", REPO.parent / "shared" / "data"))
BREASTMNIST = SHARED_DATA / "medmnist" / "breastmnist.npz"



@pytest.fixture(scope="session")
def shape_folder(tmp_path_factory) -> Path:
    return write_shape_folder(tmp_path_factory.mktemp("shapes") / "data")


@pytest.fixture
def breastmnist() -> Path:
    if not BREASTMNIST.is_file():
        pytest.skip(f"real data not available: {BREASTMNIST} is absent (../shared/data)")
    return BREASTMNIST
