from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MDF_DATA = SHARED_DATA / "mpimeasurements-mdf"


@pytest.fixture
def shared_mdf() -> Path:
    """Folder with the two real MDF files; the suite needs ../shared beside the checkout."""
    if not MDF_DATA.is_dir():
        pytest.fail(f"{MDF_DATA} is missing: clone the project with ../shared beside it")
    return MDF_DATA


@pytest.fixture
def shared_data() -> Path:
    """The shared data folder (MNIST, VesselMNIST3D, MDF files) beside the checkout."""
    if not SHARED_DATA.is_dir():
        pytest.fail(f"{SHARED_DATA} is missing: clone the project with ../shared beside it")
    return SHARED_DATA
