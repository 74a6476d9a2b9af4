"""The normal flow: simulate, reconstruct twice side by side, overlay on the phantom, compare."""

from __future__ import annotations

import numpy as np
import pytest

from napari_mpi._napari.metrics_widget import MetricsWidget
from napari_mpi._napari.reconstruction_widget import ReconstructionWidget
from napari_mpi._napari.simulation_widget import SimulationWidget
from napari_mpi.frequency_selection import AUTO_SNR_THRESHOLD

pytestmark = pytest.mark.gui


@pytest.fixture
def simulated(make_napari_viewer, monkeypatch):
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    viewer = make_napari_viewer()
    sim = SimulationWidget(viewer)
    sim.nx.value = sim.ny.value = 15
    sim.phantom_spec.value = "two-points:gap=10,diameter=2"
    sim.frames.value = 2
    sim.start()
    assert sim.state == "done", sim.status.value
    return viewer


def test_two_reconstructions_overlay_the_phantom(simulated):
    viewer = simulated
    rec = ReconstructionWidget(viewer)
    assert rec.calibration.value.name == "system matrix"
    assert rec.measurement.value.name == "measurement (30 dB)"
    rec.snr_threshold.value = 30
    rec.frames.value = "average"
    for method, params in (("kaczmarz", {"lam": "0.1", "sweeps": 10}), ("admm", {})):
        rec.method.value = method
        for name, value in params.items():
            rec.params[name].value = value
        rec.start()
        assert rec.state == "done", rec.status.value
    phantom = viewer.layers["phantom"]
    art = viewer.layers["kaczmarz"]
    admm = viewer.layers["admm"]
    assert art.metadata["measurement"] == "measurement (30 dB)" and art.metadata["rows"] > 0
    for layer in (art, admm):
        assert layer.data.shape == phantom.data.shape == (15, 15)
        np.testing.assert_allclose(layer.scale, phantom.scale)
        np.testing.assert_allclose(layer.translate, phantom.translate)
    assert art.metadata["params"]["sweeps"] == 10
    # both reconstructions find the two dots where the phantom has them
    for layer in (art, admm):
        top = np.argsort(layer.data.ravel())[::-1][:2]
        assert set(np.unravel_index(top, (15, 15))[1]) <= set(
            np.flatnonzero(phantom.data.max(0) > 0.2)
        )

    metrics = MetricsWidget(viewer)
    metrics.reference.value = phantom
    metrics.images.value = [art, admm]
    results = metrics.compute()
    assert set(results) == {art.name, admm.name}
    assert all(r["psnr"] > 15 and 0 < r["ssim"] <= 1 for r in results.values())
    assert len(metrics.table.value["data"]) == 2
    table = metrics.table.native  # tall enough for every row, no inner scrolling
    rows_height = 2 * table.verticalHeader().defaultSectionSize()
    assert table.minimumHeight() >= table.horizontalHeader().height() + rows_height

    row = phantom.translate[0] + 7 * phantom.scale[0]
    viewer.add_shapes([np.array([[row, -11.0], [row, 11.0]])], shape_type="line", name="profile")
    metrics.shapes.reset_choices()
    profiles = metrics.plot_profile()
    assert set(profiles) == {phantom.name, art.name, admm.name}
    prof = profiles[art.name]
    dist, widths = prof["distance_mm"], prof["fwhm_mm"]
    assert dist[-1] == pytest.approx(22.0)  # the line lies inside the 24 mm FOV
    # two points on the line: two peaks, each with its width, and a dip between them
    assert len(widths) == 2 and all(np.isfinite(w) and 0 < w < 10 for w in widths)
    assert prof["peak_to_valley"] > 1.5
    phantom_widths = profiles[phantom.name]["fwhm_mm"]
    assert len(phantom_widths) == 2

    # a line outside the field of view, and a shape that is not a line, say so
    viewer.add_shapes([np.array([[30.0, 30.0], [40.0, 40.0]])], shape_type="line", name="far")
    metrics.shapes.reset_choices()
    metrics.shapes.value = viewer.layers["far"]
    assert metrics.plot_profile() == {} and "outside the field of view" in metrics.status.value
    viewer.add_shapes([np.array([[-5.0, -5.0], [5.0, 5.0]])], shape_type="rectangle", name="box")
    metrics.shapes.reset_choices()
    metrics.shapes.value = viewer.layers["box"]
    assert metrics.plot_profile() == {} and "rectangle, not a line" in metrics.status.value

    # a layer that is not an image on the reference's grid is skipped, with the reason
    metrics.images.reset_choices()
    calibration = viewer.layers["system matrix"]
    metrics.images.value = [art, calibration]
    assert set(metrics.compute()) == {art.name}
    assert "skipped 'system matrix': it is a system-matrix stack" in metrics.status.value


def test_reconstruction_errors_leave_napari_usable(simulated):
    viewer = simulated
    rec = ReconstructionWidget(viewer)
    rec.snr_threshold.value = 1e8  # nothing passes
    rec.start()
    assert rec.state == "failed" and "no rows" in rec.status.value
    assert rec.run_button.enabled
    rec.snr_threshold.value = 30
    rec.method.value = "kaczmarz"
    rec.params["lam"].value = "abc"
    rec.start()
    assert rec.state == "failed" and "lam" in rec.status.value
    n = len(viewer.layers)
    rec.params["lam"].value = "0.1"
    rec.start()
    assert rec.state == "done" and len(viewer.layers) == n + 1


def test_measurement_layer_from_a_file_uses_its_background(
    make_napari_viewer, tmp_path, monkeypatch
):
    """A measurement opened with the reader is read again through its file, so the background
    frames are subtracted when background correction is on."""
    import napari_mpi as nm
    from napari_mpi.simulation import (
        get_preset,
        scanner_grid,
        simulate_measurement,
        simulate_system_matrix,
        write_simulated_measurement,
    )
    from napari_mpi.simulation.phantoms import make_phantom

    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (9, 9)))
    meas = simulate_measurement(sm, make_phantom("shape", sm.grid), 30, background_frames=3)
    meas.background += 5.0  # a strong constant background in the empty-scanner frames
    meas.data += 5.0
    nm.write_mdf(tmp_path / "cal.mdf", sm)
    write_simulated_measurement(tmp_path / "meas.mdf", meas)
    viewer = make_napari_viewer()
    viewer.open(str(tmp_path / "cal.mdf"), plugin="napari-mpi")
    viewer.open(str(tmp_path / "meas.mdf"), plugin="napari-mpi")
    rec = ReconstructionWidget(viewer)
    assert rec.measurement.value.name == "meas"
    used, corrected, _ = rec._inputs()
    # the widget's SNR threshold 0 is the automatic selection (SNR >= 2; issue #13)
    keep = sm.snr >= AUTO_SNR_THRESHOLD
    assert corrected.shape[1] == used.num_rows == int(keep.sum())
    expected = meas.data[0] - meas.background.mean(axis=0)
    np.testing.assert_allclose(corrected[0], expected[keep], rtol=1e-4, atol=1e-4)
    rec.background.value = False
    _, raw, _ = rec._inputs()
    np.testing.assert_allclose(raw[0], meas.data[0][keep], rtol=1e-5, atol=1e-5)
