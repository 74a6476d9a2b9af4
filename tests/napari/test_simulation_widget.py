"""The Simulation widget: the normal flow, phantoms from layers, errors and cancel."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi._napari.simulation_widget import SimulationWidget

pytestmark = pytest.mark.gui


@pytest.fixture
def sync(monkeypatch):
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")


def test_simulate_2d_adds_layers_in_mm(make_napari_viewer, sync):
    viewer = make_napari_viewer()
    widget = SimulationWidget(viewer)
    widget.nx.value, widget.ny.value = 15, 15
    widget.frames.value = 2
    widget.want_xspace.value = True
    widget.start()
    assert widget.state == "done", widget.status.value
    names = [layer.name for layer in viewer.layers]
    assert names == [
        "system matrix",
        "system matrix rows",
        "phantom",
        "measurement (30 dB)",
        "x-space",
    ]
    phantom = viewer.layers["phantom"]
    np.testing.assert_allclose(phantom.scale, [1.6, 1.6])
    np.testing.assert_allclose(phantom.translate, [-11.2, -11.2])
    meas = viewer.layers["measurement (30 dB)"]
    assert meas.metadata["spectra"].shape == (2, 2, 817)  # frame, channel, frequency
    assert len(meas.data) == 0 and viewer.dims.ndim == 3  # row slider, y, x: no spectra axes
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    assert widget.progress.value == 100


def test_phantom_from_image_layer(make_napari_viewer, sync):
    viewer = make_napari_viewer()
    img = np.zeros((40, 40), np.float32)
    img[10:14, 20:30] = 1.0
    viewer.add_image(img, scale=(0.6, 0.6), translate=(-11.7, -11.7), name="my phantom")
    widget = SimulationWidget(viewer)
    widget.phantom_kind.value = "(image layer)"
    widget.phantom_layer.value = viewer.layers["my phantom"]
    widget.nx.value, widget.ny.value = 12, 12
    widget.want_sm.value = False
    widget.start()
    assert widget.state == "done", widget.status.value
    resampled = viewer.layers["phantom"].data
    assert resampled.shape == (12, 12)
    assert resampled.sum() * 2.0**2 == pytest.approx(img.sum() * 0.6**2, rel=0.02)


def test_bad_phantom_reports_and_recovers(make_napari_viewer, sync):
    viewer = make_napari_viewer()
    widget = SimulationWidget(viewer)
    widget.phantom_spec.value = "two-points:gap=99"
    widget.start()
    assert widget.state == "failed" and "gap" in widget.status.value
    assert len(viewer.layers) == 0 and widget.run_button.enabled


def test_cancel_stops_the_worker(make_napari_viewer, qtbot):
    viewer = make_napari_viewer()
    widget = SimulationWidget(viewer)
    widget.preset.value = "preclinical-3d"
    widget.nx.value = widget.ny.value = widget.nz.value = 15
    widget.start()
    assert widget.state == "running" and widget.worker is not None
    worker = widget.worker
    with qtbot.waitSignal(worker.finished, timeout=60000):
        qtbot.waitUntil(
            lambda: widget.progress.value > 0 or widget.state != "running", timeout=30000
        )
        widget.cancel()
    qtbot.waitUntil(lambda: widget.state == "cancelled" and widget.worker is None, timeout=5000)
    assert len(viewer.layers) == 0
    assert widget.run_button.enabled and not widget.cancel_button.enabled


def test_scanner_parameters_change_the_result(make_napari_viewer, sync):
    viewer = make_napari_viewer()
    widget = SimulationWidget(viewer)
    widget.nx.value = widget.ny.value = 9
    widget.start()
    weak = viewer.layers["system matrix"].metadata["system_matrix"]
    viewer.layers.clear()
    widget.gradient.value = 2.0  # halves the FOV for the same drive amplitude
    widget.diameter_nm.value = 30.0
    widget.start()
    strong = viewer.layers["system matrix"].metadata["system_matrix"]
    np.testing.assert_allclose(strong.fov[1:], weak.fov[1:] / 2)
    np.testing.assert_allclose(strong.acquisition.gradient, [-2, -2, 4])
    assert not np.allclose(np.abs(strong.matrix), np.abs(weak.matrix))
