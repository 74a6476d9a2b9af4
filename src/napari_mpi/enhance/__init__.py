"""Image -> image enhancement of 3D MPI volumes: the layered-scan degradation
(:mod:`.degradation`), training pairs (:mod:`.data`), deconvolution baselines
(:mod:`.deconvolution`, registered as ``richardson-lucy`` and ``wiener`` by :mod:`.methods`),
tiled application (:mod:`.tiling`), and the learned methods (:mod:`.learned`: ``csdnet``,
``unet3d``, ``edsr3d``, ``rcan3d``, ``rrdb3d``; trained by :mod:`.training` with the recipes
of :mod:`.recipes`), and DC_GAN for 2D x-space images (:mod:`.dcgan`, trained on the unpaired
domains of :mod:`.unpaired` by :mod:`.dcgan_recipe`; the mismatched PSF it is made for is
:mod:`napari_mpi.simulation.psf_mismatch`).

torch is never imported here; every module works with numpy and scipy. Called,
``napari_mpi.enhance(image, method, **params)`` runs a registered enhancement method.
"""

import sys
import types

from .degradation import Degradation

__all__ = ["Degradation"]


class _EnhanceModule(types.ModuleType):
    """``napari_mpi.enhance`` is this subpackage and, called, the one enhancement entry point:
    ``napari_mpi.enhance(image, method="wiener", **params)`` (the issue's public name; the
    subpackage would otherwise shadow a function of that name on ``napari_mpi``)."""

    def __call__(self, image, method: str, **params):
        from ..recon.registry import enhance

        return enhance(image, method, **params)


sys.modules[__name__].__class__ = _EnhanceModule
