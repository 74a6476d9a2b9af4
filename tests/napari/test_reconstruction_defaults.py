"""Defaults that give a good image (issue #13): the Reconstruction widget with nothing changed
gives what ``nm.reconstruct`` gives with its defaults, for every method, and the networks read
their own rows whatever SNR threshold is set."""

from __future__ import annotations

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi._napari.reconstruction_widget import ReconstructionWidget
from napari_mpi._napari.simulation_widget import SimulationWidget

pytestmark = pytest.mark.gui


@pytest.fixture
def widget_defaults(make_napari_viewer, monkeypatch):
    """The Simulation widget run with its defaults (two points, 19 x 19, 30 dB)."""
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    viewer = make_napari_viewer()
    sim = SimulationWidget(viewer)
    sim.start()
    assert sim.state == "done", sim.status.value
    return viewer


#: methods run with fewer iterations than their defaults here (DIP's 4000 network passes
#: per frame would take a minute of the suite), in the widget and the library alike
SHORTER = {"dip": {"iterations": 300, "width": 8, "depth": 2}}


def test_widget_defaults_match_the_library_defaults(widget_defaults):
    viewer = widget_defaults
    rec = ReconstructionWidget(viewer)
    meas = rec.measurement.value.metadata["simulated_measurement"]
    sm = rec.calibration.value.metadata["system_matrix"]
    phantom = meas.phantom
    for method in [m.name for m in nm.methods("reconstruct")]:
        rec.method.value = method
        before = len(viewer.layers)
        params = SHORTER.get(method, {})
        for name, value in params.items():
            rec.params[name].value = value
        rec.start()
        assert rec.state == "done", (method, rec.status.value)
        layer = viewer.layers[before]
        expected = nm.reconstruct(sm, meas.data[:1], method, **params)
        np.testing.assert_allclose(
            layer.data, expected.data[0, 0], rtol=1e-4, atol=1e-5 * expected.data.max()
        )
        # a good image: the Kaczmarz of the issue gave -12 dB here with the old defaults
        if method not in SHORTER:
            assert nm.metrics.psnr(expected, phantom) > 22, method


def test_networks_read_their_own_rows_whatever_the_threshold(widget_defaults):
    viewer = widget_defaults
    rec = ReconstructionWidget(viewer)
    rec.snr_threshold.value = 30  # the classical methods then use fewer rows
    for method in ("dernet", "cascaded", "admm-net"):
        rec.method.value = method
        rec.start()
        assert rec.state == "done", (method, rec.status.value)


def test_files_with_a_threshold_classical_and_network(make_napari_viewer, monkeypatch, tmp_path):
    """From files: a classical method reads only the selected rows, a network every row."""
    from napari_mpi.cli import main

    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    cal, meas = tmp_path / "cal.mdf", tmp_path / "meas.mdf"
    assert main(["simulate", "system-matrix", "-o", str(cal), "--quiet"]) == 0
    args = ["simulate", "measurement", "--calibration", str(cal), "--snr", "30", "--frames", "1"]
    assert main([*args, "--phantom", "two-points:gap=6", "-o", str(meas), "--quiet"]) == 0
    viewer = make_napari_viewer()
    rec = ReconstructionWidget(viewer)
    rec.calibration.value = rec.measurement.value = "(file)"
    rec.calibration_file.value, rec.measurement_file.value = str(cal), str(meas)
    rec.snr_threshold.value = 30
    for method in ("kaczmarz", "dernet"):
        rec.method.value = method
        rec.start()
        assert rec.state == "done", (method, rec.status.value)
    with nm.read_mdf(cal) as f:
        selected = f.system_matrix(snr_threshold=30).num_rows
        every = f.system_matrix().num_rows
    assert viewer.layers[0].metadata["rows"] == selected < every
    assert viewer.layers[1].metadata["rows"] == every  # the network took its own rows from all
