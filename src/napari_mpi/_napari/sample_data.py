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
from . import view
from .layers import LayerData, calibration_layers, image_layer, spectra_layer


def sample_calibration_2d() -> list[LayerData]:
    """A simulated 2D Lissajous calibration of the ``preclinical-2d`` preset on 15 x 15 voxels."""
    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (15, 15)))
    view.install_current()
    return calibration_layers(sm, "calibration-2d")


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
    view.install_current()
    return [  # the phantom above the calibration: it is what the user looks at first
        *calibration_layers(sm, "system matrix"),
        image_layer(phantom, "phantom", kind="phantom"),
        spectra_layer(spectra, freqs, "measurement (30 dB)", {"simulated_measurement": meas}),
    ]


def sample_example_3d() -> list[LayerData]:
    """A ready 3D example: a vessel tree and its z-stepped (layered) x-space scan at 3 T/m."""
    scanner = get_preset("preclinical-3d")
    grid = scanner_grid(scanner, (32, 32, 16))
    phantom = vessel_phantom(grid, seed=1)
    scan = layered_scan(phantom, gradient=3.0)
    view.install_current()
    return [
        image_layer(phantom, "vessel phantom", kind="phantom"),
        image_layer(scan, "layered scan", kind="xspace"),
    ]


def sample_xspace_tubes() -> list[LayerData]:
    """DC_GAN's setting: two 1.2 mm tubes 1.8 mm apart (20 x 20 mm, 101 x 101 pixels) and
    their native x-space image with the mismatched true PSF (relaxation, a 20 % weaker x
    gradient) at 40 dB; enhance it with ``dcgan``, or deconvolve it."""
    from ..enhance.tube_resolution import tube_pair
    from ..enhance.unpaired import FOV, image_grid
    from ..image import MPIImage
    from ..simulation.psf_mismatch import XSpaceBlur

    grid = image_grid()
    blur = XSpaceBlur()
    tubes = tube_pair(1.8e-3)
    native = blur.native(tubes, grid, np.random.default_rng(0))
    fov = np.array([0.0, FOV, FOV])
    phantom = MPIImage(tubes[None, None], fov, grid.center,
                       metadata={"phantom": "two-tubes", "gap_m": 1.8e-3})  # fmt: skip
    image = MPIImage(native[None, None], fov, grid.center,
                     metadata={"method": "x-space native image (mismatched PSF)",
                               "xspace_blur": blur.to_dict()})  # fmt: skip
    view.install_current()
    return [
        image_layer(phantom, "two tubes (1.8 mm gap)", kind="phantom"),
        image_layer(image, "x-space native (40 dB)", kind="xspace"),
    ]
