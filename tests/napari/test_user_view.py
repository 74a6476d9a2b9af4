"""What a user sees: the view frames the images in mm, the newest result is visible, messages
stay inside the dock and come once, a broken file says why, the console knows the results, and
the event loop keeps ticking while a worker runs."""

from __future__ import annotations

import os

import h5py
import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi._napari._timing import TickGapMeter, run_until
from napari_mpi._napari.reconstruction_widget import ReconstructionWidget
from napari_mpi._napari.simulation_widget import SimulationWidget

pytestmark = pytest.mark.gui

FOV_MM = 24.0  # preclinical-2d drive-field FOV


def framed(viewer, layer) -> tuple[float, float]:
    """(offset of the view centre from the layer's centre, visible size / layer size) in the
    limiting direction, after reset view (1.0: the layer exactly fills the canvas)."""
    viewer.reset_view()
    lo, hi = layer.extent.world[:, -2:]
    size = hi - lo + np.asarray(layer.scale[-2:])  # voxel edges, not centres
    centre = (lo + hi) / 2
    canvas = np.asarray(viewer.canvas.size, float)  # (height, width) in pixels
    # napari 0.9 moved the camera to viewer.scene (viewer.camera is deprecated there)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    visible = canvas / camera.zoom  # mm on screen
    offset = float(np.max(np.abs(np.asarray(camera.center[-2:]) - centre) / size))
    return offset, float(np.min(visible / size))


def assert_frames(viewer, layer, expected_mm: float = FOV_MM) -> None:
    lo, hi = layer.extent.world[:, -2:]
    size = hi - lo + np.asarray(layer.scale[-2:])
    np.testing.assert_allclose(size, expected_mm, rtol=0.01)
    offset, fill = framed(viewer, layer)
    assert offset < 0.1 and fill == pytest.approx(1.0, abs=0.1), (offset, fill)


def assert_max_visible(layer) -> None:
    data = np.asarray(layer.data)
    lo, hi = layer.contrast_limits
    assert lo < hi and hi == pytest.approx(float(data.max()), rel=1e-3)
    assert lo <= max(float(data.min()), 0.0)


@pytest.fixture
def sync(monkeypatch):
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")


def test_example_sample_is_framed_in_mm(make_napari_viewer):
    viewer = make_napari_viewer(show=True)
    calibration, rows, phantom, _meas = viewer.open_sample("napari-mpi", "example-2d")
    assert viewer.dims.ndim == 3  # row slider + (y, x); the spectra add no axes
    assert_frames(viewer, phantom)
    assert_max_visible(phantom)
    # the calibration opens at its strongest row, and that row is visible in 0..1
    row = viewer.dims.current_step[0]
    assert row == calibration.metadata["start_row"]
    assert calibration.data[row].max() == pytest.approx(1.0)
    assert tuple(calibration.contrast_limits) == (0.0, 1.0)
    assert rows.metadata["kind"] == "row_labels" and len(rows.data) == calibration.data.shape[0]


def test_3d_example_contrast_from_zero(make_napari_viewer):
    viewer = make_napari_viewer()
    _phantom, scan = viewer.open_sample("napari-mpi", "example-3d")
    assert scan.contrast_limits[0] == 0
    assert_max_visible(scan)


def test_simulation_and_reconstruction_are_framed_and_visible(make_napari_viewer, sync):
    viewer = make_napari_viewer(show=True)
    sim = SimulationWidget(viewer)
    sim.nx.value = sim.ny.value = 15
    sim.start()
    assert sim.state == "done", sim.status.value
    phantom = viewer.layers["phantom"]
    assert_frames(viewer, phantom)
    rec = ReconstructionWidget(viewer)
    rec.snr_threshold.value = 30
    rec.method.value = "kaczmarz"
    rec.start()
    assert rec.state == "done", rec.status.value
    newest = viewer.layers[-1]
    assert newest.name == "kaczmarz" and newest.visible
    assert_max_visible(newest)
    assert_frames(viewer, newest)
    # console namespace: the package and the last results
    names = console_names(viewer)
    assert names["nm"] is nm
    sm = viewer.layers["system matrix"].metadata["system_matrix"]
    assert names["last_simulation"]["system_matrix"] is sm
    assert isinstance(names["last_reconstruction"], nm.MPIImage)


def test_opened_reconstruction_file_is_framed(make_napari_viewer, tmp_path):
    img = nm.MPIImage(np.random.default_rng(0).random((1, 1, 12, 12)) - 0.2,
                      fov=[0.001, 0.024, 0.024], center=[0, 0, 0])  # fmt: skip
    path = nm.write_mdf(tmp_path / "reco.mdf", img)
    viewer = make_napari_viewer(show=True)
    (layer,) = viewer.open(str(path), plugin="napari-mpi")
    assert_frames(viewer, layer)
    assert_max_visible(layer)
    assert layer.contrast_limits[0] == 0  # noise below 0 shows black


