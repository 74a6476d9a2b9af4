"""Reading MDF files of every layout: values, not only shapes."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

import napari_mpi as nm
from mdf_factory import Layout, expected_system_matrix, write_mdf_file
from napari_mpi import MDFError

RTOL = 1e-5


def _md5(path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


LAYOUTS = {
    "v2.1 frame-slow": Layout(),
    "v2.1 frame-fast": Layout(fast=True),
    "v2.1 trailing complex axis": Layout(complex_mode="trailing"),
    "v2.1 real/imag compound": Layout(complex_mode="realimag", fast=True),
    "v2.1 time domain + conversion": Layout(
        fourier=False, conversion=np.array([[2.0, 0.5], [0.25, -1.0]])
    ),
    "v2.1 frequency selection": Layout(selection=np.array([1, 2, 5, 9, 16]), fast=True),
    "v2.1 background frames": Layout(background=3),
    "v2.1 background first": Layout(background=3, background_first=True, fast=True),
    "v2.1 background already corrected": Layout(background=2, background_corrected=True),
    "v2.1 fixed-length strings": Layout(strings="fixed"),
    "v2.1 two periods": Layout(periods=2),
    "v2.1 order zyx": Layout(order="zyx", grid_xyz=(2, 3, 2)),
    "v2.1 order yxz": Layout(order="yxz", grid_xyz=(2, 3, 2)),
    "v2.0 legacy names": Layout(version="2.0", fast=True, background=2),
    "v2.0 legacy names time domain": Layout(version="2.0", fourier=False),
    "v1 calibration": Layout(version="1.0.5", channels=3),
}


@pytest.mark.parametrize("name", list(LAYOUTS))
def test_system_matrix_layouts(tmp_path, name):
    truth = write_mdf_file(tmp_path / "cal.mdf", LAYOUTS[name])
    before = _md5(truth.path)
    with nm.read_mdf(truth.path) as f:
        assert f.kind == "calibration"
        sm = f.system_matrix()
    lay = truth.layout
    expected = expected_system_matrix(truth)
    assert sm.matrix.dtype == np.complex64
    np.testing.assert_allclose(sm.matrix, expected, rtol=RTOL, atol=1e-5)
    # row bookkeeping: channel-major, frequency ascending
    k = truth.bins.size
    assert np.array_equal(sm.channels, np.tile(np.repeat(np.arange(lay.channels), k), lay.periods))
    assert np.array_equal(sm.frequency_indices, np.tile(truth.bins, lay.channels * lay.periods))
    np.testing.assert_allclose(sm.frequencies, truth.frequencies[sm.frequency_indices])
    # geometry in (z, y, x)
    assert sm.grid_shape == tuple(lay.grid_xyz[::-1])
    np.testing.assert_allclose(sm.fov, lay.fov_xyz[::-1])
    np.testing.assert_allclose(sm.center, lay.center_xyz[::-1])
    assert sm.num_background_frames == lay.background
    assert _md5(truth.path) == before, "reading must never modify the file"


def test_background_correction_can_be_disabled(tmp_path):
    truth = write_mdf_file(tmp_path / "cal.mdf", Layout(background=4))
    with nm.read_mdf(truth.path) as f:
        raw = f.system_matrix(background_correction=False)
        corrected = f.system_matrix()
    np.testing.assert_allclose(
        raw.matrix, expected_system_matrix(truth, False), rtol=RTOL, atol=1e-5
    )
    assert corrected.background_corrected and not raw.background_corrected
    bg_mean = truth.spectra[truth.is_background].mean(axis=0)[0].reshape(-1)
    np.testing.assert_allclose((raw.matrix - corrected.matrix)[:, 0], bg_mean, rtol=1e-4, atol=1e-5)


def test_frequency_filters(tmp_path):
    truth = write_mdf_file(tmp_path / "cal.mdf", Layout(channels=2, with_snr=True))
    with nm.read_mdf(truth.path) as f:
        full = f.system_matrix()
        lo, hi = truth.frequencies[3], truth.frequencies[10]
        band = f.system_matrix(min_frequency=lo, max_frequency=hi)
        ch1 = f.system_matrix(channels=[1])
        snr = f.system_matrix(snr_threshold=10.0)
    assert band.frequencies.min() >= lo and band.frequencies.max() <= hi
    assert band.num_rows == 2 * 8
    assert set(ch1.channels) == {1} and ch1.num_rows == full.num_rows // 2
    stored = truth.snr.reshape(-1)
    assert snr.num_rows == int((stored >= 10).sum())
    np.testing.assert_allclose(snr.snr, stored[stored >= 10])
    np.testing.assert_allclose(snr.matrix, full.matrix[stored >= 10])


def test_snr_estimated_from_background_frames(tmp_path):
    lay = Layout(background=6, frames=12)
    truth = write_mdf_file(tmp_path / "cal.mdf", lay)
    with nm.read_mdf(truth.path) as f:
        sm = f.system_matrix()
        sel = f.system_matrix(snr_threshold=float(np.median(sm.snr)))
    assert sm.snr is not None and sm.snr.shape == (sm.num_rows,)
    bg = truth.spectra[truth.is_background][:, 0].reshape(6, -1)
    fg = truth.spectra[~truth.is_background][:, 0].reshape(12, -1) - bg.mean(0)
    noise = np.sqrt((np.abs(bg - bg.mean(0)) ** 2).sum(0) / 5)
    np.testing.assert_allclose(sm.snr, np.sqrt((np.abs(fg) ** 2).mean(0)) / noise, rtol=1e-4)
    assert 0 < sel.num_rows < sm.num_rows
    assert np.all(sel.snr >= np.median(sm.snr) * (1 - 1e-9))


def test_snr_threshold_without_any_snr_source_is_refused(tmp_path):
    truth = write_mdf_file(tmp_path / "cal.mdf", Layout())
    with nm.read_mdf(truth.path) as f, pytest.raises(MDFError, match="calibration/snr"):
        f.system_matrix(snr_threshold=2)


def test_empty_selection_and_bad_channels(tmp_path):
    truth = write_mdf_file(tmp_path / "cal.mdf", Layout())
    with nm.read_mdf(truth.path) as f:
        with pytest.raises(ValueError, match="leaves no rows"):
            f.system_matrix(min_frequency=1e9)
        with pytest.raises(ValueError, match="channels"):
            f.system_matrix(channels=[5])


def test_transfer_function_correction(tmp_path):
    truth = write_mdf_file(tmp_path / "cal.mdf", Layout(transfer_function=True, fast=True))
    with nm.read_mdf(truth.path) as f:
        sm = f.system_matrix(transfer_function_correction=True)
    tf_rows = truth.tf[sm.channels, sm.frequency_indices]
    np.testing.assert_allclose(
        sm.matrix, expected_system_matrix(truth) / tf_rows[:, None], rtol=1e-4
    )
    assert sm.transfer_function_corrected
    plain = write_mdf_file(tmp_path / "plain.mdf", Layout())
    with nm.read_mdf(plain.path) as f, pytest.raises(MDFError, match="transferFunction"):
        f.system_matrix(transfer_function_correction=True)


def test_sparsity_transformed_calibration_is_refused(tmp_path):
    lay = Layout(extra={"measurement/isSparsityTransformed": np.int8(1)})
    truth = write_mdf_file(tmp_path / "cal.mdf", lay)
    with nm.read_mdf(truth.path) as f, pytest.raises(MDFError, match="isSparsityTransformed"):
        f.system_matrix()


# -- measurements ------------------------------------------------------------------------------
MEAS_LAYOUTS = {
    "frame-slow": Layout(kind="measurement", frames=5),
    "frame-fast": Layout(kind="measurement", frames=5, fast=True),
    "time domain": Layout(
        kind="measurement", frames=5, fourier=False, conversion=np.array([[3.0, 1.0], [1.0, 0.0]])
    ),
    "selection superset": Layout(
        kind="measurement", frames=5, selection=np.array([0, 1, 2, 4, 5, 8, 9, 12, 16])
    ),
    "permuted with background": Layout(
        kind="measurement", frames=5, background=2, permutation=np.array([3, 0, 6, 1, 5, 2, 4])
    ),
    "v2.0 legacy": Layout(kind="measurement", version="2.0", frames=4, fast=True),
    "v1 frequency": Layout(kind="measurement", version="1.0.5", frames=4),
    "v1 time": Layout(kind="measurement", version="1.0.5", frames=4, fourier=False),
}


def _calibration_for(tmp_path, **kw):
    truth = write_mdf_file(tmp_path / "cal.mdf", Layout(**kw))
    with nm.read_mdf(truth.path) as f:
        return f.system_matrix()


@pytest.mark.parametrize("name", list(MEAS_LAYOUTS))
def test_measurements_align_with_system_matrix(tmp_path, name):
    lay = MEAS_LAYOUTS[name]
    # the calibration stores another frequency selection than the measurement
    sm = _calibration_for(tmp_path, selection=np.array([1, 2, 5, 9, 16]))
    truth = write_mdf_file(tmp_path / "meas.mdf", lay)
    with nm.read_mdf(truth.path) as f:
        assert f.kind == "measurement"
        u = f.measurements(sm)
        u1 = f.measurements(sm, frames=[2, 0])
        avg = f.measurements(sm, average=True)
    fg_acq = [s for s in truth.acquisition_order if not truth.is_background[s]]
    spectra = truth.spectra
    if truth.is_background.any():
        spectra = spectra - spectra[truth.is_background].mean(axis=0, keepdims=True)
    expected = spectra[fg_acq][:, sm.periods, sm.channels, sm.frequency_indices]
    assert u.shape == (lay.frames, sm.num_rows) and u.dtype == np.complex64
    np.testing.assert_allclose(u, expected, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(u1, expected[[2, 0]], rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(avg[0], expected.mean(0), rtol=1e-5, atol=1e-4)


def test_measurement_missing_frequencies_is_refused(tmp_path):
    sm = _calibration_for(tmp_path, selection=np.array([1, 2, 3, 7]))
    truth = write_mdf_file(
        tmp_path / "meas.mdf", Layout(kind="measurement", selection=np.array([1, 2, 3]))
    )
    with nm.read_mdf(truth.path) as f, pytest.raises(MDFError, match="lacks 1 frequency"):
        f.measurements(sm)


def test_measurement_with_other_drive_field_is_refused(tmp_path):
    sm = _calibration_for(tmp_path)
    truth = write_mdf_file(tmp_path / "meas.mdf", Layout(kind="measurement", samples=64))
    with nm.read_mdf(truth.path) as f, pytest.raises(MDFError, match="numSamplingPoints 32 vs 64"):
        f.measurements(sm)


@pytest.mark.parametrize("frames", [[], [7], slice(10, 20), [0.5]])
def test_bad_frame_selection(tmp_path, frames):
    sm = _calibration_for(tmp_path)
    truth = write_mdf_file(tmp_path / "meas.mdf", Layout(kind="measurement", frames=5))
    with nm.read_mdf(truth.path) as f, pytest.raises(ValueError, match="frames"):
        f.measurements(sm, frames=frames)


def test_spectra_of_measurement(tmp_path):
    truth = write_mdf_file(
        tmp_path / "meas.mdf", Layout(kind="measurement", frames=3, background=1, fast=True)
    )
    with nm.read_mdf(truth.path) as f:
        spec = f.spectra()
        allf = f.spectra(include_background=True)
    np.testing.assert_allclose(spec, truth.spectra[:3], rtol=1e-5, atol=1e-5)
    assert allf.shape[0] == 4


# -- real files from another toolkit -------------------------------------------------------------
def test_real_robot_calibration(shared_mdf):
    import h5py

    path = shared_mdf / "systemMatrix.mdf"
    before = _md5(path)
    with nm.read_mdf(path) as f:
        assert (f.kind, f.version) == ("calibration", "2.0")
        assert f.acquisition.num_periods == 1  # legacy acquisition/numPeriods
        np.testing.assert_allclose(f.acquisition.gradient, [0, 0, 0])
        sm = f.system_matrix()
        meta = f.metadata
        summary = f.summary()
    with h5py.File(path, "r") as h5:
        raw = h5["measurement/data"][()][:, 0, 0, :].astype(np.float64)
        a, b = h5["acquisition/receiver/dataConversionFactor"][0]
    expected = np.fft.rfft(a * raw + b, axis=1).T  # (77, 9)
    assert sm.matrix.shape == (77, 9)
    np.testing.assert_allclose(sm.matrix, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(sm.frequencies[1], 125e6 / 4864, rtol=1e-9)
    assert sm.grid_shape == (1, 1, 9)
    np.testing.assert_allclose(sm.fov, [0.001, 0.001, 0.09])
    np.testing.assert_allclose(sm.center, [0.071, -0.0112, 0.156])
    assert sm.snr is None
    assert meta["study"]["name"] == "TestTobi"
    assert meta["scanner"]["operator"] == "Tobi"
    assert meta["tracer"]["injectionTime"] == ["2018-04-19T09:49:08.841"]
    assert summary["frequencies"] == 77 and summary["grid_xyz"] == [9, 1, 1]
    assert _md5(path) == before


def test_real_metadata_only_file(shared_mdf):
    path = shared_mdf / "tmp.mdf"
    with nm.read_mdf(path) as f:
        assert f.kind == "metadata" and f.version == "2.1.0"
        acq = f.acquisition
        meta = f.metadata
        assert f.num_frames == 0
        with pytest.raises(MDFError, match="not a calibration"):
            f.system_matrix()
    assert acq.num_sampling_points == 625 and acq.waveform == "sine"
    np.testing.assert_allclose(acq.drive_frequencies, [25e3])
    assert meta["scanner"]["topology"] == "FFL"
    assert meta["acquisition"]["drivefield"]["waveform"] == [["sine"]]
    assert meta["drivefield"]["baseFrequency"] == 125e6
    assert meta["receiver"]["numSamplingPoints"] == 625
    assert meta["experiment"]["subject"] == "Phantom of the Opera"


def test_is_mdf(tmp_path, shared_mdf):
    import h5py

    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = np.arange(3)
    assert nm.is_mdf(shared_mdf / "systemMatrix.mdf")
    assert not nm.is_mdf(other)
    assert not nm.is_mdf(tmp_path / "missing.mdf")
    with pytest.raises(MDFError, match="version"):
        nm.read_mdf(other)
    with pytest.raises(FileNotFoundError):
        nm.read_mdf(tmp_path / "missing.mdf")


def test_only_selected_rows_are_read(tmp_path, monkeypatch):
    """A filtered read touches only hyperslabs of the selected frequencies."""
    from napari_mpi.io import _layout

    truth = write_mdf_file(
        tmp_path / "cal.mdf", Layout(fast=True, samples=256, channels=2, with_snr=True)
    )
    calls = []
    original = _layout.DataLayout.read

    def spy(self, period, channel, samples, frames):
        calls.append(samples)
        return original(self, period, channel, samples, frames)

    monkeypatch.setattr(_layout.DataLayout, "read", spy)
    with nm.read_mdf(truth.path) as f:
        sm = f.system_matrix(
            min_frequency=truth.frequencies[10], max_frequency=truth.frequencies[20]
        )
    read_samples = sum(s.stop - s.start for s in calls)
    assert sm.num_rows == 22
    assert read_samples == 22  # 11 bins in each of 2 channels, nothing else
