"""Degradation: the card's parameters, the scan it simulates and the PSF it gives."""

from __future__ import annotations

import json

import numpy as np
import pytest

from napari_mpi.enhance import Degradation
from napari_mpi.grid import Grid
from napari_mpi.image import MPIImage
from napari_mpi.profiles import fwhm
from napari_mpi.simulation import layered_scan, native_image

GRID = Grid((33, 33, 33), (33e-3,) * 3, (0.0, 0.0, 0.0))


def point() -> MPIImage:
    data = np.zeros(GRID.shape)
    data[16, 16, 16] = 1.0
    return MPIImage(data, GRID.fov, GRID.center)


def widths(v: np.ndarray) -> tuple[float, float, float]:
    v = v[0] if v.ndim == 4 else v
    z, y, x = np.unravel_index(np.argmax(v), v.shape)
    return fwhm(v[z, y, :], 1e-3), fwhm(v[z, :, x], 1e-3), fwhm(v[:, y, x], 1e-3)


def test_defaults_are_the_papers_scan():
    d = Degradation()
    assert (d.model, d.gradient, d.z_gradient, d.z_step, d.snr_db) == (
        "papers",
        3.0,
        1.5,
        2e-3,
        30.0,
    )
    fx, fy, fz = widths(d.without_noise().apply(point()).data)
    assert fz >= 2 * fx and fz >= 2 * fy
    assert "3 T/m in x-y" in d.describe() and "2 mm" in d.describe()


def test_card_round_trip_through_json():
    for d in (Degradation(), Degradation.legacy(), Degradation(z_step=3e-3, snr_db=None)):
        back = Degradation.from_dict(json.loads(json.dumps(d.to_dict())))
        assert back == d and back.differences(d) == []
    assert Degradation().differences(Degradation(z_step=3e-3)) == ["z_step: 0.002 != 0.003"]


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"blur": 1}, "unknown key"),
        ({"model": "gauss"}, "model"),
        ({"z_step": 0}, "z_step"),
        ({"particle_diameter": -1e-9}, "diameter"),
        ({"snr_db": float("inf")}, "snr_db"),
        ({"gradient": "three"}, "degradation"),
    ],
)
def test_bad_card_values_are_refused(values, message):
    with pytest.raises(ValueError, match=message):
        Degradation.from_dict(values)


def test_apply_is_layered_scan_with_noise_from_the_seed():
    d = Degradation()
    a, b = d.apply(point(), seed=1), d.apply(point(), seed=1)
    np.testing.assert_array_equal(a.data, b.data)
    clean = layered_scan(point())
    assert not np.array_equal(a.data, clean.data)
    assert a.metadata["degradation"] == d.to_dict()
    np.testing.assert_allclose(d.without_noise().apply(point()).data, clean.data)


def test_legacy_is_the_trace_free_scan():
    d = Degradation.legacy()
    out = d.apply(point())
    np.testing.assert_allclose(
        out.data, native_image(point(), (3, 3, -6), channels=(0, 1)).data, rtol=1e-5, atol=1e-12
    )
    fx, _, fz = widths(d.psf(GRID))
    assert fz < fx


def test_psf_shape_centre_and_anisotropy():
    k = Degradation().psf(point())
    assert k.shape == (65, 65, 65) and k.sum() == pytest.approx(1.0)
    assert np.unravel_index(np.argmax(k), k.shape) == (32, 32, 32)
    fx, fy, fz = widths(k)
    assert fz >= 2 * fx and fx == pytest.approx(fy)


def test_psf_is_the_scans_response_averaged_over_the_layer_phase():
    from scipy.signal import fftconvolve

    d = Degradation(snr_db=None)  # 2 mm steps on 1 mm voxels: two phases
    kernel = d.psf(GRID)
    on_layer = d.apply(point()).data[0]  # the point at voxel 16, on a layer
    moved = np.zeros(GRID.shape)
    moved[17, 16, 16] = 1.0
    between = d.apply(MPIImage(moved, GRID.fov, GRID.center)).data[0]
    mean = (on_layer[4:29] + between[5:30]) / 2  # aligned on the point, away from the edges
    expected = fftconvolve(point().data[0], kernel, mode="same")[4:29]
    np.testing.assert_allclose(mean, expected, rtol=0.02, atol=2e-3 * expected.max())
    # with a layer at every voxel the scan is exactly the convolution with the PSF
    every = Degradation(z_step=1e-3, snr_db=None)
    np.testing.assert_allclose(
        every.apply(point()).data[0],
        fftconvolve(point().data[0], every.psf(GRID), mode="same"),
        rtol=1e-4,
        atol=1e-9,
    )
