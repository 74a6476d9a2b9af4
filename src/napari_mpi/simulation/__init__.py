"""Physics simulation: Langevin particles, FFP scanners and model-based system matrices."""

from .langevin import BOLTZMANN, MU0, Particles, langevin
from .scanner import PRESETS, Scanner, get_preset
from .system_matrix import iter_system_matrix, simulate_system_matrix

__all__ = [
    "BOLTZMANN",
    "MU0",
    "PRESETS",
    "Particles",
    "Scanner",
    "get_preset",
    "iter_system_matrix",
    "langevin",
    "simulate_system_matrix",
]
