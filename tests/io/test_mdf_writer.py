"""Writing MDF 2.1 and reading it back: exact round trips, safe file handling."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import napari_mpi as nm
from napari_mpi.io import mdf_writer


def _acquisition(channels=2, samples=32, periods=1):
    return nm.Acquisition(
        base_frequency=2.5e6,
        dividers=[102, 96],
        drive_strength=[0.012, 0.012],
        num_sampling_points=samples,
        bandwidth=samples / (2 * 1632 / 2.5e6),
        num_receive_channels=channels,
        gradient=[-1.0, -1.0, 2.0],
        num_periods=periods,
    )


def _system_matrix(rng, grid=(1, 3, 4), channels=2, samples=32, bins=None, background=0, snr=True):
    acq = _acquisition(channels, samples)
    bins = np.arange(acq.num_frequencies) if bins is None else np.asarray(bins)
    rows = channels * bins.size
    voxels = int(np.prod(grid))
    matrix = rng.normal(size=(rows, voxels)) + 1j * rng.normal(size=(rows, voxels))
    return nm.SystemMatrix(
        matrix=matrix,
        channels=np.repeat(np.arange(channels), bins.size),
        frequency_indices=np.tile(bins, channels),
        frequencies=acq.frequencies[np.tile(bins, channels)],
        grid_shape=grid,
        fov=np.array([0.001, 0.012, 0.02]),
        center=np.array([0.0, 0.001, -0.002]),
        snr=rng.random(rows) * 30 if snr else None,
        acquisition=acq,
        background=(rng.normal(size=(background, rows)) * (1 + 1j)) if background else None,
        background_corrected=True,
    )


def test_calibration_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(1)
    sm = _system_matrix(rng, bins=[2, 3, 7, 11], background=3)
    path = nm.write_mdf(tmp_path / "cal.mdf", sm)
    with nm.read_mdf(path) as f:
        back = f.system_matrix()
        summary = f.summary()
    assert np.array_equal(back.matrix, sm.matrix)
    assert np.array_equal(back.channels, sm.channels)
    assert np.array_equal(back.frequency_indices, sm.frequency_indices)
    np.testing.assert_array_equal(back.snr, sm.snr)
    np.testing.assert_array_equal(back.background, sm.background)
    np.testing.assert_allclose(back.fov, sm.fov)
    np.testing.assert_allclose(back.center, sm.center)
    assert back.grid_shape == sm.grid_shape
    assert back.fingerprint() == sm.fingerprint()
    assert summary["background_frames"] == 3 and summary["frequencies"] == 4
    assert summary["grid_xyz"] == [4, 3, 1]


def test_written_file_follows_mdf_2_1(tmp_path):
    rng = np.random.default_rng(2)
    sm = _system_matrix(rng, bins=[1, 4, 5])
    path = nm.write_calibration(tmp_path / "cal.mdf", sm)
    with h5py.File(path, "r") as h5:
        assert h5["version"][()].decode() == "2.1.0"
        data = h5["measurement/data"]
        assert data.shape == (1, 2, 3, 12)  # J x C x K x N, frame axis fast
        assert data.dtype == np.complex64
        assert data.id.get_type().get_class() == h5py.h5t.COMPOUND  # r/i compound
        for flag in ("isFastFrameAxis", "isFourierTransformed", "isFrequencySelection"):
            assert h5[f"measurement/{flag}"].dtype == np.int8
            assert h5[f"measurement/{flag}"][()] == 1
        assert h5["measurement/isBackgroundFrame"].dtype == np.int8
        assert list(h5["measurement/frequencySelection"][()]) == [2, 5, 6]  # 1-based
        assert list(h5["calibration/size"][()]) == [4, 3, 1]  # x, y, z
        assert h5["calibration/snr"].shape == (1, 2, 3)
        for group in ("study", "experiment", "tracer", "scanner", "acquisition"):
            assert group in h5


def test_reconstruction_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    data = rng.random((2, 3, 4, 5)).astype(np.float32)
    img = nm.MPIImage(data, fov=[0.003, 0.012, 0.02], center=[0.0, 0.001, 0.002])
    path = nm.write_mdf(tmp_path / "reco.mdf", img)
    with nm.read_mdf(path) as f:
        assert f.kind == "reconstruction"
        back = f.image()
    assert np.array_equal(back.data, data)
    np.testing.assert_allclose(back.fov, img.fov)
    np.testing.assert_allclose(back.center, img.center)
    with h5py.File(path, "r") as h5:
        assert h5["reconstruction/data"].shape == (2, 60, 1)  # Q x P x S
        pos = h5["reconstruction/positions"][()]
    # first voxel centre and x-fastest ordering of positions (x, y, z)
    np.testing.assert_allclose(pos[0], img.grid.origin[::-1])
    np.testing.assert_allclose(pos[1, 0] - pos[0, 0], img.voxel_size[2])


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"fast_frame_axis": True},
        {"frequency_indices": np.array([0, 3, 4, 16])},
        {"is_background_frame": np.array([0, 1, 0, 0, 1], bool)},
        {"frame_permutation": np.array([4, 2, 0, 1, 3])},
    ],
)
def test_measurement_round_trip(tmp_path, kwargs):
    rng = np.random.default_rng(4)
    acq = _acquisition()
    sm = _system_matrix(rng, bins=[0, 3, 4, 16], snr=False)
    k = len(kwargs.get("frequency_indices", range(acq.num_frequencies)))
    data = (rng.normal(size=(5, 2, k)) + 1j * rng.normal(size=(5, 2, k))).astype(np.complex64)
    path = nm.write_measurement(tmp_path / "m.mdf", data, acq, **kwargs)
    with nm.read_mdf(path) as f:
        u = f.measurements(sm, background_correction=False)
    bins = kwargs.get("frequency_indices", np.arange(acq.num_frequencies))
    pos = np.searchsorted(bins, sm.frequency_indices)
    bg = kwargs.get("is_background_frame", np.zeros(5, bool))
    perm = kwargs.get("frame_permutation", np.arange(5))
    acquired = np.argsort(perm)
    order = [s for s in acquired if not bg[s]]
    assert np.array_equal(u, data[order][:, sm.channels, pos])


def test_time_domain_measurement_round_trip(tmp_path):
    rng = np.random.default_rng(5)
    acq = _acquisition()
    sm = _system_matrix(rng, snr=False)
    signal = rng.normal(size=(3, 2, 32)).astype(np.float32)
    path = nm.write_measurement(tmp_path / "td.mdf", signal, acq)
    with nm.read_mdf(path) as f:
        assert f.summary()["time_domain"] is True
        u = f.measurements(sm)
    expected = np.fft.rfft(signal.astype(np.float64), axis=-1)[:, sm.channels, sm.frequency_indices]
    np.testing.assert_allclose(u, expected, rtol=1e-5, atol=1e-5)


def test_existing_file_is_not_overwritten(tmp_path):
    rng = np.random.default_rng(6)
    sm = _system_matrix(rng)
    target = tmp_path / "cal.mdf"
    target.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        nm.write_mdf(target, sm)
    assert target.read_bytes() == b"precious"
    nm.write_mdf(target, sm, overwrite=True)
    assert nm.is_mdf(target)


def test_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    sm = _system_matrix(rng)
    target = tmp_path / "cal.mdf"
    target.write_bytes(b"precious")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(mdf_writer, "write_grid", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        nm.write_mdf(target, sm, overwrite=True)
    assert target.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cal.mdf"]


def test_writer_refuses_bad_input(tmp_path):
    rng = np.random.default_rng(8)
    acq = _acquisition()
    with pytest.raises(ValueError, match="NaN"):
        bad = np.full((2, 2, 17), np.nan + 0j)
        nm.write_measurement(tmp_path / "nan.mdf", bad, acq)
    with pytest.raises(ValueError, match="channel"):
        nm.write_measurement(tmp_path / "c.mdf", np.zeros((2, 3, 17), complex), acq)
    sm = _system_matrix(rng)
    ragged = sm.select_rows(np.arange(sm.num_rows - 1))
    with pytest.raises(ValueError, match="different frequencies"):
        nm.write_mdf(tmp_path / "r.mdf", ragged)
    with pytest.raises(TypeError, match="SystemMatrix or an MPIImage"):
        nm.write_mdf(tmp_path / "x.mdf", np.zeros(3))
    assert not any(tmp_path.iterdir())


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    grid=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 5)),
    channels=st.integers(1, 3),
    samples=st.sampled_from([8, 16, 33]),
    data=st.data(),
)
def test_calibration_round_trip_property(tmp_path_factory, grid, channels, samples, data):
    num_freq = samples // 2 + 1
    bins = sorted(data.draw(st.sets(st.integers(0, num_freq - 1), min_size=1)))
    background = data.draw(st.integers(0, 3))
    seed = data.draw(st.integers(0, 2**31))
    sm = _system_matrix(
        np.random.default_rng(seed), grid, channels, samples, bins=bins, background=background
    )
    path = tmp_path_factory.mktemp("rt") / "cal.mdf"
    nm.write_mdf(path, sm)
    with nm.read_mdf(path) as f:
        back = f.system_matrix()
    assert np.array_equal(back.matrix, sm.matrix)
    assert np.array_equal(back.frequency_indices, sm.frequency_indices)
    assert back.grid_shape == sm.grid_shape


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    frames=st.integers(1, 4),
    grid=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
    seed=st.integers(0, 2**31),
)
def test_reconstruction_round_trip_property(tmp_path_factory, frames, grid, seed):
    rng = np.random.default_rng(seed)
    img = nm.MPIImage(
        rng.normal(size=(frames, *grid)).astype(np.float32),
        fov=rng.random(3) * 0.05,
        center=rng.normal(size=3) * 0.01,
    )
    path = tmp_path_factory.mktemp("rt") / "reco.mdf"
    nm.write_mdf(path, img)
    with nm.read_mdf(path) as f:
        back = f.image()
    assert np.array_equal(back.data, img.data)
    np.testing.assert_allclose(back.fov, img.fov)
    np.testing.assert_allclose(back.center, img.center)
