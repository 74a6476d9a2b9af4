"""Image -> image enhancement of 3D MPI volumes: the layered-scan degradation, training pairs,
deconvolution baselines and tiled application (learned methods come with #16's later parts).

torch is never imported here; every module works with numpy and scipy.
"""

from .degradation import Degradation

__all__ = ["Degradation"]
