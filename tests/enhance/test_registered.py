"""The deconvolution baselines in the one registry: listed, run through enhance / iter_enhance."""

from __future__ import annotations

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.enhance import Degradation
from napari_mpi.enhance.deconvolution import richardson_lucy, wiener
from napari_mpi.grid import Grid
from napari_mpi.progress import Progress
from napari_mpi.recon.registry import get_method, methods
from napari_mpi.simulation.phantoms import vessel_phantom

GRID = Grid((16, 16, 16), (16e-3,) * 3, (0.0, 0.0, 0.0))


@pytest.fixture(scope="module")
def scan():
    return Degradation(z_step=3e-3, snr_db=None).apply(vessel_phantom(GRID, seed=2))


def test_listed_as_enhancement_methods():
    names = [m.name for m in methods("enhance")]
    assert "richardson-lucy" in names and "wiener" in names
    assert "richardson-lucy" not in [m.name for m in methods("reconstruct")]
    rl = get_method("richardson-lucy", task="enhance")
    assert rl.param("iterations").default == 400 and rl.kind == "classical"


def test_enhance_equals_the_direct_call_with_the_images_own_degradation(scan):
    # the image carries its degradation card: its PSF is used, not the default scan's
    out = nm.enhance(scan, method="richardson-lucy", iterations=20)
    direct = richardson_lucy(scan, 20, degradation=Degradation(z_step=3e-3, snr_db=None))
    np.testing.assert_allclose(out.data, direct.data, rtol=1e-5)
    assert out.metadata["method"] == "richardson-lucy" and out.grid.same_as(scan.grid)
    w = nm.enhance(scan, "wiener", balance=1e-2)
    np.testing.assert_allclose(
        w.data, wiener(scan, 1e-2, degradation=Degradation(z_step=3e-3, snr_db=None)).data
    )


def test_iter_enhance_yields_progress(scan):
    work = nm.iter_enhance(scan, "richardson-lucy", iterations=3)
    steps = []
    while True:
        try:
            steps.append(next(work))
        except StopIteration as stop:
            out = stop.value
            break
    assert [s.done for s in steps] == [1, 2, 3] and isinstance(steps[0], Progress)
    assert out.data.shape == scan.data.shape


def test_bad_parameters_and_images_are_refused(scan):
    with pytest.raises(ValueError, match="iterations"):
        nm.enhance(scan, "richardson-lucy", iterations=0)
    with pytest.raises(ValueError, match="padding"):
        nm.enhance(scan, "wiener", padding="mirror")
    flat = nm.MPIImage(np.ones((1, 8, 8)), (1e-3, 8e-3, 8e-3), (0, 0, 0))
    with pytest.raises(ValueError, match="2D image"):
        nm.enhance(flat, "wiener")
    with pytest.raises(ValueError, match="unknown enhancement method"):
        nm.enhance(scan, "kaczmarz")


def test_napari_mpi_enhance_is_the_subpackage_and_the_entry_point(scan):
    import napari_mpi.enhance.deconvolution as deconvolution

    assert nm.enhance.deconvolution is deconvolution and nm.enhance.Degradation is Degradation
    out = nm.enhance(scan, "wiener")
    np.testing.assert_allclose(out.data, nm.enhance_image(scan, "wiener").data)
    assert out.metadata["params"] == {
        "balance": 1e-3,
        "padding": "reflect",
        "regulariser": "laplacian",
    }
