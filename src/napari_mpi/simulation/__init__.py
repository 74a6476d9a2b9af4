"""Physics simulation: Langevin particles, FFP scanners, system matrices, measurements,
x-space images and phantoms (:mod:`napari_mpi.simulation.phantoms`).

SI units throughout (m, T, Hz, s); phantom values are iron concentrations in mmol/L.
"""

from . import phantoms
from .langevin import (
    BOLTZMANN,
    MU0,
    Particles,
    langevin,
    langevin_derivative,
    langevin_over_xi,
)
from .layered import layered_psf, layered_scan
from .measurement import (
    SimulatedMeasurement,
    iter_measurement,
    scanner_from_acquisition,
    simulate_measurement,
    write_simulated_measurement,
)
from .noise import add_noise, measured_snr_db, noise_std_for_snr
from .scanner import PRESETS, Scanner, get_preset
from .system_matrix import (
    induced_signal,
    iter_phantom_signal,
    iter_system_matrix,
    scanner_grid,
    simulate_phantom_signal,
    simulate_system_matrix,
)
from .xspace import (
    gridded_scan,
    harmonic_psf,
    narrowband_image,
    native_image,
    psf,
    psf_kernel,
)

__all__ = [
    "BOLTZMANN",
    "MU0",
    "PRESETS",
    "Particles",
    "Scanner",
    "SimulatedMeasurement",
    "add_noise",
    "get_preset",
    "gridded_scan",
    "harmonic_psf",
    "induced_signal",
    "iter_measurement",
    "iter_phantom_signal",
    "iter_system_matrix",
    "langevin",
    "langevin_derivative",
    "langevin_over_xi",
    "layered_psf",
    "layered_scan",
    "measured_snr_db",
    "narrowband_image",
    "native_image",
    "noise_std_for_snr",
    "phantoms",
    "psf",
    "psf_kernel",
    "scanner_from_acquisition",
    "scanner_grid",
    "simulate_measurement",
    "simulate_phantom_signal",
    "simulate_system_matrix",
    "write_simulated_measurement",
]
