from __future__ import annotations

import numpy as np
import pytest

from napari_mpi.simulation import (
    get_preset,
    scanner_grid,
    simulate_measurement,
    simulate_system_matrix,
)
from napari_mpi.simulation.phantoms import make_phantom


@pytest.fixture(scope="module")
def two_points_2d():
    """The 19 x 19 preset calibration, 3 frames of two dots at 30 dB (signal from a 5x finer
    grid), restricted to the rows whose signal stands above the noise; and the phantom."""
    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (19, 19)))
    phantom = make_phantom("two-points:gap=8,diameter=2", scanner_grid(scanner, (95, 95)))
    meas = simulate_measurement(
        sm, phantom, 30.0, frames=3, seed=1, simulate_on_phantom_grid=True, scanner=scanner
    )
    rows = np.flatnonzero(np.abs(meas.clean) >= meas.noise_std)
    return sm.select_rows(rows), meas.data[:, rows], meas.phantom
