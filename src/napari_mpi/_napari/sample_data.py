"""npe2 sample data, generated offline from the built-in scanner presets."""

from __future__ import annotations

from ..grid import Grid
from ..simulation import get_preset, simulate_system_matrix
from .layers import LayerData, row_label_layer, system_matrix_layer


def sample_calibration_2d() -> list[LayerData]:
    """A simulated 2D Lissajous calibration of the ``preclinical-2d`` preset on 15 x 15 voxels."""
    scanner = get_preset("preclinical-2d")
    fov = scanner.fov
    grid = Grid((1, 15, 15), fov=(0.0, fov[1], fov[0]), center=(0.0, 0.0, 0.0))
    sm = simulate_system_matrix(scanner, grid)
    name = "preclinical-2d system matrix (simulated)"
    return [system_matrix_layer(sm, name), row_label_layer(sm, "preclinical-2d row labels")]