def console_names(viewer) -> dict:
    """The variables pushed to the console (its backlog until the console opens)."""
    qt_viewer = viewer.window._qt_viewer
    names: dict = {}
    for entry in qt_viewer.console_backlog:
        for key, value in entry.items():
            names[key] = value() if callable(value) and hasattr(value, "__callback__") else value
    if qt_viewer._console is not None:
        names.update(qt_viewer.console.shell.user_ns)
    return names


@pytest.fixture
def captured_notifications():
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def record(notification):
        seen.append(str(notification.message))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


def test_long_error_keeps_the_window_width(make_napari_viewer, sync, qtbot):
    viewer = make_napari_viewer(show=True)
    sim = SimulationWidget(viewer)
    viewer.window.add_dock_widget(sim, name="Simulation")
    window = viewer.window._qt_window
    window.resize(1200, 800)
    qtbot.wait(50)
    width, dock_width = window.width(), sim.native.width()
    sim.phantom_spec.value = "no-such-phantom:" + ",".join(f"key{i}=value{i}" for i in range(60))
    sim.start()
    assert sim.state == "failed"
    assert "unknown phantom" in sim.status.value and "two-points:gap" not in sim.status.value
    assert "SPEC syntax" in sim.status.value  # the long help lives in the button's tooltip
    assert "two-points" in sim.spec_help.tooltip
    qtbot.wait(100)
    assert window.width() == width and sim.native.width() <= dock_width + 1
    assert sim.status.native.wordWrap()


def test_worker_error_is_shown_once(make_napari_viewer, tmp_path, qtbot, captured_notifications,
                                    capfd):  # fmt: skip
    """An error raised inside the worker (here: reading a broken calibration file) is one
    notification and no traceback on the terminal."""
    broken = tmp_path / "broken.mdf"
    broken.write_bytes(b"not an HDF5 file at all" * 20)
    meas = tmp_path / "meas.mdf"
    meas.write_bytes(b"")
    viewer = make_napari_viewer()
    rec = ReconstructionWidget(viewer)
    rec.calibration.value = "(file)"
    rec.calibration_file.value = broken
    rec.measurement.value = "(file)"
    rec.measurement_file.value = meas
    capfd.readouterr()
    rec.start()
    assert rec.worker is not None  # reading happens in the worker
    qtbot.waitUntil(lambda: rec.state != "running" and rec.worker is None, timeout=30000)
    qtbot.wait(200)
    assert rec.state == "failed" and "broken.mdf" in rec.status.value
    mine = [m for m in captured_notifications if "broken.mdf" in m]
    assert len(mine) == 1, captured_notifications
    assert "Traceback" not in capfd.readouterr().err


def test_reconstruction_settings_each_get_their_message(make_napari_viewer, sync):
    viewer = make_napari_viewer()
    sim = SimulationWidget(viewer)
    sim.nx.value = sim.ny.value = 9
    sim.start()
    rec = ReconstructionWidget(viewer)
    rec.channels.value = "0, 7"
    rec.start()
    assert rec.state == "failed" and "channels: 7 not in" in rec.status.value
    rec.channels.value = "all"
    rec.min_khz.value, rec.max_khz.value = 500.0, 100.0
    rec.start()
    assert rec.state == "failed" and "min frequency (500 kHz) is above max" in rec.status.value
    rec.min_khz.value = rec.max_khz.value = 0.0
    rec.calibration.value = "(file)"
    rec.start()
    assert rec.state == "failed" and "calibration file: empty" in rec.status.value
    rec.calibration.value = viewer.layers["system matrix"]
    rec.measurement.value = "(file)"
    rec.start()
    assert rec.state == "failed" and "measurement file: empty" in rec.status.value


