"""npe2 sample data, generated offline from the built-in scanner presets (no files needed)."""

from __future__ import annotations

import numpy as np

from ..simulation import (
    get_preset,
    layered_scan,
    scanner_grid,
    simulate_measurement,
    simulate_system_matrix,
)
from ..simulation.phantoms import make_phantom, vessel_phantom
from .layers import LayerData, image_layer, row_label_layer, spectra_layer, system_matrix_layer


def sample_calibration_2d() -> list[LayerData]:
    """A simulated 2D Lissajous calibration of the ``preclinical-2d`` preset on 15 x 15 voxels."""
    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (15, 15)))
    name = "preclinical-2d system matrix (simulated)"
    return [system_matrix_layer(sm, name), row_label_layer(sm, "preclinical-2d row labels")]


def sample_example_2d() -> list[LayerData]:
    """A ready 2D example: resolution phantom, 19 x 19 calibration and a 30 dB measurement."""
    scanner = get_preset("preclinical-2d")
    grid = scanner_grid(scanner, (19, 19))
    sm = simulate_system_matrix(scanner, grid)
    fine = scanner_grid(scanner, (95, 95))
    phantom = make_phantom("resolution", fine)
    meas = simulate_measurement(sm, phantom, 30.0, frames=1)
    spectra = meas.data.reshape(1, 2, -1)
    freqs = sm.acquisition.frequencies[np.unique(sm.frequency_indices)]
    return [
        image_layer(phantom, "example-2d phantom"),
        system_matrix_layer(sm, "example-2d system matrix"),
        spectra_layer(
            spectra, freqs, "example-2d measurement (30 dB)", {"simulated_measurement": meas}
        ),
    ]


def sample_example_3d() -> list[LayerData]:
    """A ready 3D example: a vessel tree and its z-stepped (layered) x-space scan at 3 T/m."""
    scanner = get_preset("preclinical-3d")
    grid = scanner_grid(scanner, (32, 32, 16))
    phantom = vessel_phantom(grid, seed=1)
    scan = layered_scan(phantom, gradient=3.0)
    return [
        image_layer(phantom, "example-3d vessel phantom"),
        image_layer(scan, "example-3d layered x-space scan"),
    ]
