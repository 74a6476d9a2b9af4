"""Files the project writes follow MDF 2.1.0: every mandatory group and field, spec types and
dimensions (tables in mdf_spec.py, encoded from the specification); gradient layouts;
provenance kept when a file is re-written."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
from mdf_spec import violations

import napari_mpi as nm
from mdf_factory import GRADIENT, Layout, write_mdf_file
from napari_mpi import MDFError
from napari_mpi.cli import main


def _calibration(tmp_path, **kw):
    truth = write_mdf_file(tmp_path / "factory.mdf", Layout(**kw))
    with nm.read_mdf(truth.path) as f:
        return f.system_matrix()


def _image(frames=1, grid=(1, 3, 4)):
    rng = np.random.default_rng(0)
    return nm.MPIImage(rng.random((frames, *grid)).astype(np.float32), [1e-3, 3e-3, 4e-3], [0] * 3)


def test_spec_tables_catch_departures(tmp_path):
    """The checker itself: a conformant file passes, each kind of departure is reported."""
    path = nm.write_calibration(tmp_path / "cal.mdf", _calibration(tmp_path))
    assert violations(path, "calibration") == []
    cases = {
        "experiment/isSimulation": (np.int64(1), "type int64"),
        "study/name": (None, "study/name is missing"),
        "acquisition/drivefield/strength": (np.zeros((1, 2)), "JxDxF"),
        "acquisition/receiver": (None, "group /acquisition/receiver is missing"),
        "measurement/isBackgroundFrame": (np.zeros(3, np.int8), "shape (3,)"),
        "calibration/method": (None, "calibration/method is missing"),
        "acquisition/gradient": (np.zeros((1, 3)), "JxYx3x3"),
    }
    for field, (value, message) in cases.items():
        broken = tmp_path / "broken.mdf"
        broken.write_bytes(path.read_bytes())
        with h5py.File(broken, "a") as h5:
            del h5[field]
            if value is not None:
                h5[field] = value
        found = violations(broken, "calibration")
        assert any(message in p for p in found), (field, found)


@pytest.mark.parametrize("variant", ["plain", "background+snr", "two periods", "selection"])
def test_written_calibrations_conform(tmp_path, variant):
    kw = {
        "plain": {},
        "background+snr": {"background": 3, "with_snr": True},
        "two periods": {"periods": 2},
        "selection": {"selection": np.array([1, 4, 5, 9]), "fast": True},
    }[variant]
    sm = _calibration(tmp_path, **kw)
    path = nm.write_mdf(tmp_path / "cal.mdf", sm, delta_sample_size=[1e-3] * 3)
    assert violations(path, "calibration") == []


def test_written_measurements_conform(tmp_path):
    sm = _calibration(tmp_path)
    acq = sm.acquisition
    rng = np.random.default_rng(1)
    spectra = rng.normal(size=(4, 2, acq.num_frequencies)) + 0j
    paths = [
        nm.write_measurement(tmp_path / "fd.mdf", spectra, acq),
        nm.write_measurement(
            tmp_path / "sel.mdf",
            spectra[..., [1, 2, 7]],
            acq,
            frequency_indices=np.array([1, 2, 7]),
            is_background_frame=np.array([0, 1, 0, 0], bool),
            frame_permutation=np.array([3, 1, 0, 2]),
            fast_frame_axis=True,
        ),
        nm.write_measurement(tmp_path / "td.mdf", rng.normal(size=(3, 2, 32)), acq),
    ]
    for path in paths:
        assert violations(path, "measurement") == [], path.name


def test_written_reconstructions_conform_with_and_without_acquisition(tmp_path):
    from napari_mpi._napari.writer import write_image_layer

    sm = _calibration(tmp_path)
    with_acq = nm.write_reconstruction(tmp_path / "a.mdf", _image(2), acquisition=sm.acquisition)
    without = nm.write_mdf(tmp_path / "b.mdf", _image())
    layer = write_image_layer(str(tmp_path / "layer.mdf"), np.ones((3, 4), np.float32), {})
    for path in (with_acq, without, layer[0]):
        assert violations(path, "reconstruction") == [], path
    with nm.read_mdf(without) as f:
        assert f.has_placeholder_acquisition
        summary = f.summary()
        assert "sampling_points" not in summary and summary["kind"] == "reconstruction"
        with pytest.raises(MDFError, match="holds no acquisition settings"):
            f.acquisition  # noqa: B018
        np.testing.assert_array_equal(f.image().data, _image().data)


def test_cli_outputs_conform(tmp_path, capsys):
    cal, meas, reco = tmp_path / "c.mdf", tmp_path / "m.mdf", tmp_path / "r.mdf"
    assert main(["simulate", "system-matrix", "--grid", "4", "4", "-o", str(cal), "--quiet"]) == 0
    args = ["simulate", "measurement", "--calibration", str(cal), "--phantom", "resolution"]
    assert main([*args, "--snr", "30", "-o", str(meas), "--quiet"]) == 0
    args = ["reconstruct", "--calibration", str(cal), "--measurement", str(meas)]
    assert main([*args, "-o", str(reco), "--quiet", "--snr-threshold", "3"]) == 0
    assert violations(cal, "calibration") == []
    assert violations(meas, "measurement") == []
    assert violations(reco, "reconstruction") == []


# -- gradient -------------------------------------------------------------------------------------
def _with_gradient(tmp_path, value) -> object:
    truth = write_mdf_file(tmp_path / "g.mdf", Layout())
    with h5py.File(truth.path, "a") as h5:
        del h5["acquisition/gradient"]
        h5["acquisition/gradient"] = value
    return truth.path


def test_gradient_spec_layout_is_read_as_a_matrix(tmp_path):
    spec = np.diag([-1.25, -1.25, 2.5]).reshape(1, 1, 3, 3)
    with nm.read_mdf(_with_gradient(tmp_path, spec)) as f:
        acq = f.acquisition
        summary = f.summary()
    np.testing.assert_array_equal(acq.gradient, [-1.25, -1.25, 2.5])
    np.testing.assert_array_equal(acq.gradient_matrix, np.diag([-1.25, -1.25, 2.5]))
    assert summary["gradient_t_per_m_xyz"] == [-1.25, -1.25, 2.5]
    full = np.array([[-1.0, 0.25, 0.0], [0.25, -1.0, 0.0], [0.0, 0.0, 2.0]])
    two_periods = np.stack([full, 2 * full])[:, np.newaxis]  # J=2 x Y=1 x 3 x 3
    with nm.read_mdf(_with_gradient(tmp_path, two_periods)) as f:
        np.testing.assert_array_equal(f.acquisition.gradient_matrix, full)  # first period
        np.testing.assert_array_equal(f.acquisition.gradient, [-1.0, -1.0, 2.0])


@pytest.mark.parametrize("legacy", [np.array([[-1.0, -1.0, 2.0]]), np.array([[[-1.0, -1.0, 2.0]]])])
def test_gradient_legacy_layouts(tmp_path, legacy):
    with nm.read_mdf(_with_gradient(tmp_path, legacy)) as f:
        np.testing.assert_array_equal(f.acquisition.gradient_matrix, GRADIENT)


@pytest.mark.parametrize("bad", [np.zeros((2, 2)), np.zeros((1, 1, 3, 4)), np.full((3, 3), np.nan)])
def test_gradient_bad_layouts_are_named(tmp_path, bad):
    with nm.read_mdf(_with_gradient(tmp_path, bad)) as f, pytest.raises(MDFError) as info:
        f.acquisition  # noqa: B018
    assert "acquisition/gradient" in str(info.value)


def test_writer_stores_the_full_gradient_matrix(tmp_path):
    sm = _calibration(tmp_path, periods=2)
    full = np.array([[-1.0, 0.25, 0.0], [0.25, -1.0, 0.0], [0.0, 0.0, 2.0]])
    sm.acquisition = nm.Acquisition(
        **{k: getattr(sm.acquisition, k) for k in ("base_frequency", "dividers")},
        drive_strength=sm.acquisition.drive_strength,
        num_sampling_points=sm.acquisition.num_sampling_points,
        bandwidth=sm.acquisition.bandwidth,
        num_receive_channels=sm.acquisition.num_receive_channels,
        num_periods=2,
        gradient=full,
    )
    path = nm.write_calibration(tmp_path / "cal.mdf", sm)
    with h5py.File(path, "r") as h5:
        stored = h5["acquisition/gradient"][()]
    assert stored.shape == (2, 1, 3, 3)
    np.testing.assert_array_equal(stored[1, 0], full)
    with nm.read_mdf(path) as f:
        np.testing.assert_array_equal(f.acquisition.gradient_matrix, full)
    with pytest.raises(ValueError, match="diagonal"):
        nm.Acquisition(2.5e6, [102], [0.01], 32, 1e6, 1, gradient=[1, 1, 1], gradient_matrix=full)


# -- provenance -----------------------------------------------------------------------------------
def test_rewritten_real_calibration_keeps_its_provenance(tmp_path, shared_mdf):
    src = shared_mdf / "systemMatrix.mdf"
    with nm.read_mdf(src) as f:
        sm = f.system_matrix()
        before = f.metadata
    out = nm.write_calibration(tmp_path / "again.mdf", sm)
    assert violations(out, "calibration") == []
    with nm.read_mdf(out) as f:
        after = f.metadata
        again = f.system_matrix()
        with h5py.File(out, "r") as h5:
            assert h5["experiment/isSimulation"].dtype == np.int8
            assert h5["calibration/method"][()].decode() == "robot"
    assert after["experiment"]["isSimulation"] == 0
    for group in ("study", "experiment", "scanner"):
        for key, value in before[group].items():
            assert after[group][key] == value, (group, key)
    for key, value in before["tracer"].items():
        assert np.atleast_1d(after["tracer"][key]).tolist() == np.atleast_1d(value).tolist()
    assert after["acquisition"]["startTime"] == before["acquisition"]["startTime"]
    assert again.metadata["calibration_method"] == "robot"
    np.testing.assert_allclose(again.matrix, sm.matrix, rtol=1e-6)
    # caller's metadata still wins, group by group
    over = nm.write_calibration(
        tmp_path / "renamed.mdf", sm, metadata={"study": {"name": "mine"}}, method="hybrid"
    )
    with nm.read_mdf(over) as f:
        assert f.metadata["study"]["name"] == "mine"
        assert f.metadata["study"]["uuid"] == before["study"]["uuid"]
        assert f.system_matrix().metadata["calibration_method"] == "hybrid"


def test_reconstruction_keeps_provenance(tmp_path):
    path = nm.write_reconstruction(
        tmp_path / "r.mdf", _image(), metadata={"experiment": {"isSimulation": False}}
    )
    with nm.read_mdf(path) as f:
        img = f.image()
    again = nm.write_reconstruction(tmp_path / "r2.mdf", img)
    with nm.read_mdf(again) as f:
        assert f.metadata["experiment"]["isSimulation"] == 0


# -- SNR threshold 0 ------------------------------------------------------------------------------
def test_snr_threshold_zero_means_no_selection(tmp_path):
    truth = write_mdf_file(tmp_path / "cal.mdf", Layout())  # no calibration/snr, no background
    with nm.read_mdf(truth.path) as f:
        all_rows = f.system_matrix()
        zero = f.system_matrix(snr_threshold=0)
        with pytest.raises(MDFError, match="calibration/snr"):
            f.system_matrix(snr_threshold=0.5)
    np.testing.assert_array_equal(zero.matrix, all_rows.matrix)