def test_broken_mdf_says_why_however_opened(make_napari_viewer, tmp_path):
    from napari_mpi._napari.reader import napari_get_reader

    garbage = tmp_path / "garbage.mdf"
    garbage.write_bytes(b"not an HDF5 file" * 10)
    incomplete = tmp_path / "incomplete.mdf"
    with h5py.File(incomplete, "w") as h5:
        h5["version"] = "2.1.0"
        h5.create_group("measurement")
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as h5:
        h5["x"] = np.arange(3)
    assert napari_get_reader(str(other)) is None  # not MDF, not .mdf: other readers' turn
    viewer = make_napari_viewer()
    for path in (garbage, incomplete):
        assert napari_get_reader(str(path)) is not None
        for kwargs in ({"plugin": "napari-mpi"}, {"plugin": None}):
            with pytest.raises(Exception) as info:
                viewer.open(str(path), **kwargs)
            assert "MDFError" in full_text(info.value) and path.name in full_text(info.value)
        # File > Open and drag and drop both go through QtViewer._qt_open
        with pytest.raises(Exception) as info:
            viewer.window._qt_viewer._qt_open([str(path)], stack=False)
        assert "MDFError" in full_text(info.value) and path.name in full_text(info.value)
    assert len(viewer.layers) == 0


def full_text(exc: BaseException) -> str:
    """An error's message with its causes (napari wraps the plugin's error)."""
    parts = []
    while exc is not None:
        parts.append(f"{type(exc).__name__}: {exc}")
        exc = exc.__cause__ or getattr(exc, "original_error", None)
    return " | ".join(parts)


def test_event_loop_keeps_ticking_while_workers_run(make_napari_viewer, monkeypatch, qtbot):
    """The largest gap between 10 ms timer ticks while a simulation and an ADMM reconstruction
    run in their workers stays well below the old code's 2.5-2.8 s (the figures are printed).

    The 250 ms target itself is a speed target, checked by benchmarks/bench_gui_responsiveness.py
    (59-60 ms on a quiet 2-core machine); this test's bound leaves room for a shared, noisy
    machine while still failing when layers are built or progress floods the main thread again."""
    monkeypatch.delenv("NAPARI_MPI_SYNC", raising=False)
    viewer = make_napari_viewer(show=True)
    sim = SimulationWidget(viewer)
    viewer.window.add_dock_widget(sim)
    rec = ReconstructionWidget(viewer)
    viewer.window.add_dock_widget(rec)
    gaps = {}
    meter = TickGapMeter(10)
    for name, widget in (("simulation", sim), ("admm", rec)):
        if widget is rec:
            rec.method.value = "admm"
        qtbot.wait(500)  # docks laid out and painted before measuring
        meter.start()
        widget.start()
        assert run_until(lambda w=widget: w.state != "running", timeout=300)
        gaps[name] = meter.stop()
        assert widget.state == "done", widget.status.value
        assert run_until(lambda w=widget: not w.busy, timeout=60)
    print(f"largest tick gaps while the workers ran (s, {os.cpu_count()} cores): {gaps}")
    assert all(gap < 1.0 for gap in gaps.values()), gaps


def test_spectra_dock_plots_the_newest_measurement(make_napari_viewer):
    from napari_mpi._napari.spectra_widget import SpectraWidget

    viewer = make_napari_viewer()
    widget = SpectraWidget(viewer)
    assert "open or simulate a measurement" in widget.status.value
    *_, meas = viewer.open_sample("napari-mpi", "example-2d")
    assert widget.measurement.value is meas  # follows the newest measurement
    curves = widget.plot()
    spectra = meas.metadata["spectra"]
    assert set(curves) == {0, 1}
    np.testing.assert_allclose(curves[1], np.abs(spectra[0, 1]))
    ax = widget._canvas.figure.axes[0]
    assert ax.get_xlabel() == "frequency (kHz)" and len(ax.get_lines()) == 2
    assert ax.get_facecolor() != (1.0, 1.0, 1.0, 1.0)  # napari's (dark) theme, not white


def test_plots_follow_a_theme_switch(make_napari_viewer, sync):
    """The spectra plot and the Training widget's live plot take the new theme's colours when
    the user switches napari's theme after they were drawn."""
    from matplotlib.colors import to_hex

    from napari_mpi._napari._plot import theme_colors
    from napari_mpi._napari.spectra_widget import SpectraWidget
    from napari_mpi._napari.training_widget import TrainingWidget

    viewer = make_napari_viewer()
    spectra = SpectraWidget(viewer)
    viewer.open_sample("napari-mpi", "example-2d")
    spectra.plot()
    training = TrainingWidget(viewer)
    training.history = {"step": [1, 2], "loss": [1.0, 0.5], "val_step": [2], "val": [20.0]}
    training._draw()
    for theme in ("light", "dark"):
        viewer.theme = theme
        colors = theme_colors(viewer)
        for fig in (spectra._canvas.figure, training._canvas.figure):
            assert to_hex(fig.get_facecolor()) == colors["background"], theme
            ax = fig.axes[0]
            assert to_hex(ax.get_facecolor()) == colors["face"], theme
            assert to_hex(ax.xaxis.label.get_color()) == colors["text"], theme
