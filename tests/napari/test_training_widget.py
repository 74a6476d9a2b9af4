"""Training widget: trains in a worker with a live loss plot; cancel keeps the best checkpoint;
bad settings are reported without touching an existing model."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from napari_mpi._napari.layers import system_matrix_layer
from napari_mpi._napari.training_widget import TrainingWidget
from napari_mpi.recon import reconstruct
from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def small_sm():
    scanner = get_preset("preclinical-2d")
    return simulate_system_matrix(scanner, scanner_grid(scanner, (9, 9)))


@pytest.fixture
def widget(make_napari_viewer, small_sm):
    from napari.layers import Layer

    viewer = make_napari_viewer()
    viewer.add_layer(Layer.create(*system_matrix_layer(small_sm, "cal 9x9")))
    w = TrainingWidget(viewer)
    assert w.calibration.value.name == "cal 9x9"
    w.num_train.value, w.num_val.value, w.batch.value = 48, 8, 16
    return w


def shown(control) -> bool:
    """Not hidden by the widget (``visible`` also needs the dock itself on screen)."""
    return not control.native.isHidden()


@pytest.mark.parametrize("method", ["cascaded", "dernet"])
def test_training_writes_a_model_and_plots_losses(widget, small_sm, tmp_path, monkeypatch, method):
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    widget.method.value = method
    widget.epochs.value = 2
    widget.output.value = tmp_path / method
    widget.start()
    assert widget.state == "done", widget.status.value
    card = json.loads((tmp_path / method / "card.json").read_text())
    assert card["method"] == method and card["training"]["epochs_done"] >= 1
    h = widget.history
    assert len(h["loss"]) == 2 * 3 and len(h["val"]) == 2  # 48 pairs / 16 per step, 2 epochs
    assert all(np.isfinite(h["loss"])) and widget._canvas is not None
    lines = widget._canvas.figure.axes[0].get_lines()
    assert len(lines[0].get_xdata()) == 6
    u = np.ones((1, small_sm.num_rows), np.complex64)
    img = reconstruct(small_sm, u, method, model=str(tmp_path / method))
    assert img.data.shape == (1, 1, 9, 9)


def test_cancel_keeps_the_best_checkpoint(widget, qtbot, tmp_path):
    widget.method.value = "cascaded"
    widget.epochs.value = 500
    widget.output.value = tmp_path / "m"
    widget.start()
    assert widget.state == "running" and widget.worker is not None
    worker = widget.worker
    with qtbot.waitSignal(worker.finished, timeout=120000):
        qtbot.waitUntil(lambda: len(widget.history["val"]) >= 1, timeout=60000)
        widget.cancel()
    qtbot.waitUntil(lambda: widget.state == "cancelled" and widget.worker is None, timeout=5000)
    assert "best checkpoint" in widget.status.value
    card = json.loads((tmp_path / "m" / "card.json").read_text())
    assert 1 <= card["training"]["epochs_done"] < 500
    assert widget.run_button.enabled and not widget.cancel_button.enabled


def test_bad_settings_are_reported(widget, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    widget.start()  # no model folder chosen
    assert widget.state == "failed" and "model folder" in widget.status.value
    existing = tmp_path / "old"
    existing.mkdir()
    (existing / "card.json").write_text('{"keep": 1}')
    widget.output.value = existing
    widget.start()
    assert widget.state == "failed" and "holds a model" in widget.status.value
    assert (existing / "card.json").read_text() == '{"keep": 1}'
    widget.output.value = tmp_path / "new"
    widget.phantoms.value = tmp_path / "missing.npz"
    widget.start()
    assert widget.state == "failed" and "missing.npz" in widget.status.value
    assert widget.run_button.enabled and not (tmp_path / "new").exists()


def test_dernet_options_reach_the_card(widget, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    assert shown(widget.init) and shown(widget.snr_low) and not shown(widget.steps)
    widget.epochs.value = 1
    widget.lr.value = 4e-4
    widget.snr_low.value, widget.snr_high.value = 25.0, 35.0
    widget.fresh_phantoms.value = True
    assert widget.phantom_mix.value.startswith("digit=0.35 ")  # the default mix, as text
    widget.phantom_mix.value = "digit=1, tubes=0.5"
    widget.init.value = "ridge"
    widget.dropout.value = 0.0
    widget.output.value = tmp_path / "first"
    widget.start()
    assert widget.state == "done", widget.status.value
    card = json.loads((tmp_path / "first" / "card.json").read_text())
    assert card["training"]["lr"] == pytest.approx(4e-4) and card["training"]["init"] == "ridge"
    assert card["data"]["snr_db"] == [25.0, 35.0] and card["data"]["fresh_phantoms"] is True
    assert card["data"]["phantom_mix"] == {"digit": 1.0, "tubes": 0.5}
    assert card["architecture"]["dropout0"] == 0 and card["architecture"]["dropout1"] == 0
    # continuing a model shows its dropout rate and keeps its weights' layout
    widget.dropout.value = 0.3
    widget.init_from.value = tmp_path / "first"
    assert widget.dropout.value == 0
    widget.output.value = tmp_path / "more"
    widget.start()
    assert widget.state == "done", widget.status.value
    card = json.loads((tmp_path / "more" / "card.json").read_text())
    assert card["initialisation"]["kind"] == "from"
    assert card["initialisation"]["model"] == str(tmp_path / "first")


def test_bad_training_options_are_reported(widget, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    widget.output.value = tmp_path / "new"
    widget.snr_low.value, widget.snr_high.value = 35.0, 25.0
    widget.start()
    assert widget.state == "failed" and "training SNR" in widget.status.value
    widget.snr_low.value = 20.0
    (tmp_path / "empty").mkdir()
    widget.init_from.value = tmp_path / "empty"
    widget.start()
    assert widget.state == "failed" and "continue model" in widget.status.value
    widget.init_from.value = ""
    widget.phantom_mix.value = "tubes=1 spirals=2"
    widget.start()
    assert widget.state == "failed" and "unknown kind 'spirals'" in widget.status.value
    assert "phantom mix" in widget.status.value
    assert widget.run_button.enabled and not (tmp_path / "new").exists()
    widget.method.value = "ppmpi"
    assert not shown(widget.init) and not shown(widget.snr_low) and shown(widget.lr)


def test_denoiser_training_takes_the_learning_rate(widget, tmp_path, monkeypatch):
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    widget.method.value = "ppmpi"
    widget.steps.value, widget.batch.value, widget.lr.value = 4, 4, 2.5e-4
    widget.output.value = tmp_path / "denoiser"
    widget.start()
    assert widget.state == "done", widget.status.value
    card = json.loads((tmp_path / "denoiser" / "card.json").read_text())
    assert card["training"]["lr"] == pytest.approx(2.5e-4) and card["training"]["steps"] == 4


def test_methods_and_fields_come_from_the_registry(widget):
    from napari_mpi.nn.trainers import trainables

    assert list(widget.method.choices) == [t.name for t in trainables()]
    widget.method.value = "cascaded"
    assert widget.epochs.value == 20  # the cascaded network's library default (DERnet: 15)
    assert shown(widget.loss) and shown(widget.strategy) and not shown(widget.init)
    widget.method.value = "dernet"
    assert widget.epochs.value == 15 and widget.batch.value == 16  # the user's batch stays
    widget.method.value = "ppmpi"
    assert shown(widget.steps) and not shown(widget.epochs) and not shown(widget.calibration)
    assert shown(widget.phantom_mix)  # the denoiser's images come from the mix too
    widget.method.value = "cascaded"
    assert shown(widget.init_from) and shown(widget.phantom_mix)


def test_each_phase_has_its_own_progress_and_cancel_says_what_was_kept(widget, qtbot, tmp_path):
    phases, fractions = [], {}
    original = widget._on_progress

    def spy(step):
        phase = step.info.get("phase")
        if phase not in phases:
            phases.append(phase)
        fractions.setdefault(phase, []).append(widget.progress.value)
        original(step)

    widget._on_progress = spy
    widget.method.value = "cascaded"
    widget.num_train.value = 20000  # making the samples takes a while
    widget.output.value = tmp_path / "m"
    widget.start()
    worker = widget.worker
    with qtbot.waitSignal(worker.finished, timeout=120000):
        qtbot.waitUntil(lambda: "making samples" in widget.phase.value, timeout=60000)
        widget.cancel()
    qtbot.waitUntil(lambda: widget.worker is None, timeout=5000)
    assert widget.status.value == "cancelled: nothing written yet (no epoch had finished)"
    assert not (tmp_path / "m" / "card.json").exists()
    assert phases[0] == "making samples"
    assert fractions["making samples"][-1] < 100  # its own count, not the whole run's


def test_a_registered_method_appears_in_the_widget(make_napari_viewer, tmp_path, monkeypatch):
    import sys
    from pathlib import Path

    import napari_mpi.nn.trainers as trainers

    sys.path.insert(0, str(Path(__file__).parents[1] / "nn"))
    from toy_trainable import TOY, write_volumes

    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    trainers.trainables()
    monkeypatch.setitem(trainers._REGISTRY, TOY.name, TOY)
    w = TrainingWidget(make_napari_viewer())
    assert "toy3d" in list(w.method.choices)
    w.method.value = "toy3d"
    width = w.fields["width"][1][0]  # not w.width: that name is the container's own
    assert shown(w.volumes) and shown(width) and not shown(w.calibration) and width.value == 3
    assert not shown(w.phantoms) and w.epochs.value == 2  # the toy's default
    w.output.value = tmp_path / "toy"
    w.start()
    assert w.state == "failed" and "volumes: choose an .npz file" in w.status.value
    w.volumes.value = write_volumes(tmp_path / "v.npz")
    w.start()
    assert w.state == "done", w.status.value
    assert json.loads((tmp_path / "toy" / "card.json").read_text())["method"] == "toy3d"


def test_an_enhancement_network_trains_from_a_volume_file(widget, tmp_path, monkeypatch):
    """3D enhancement trainings share the widget: the volume file, the scan (degradation) and
    the list of widths are fields; the loss and the validation PSNR are plotted."""
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    rng = np.random.default_rng(0)
    vols = (rng.random((5, 20, 20, 20)) > 0.97).astype(np.uint8) * 255
    path = tmp_path / "vols.npz"
    np.savez(path, train_images=vols[:3], val_images=vols[3:], test_images=vols[3:])
    widget.method.value = "unet3d"
    assert shown(widget.volumes) and shown(widget.degradation) and shown(widget.widths)
    assert not shown(widget.calibration) and not shown(widget.phantoms)
    widget.volumes.value = path
    widget.degradation.value = "z_step=3e-3"
    widget.widths.value = "4 8"
    widget.epochs.value, widget.steps_per_epoch.value, widget.batch.value = 2, 2, 2
    loss = widget.fields["loss@csdnet"][1][0]  # its own choices, not the cascaded network's
    assert shown(loss) and not shown(widget.loss) and list(loss.choices) == ["smoothl1", "l1"]
    widget.output.value = tmp_path / "unet"
    widget.start()
    assert widget.state == "done", widget.status.value
    card = json.loads((tmp_path / "unet" / "card.json").read_text())
    assert card["method"] == "unet3d" and card["architecture"]["widths"] == [4, 8]
    assert card["data"]["train"]["degradation"]["z_step"] == pytest.approx(3e-3)
    assert len(widget.history["loss"]) == 4 and len(widget.history["val"]) == 2
    assert widget.val_key == "val_psnr" and all(np.isfinite(widget.history["val"]))
    widget.widths.value = "4 x"
    widget.output.value = tmp_path / "other"
    widget.start()
    assert "widths: expected whole numbers" in widget.status.value
    assert not (tmp_path / "other").exists()


def test_calibration_file_is_read_in_the_worker(make_napari_viewer, small_sm, tmp_path,
                                                monkeypatch):  # fmt: skip
    """Choosing a calibration file: pressing Train only checks that it exists; the file is read
    when the work runs (in the worker), never while napari's main thread handles the click."""
    import napari_mpi._napari.training_widget as tw
    from napari_mpi.io import write_calibration

    path = tmp_path / "cal.mdf"
    write_calibration(path, small_sm)
    reads = []
    real = tw.read_mdf

    def spy(p, *args, **kwargs):
        reads.append(str(p))
        return real(p, *args, **kwargs)

    monkeypatch.setattr(tw, "read_mdf", spy)
    w = TrainingWidget(make_napari_viewer())
    w.method.value = "cascaded"
    w.calibration.value = tw._FILE
    w.calibration_file.value = path
    w.num_train.value, w.num_val.value, w.batch.value, w.epochs.value = 16, 8, 16, 1
    w.output.value = tmp_path / "model"
    work = w.work()
    assert reads == []  # nothing read on the main thread
    gen = work()
    first = next(gen)
    assert first.info["phase"] == "reading calibration"
    for _ in gen:
        pass
    assert reads == [str(path)]
    assert (tmp_path / "model" / "card.json").is_file()
    w.calibration_file.value = tmp_path / "missing.mdf"
    w.output.value = tmp_path / "model2"
    with pytest.raises(ValueError, match=r"missing\.mdf does not exist"):
        w.work()


def test_live_plot_renders_off_the_main_thread(make_napari_viewer, monkeypatch, qtbot):
    """Outside synchronous mode the loss plot is rendered in its own thread and shown as a
    picture; the main thread only swaps the pixmap."""
    import threading

    monkeypatch.delenv("NAPARI_MPI_SYNC", raising=False)
    w = TrainingWidget(make_napari_viewer(show=True))
    threads = []
    w._canvas.submit(lambda fig: threads.append(threading.current_thread()))
    w.history = {"step": [1, 2, 3], "loss": [1.0, 0.6, 0.4], "val_step": [3], "val": [21.0]}
    w._draw()
    qtbot.waitUntil(lambda: w._canvas.renders >= 1 and not w._canvas.native.pixmap().isNull(),
                    timeout=20000)  # fmt: skip
    assert threads and threads[0] is not threading.main_thread()
    qtbot.waitUntil(lambda: w._lines is not None, timeout=20000)
    assert list(w._lines[0].get_ydata()) == [1.0, 0.6, 0.4]
    # a job that fails is reported and skipped; the render thread goes on with the next ones
    before = w._canvas.renders

    def broken(fig):
        raise RuntimeError("a broken plot job")

    w._canvas.submit(broken)
    w.history["loss"].append(0.3)
    w.history["step"].append(4)
    w._draw()
    qtbot.waitUntil(lambda: w._canvas.renders > before and len(w._lines[0].get_ydata()) == 4,
                    timeout=20000)  # fmt: skip


def test_opening_the_widget_warms_torch_and_freezes_loaded_objects(make_napari_viewer, monkeypatch):
    """The Training widget loads torch (and its optimiser machinery) ahead, then exempts the
    loaded objects from full garbage collections, whose 0.1-0.3 s pauses stalled napari."""
    import gc
    import sys

    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    TrainingWidget(make_napari_viewer())
    assert "torch" in sys.modules and "torch._dynamo" in sys.modules
    assert gc.get_freeze_count() > 0


def test_background_threads_are_lowered_once():
    """Worker and plot threads get the main thread's niceness + 5, however many workers a
    pooled thread runs (Linux; elsewhere nothing changes)."""
    import os
    import threading

    from napari_mpi._napari._workers import BACKGROUND_NICENESS, lower_thread_priority

    if not hasattr(os, "setpriority"):
        pytest.skip("no per-thread niceness on this platform")
    seen = []

    def body():
        for _ in range(3):  # as a pooled thread running three workers
            lower_thread_priority()
            seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    main = os.getpriority(os.PRIO_PROCESS, os.getpid())
    assert seen == [min(19, main + BACKGROUND_NICENESS)] * 3
    lower_thread_priority()  # the main thread itself is never lowered
    assert os.getpriority(os.PRIO_PROCESS, os.getpid()) == main


def test_dcgan_trains_in_the_widget_with_every_loss_term_plotted(widget, tmp_path, monkeypatch):
    """A GAN's several losses (generators, discriminators, GAN, contrastive, identity) are
    each recorded and drawn as a line of their own."""
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")
    widget.method.value = "dcgan"
    assert shown(widget.phantoms) and not shown(widget.calibration)

    def set_option(name, value):
        widget.fields[widget._keys["dcgan"][name]][1][0].value = value

    for name, value in (("train_images", 6), ("val_images", 2), ("epochs", 2),
                        ("steps_per_epoch", 2), ("batch", 2), ("crop", 32), ("width", 4),
                        ("blocks", 2), ("d_width", 8), ("y_iterations", 5), ("patches", 16),
                        ("head_width", 16)):  # fmt: skip
        set_option(name, value)
    widget.output.value = tmp_path / "dcgan"
    widget.start()
    assert widget.state == "done", widget.status.value
    card = json.loads((tmp_path / "dcgan" / "card.json").read_text())
    assert card["method"] == "dcgan" and card["architecture"]["width"] == 4
    terms = widget.history["terms"]
    assert set(terms) == {"loss_d", "loss_gan", "loss_con", "loss_idt"}
    assert all(len(v) == len(widget.history["loss"]) == 4 for v in terms.values())
    assert widget.val_key == "val_psnr" and len(widget.history["val"]) == 2
    from qtpy.QtWidgets import QApplication

    for _ in range(200):  # the plot is drawn in the canvas's render thread
        QApplication.processEvents()
        if widget._term_lines and len(widget._term_lines) == 4:
            break
        time.sleep(0.05)
    assert sorted(widget._term_lines) == sorted(terms)
    assert list(widget._term_lines["loss_d"].get_ydata()) == terms["loss_d"]


def test_a_method_shows_its_own_defaults_whatever_was_shown_before(make_napari_viewer):
    """Fields shared by name (steps per epoch, the SNR range, blocks) take the chosen
    method's defaults, not those left by the method that created or last used them; a value
    the user typed is kept while the methods share the field."""
    from napari_mpi.enhance.dcgan_config import DCGANConfig
    from napari_mpi.nn.trainers import options

    w = TrainingWidget(make_napari_viewer())

    def value(name):
        option = {o.name: o for o in options(DCGANConfig)}[name]
        widgets = w.fields[w._keys["dcgan"][name]][1]
        return tuple(x.value for x in widgets) if option.kind == "pair" else widgets[0].value

    for start in ("dernet", "rcan3d", "csdnet"):
        w.method.value = start
        w.method.value = "dcgan"
        defaults = DCGANConfig()
        for name in ("steps_per_epoch", "blocks", "snr_range", "epochs", "batch", "lr"):
            assert value(name) == pytest.approx(getattr(defaults, name)), (start, name)
    w.epochs.value = 7  # the user's own value survives a switch between methods sharing it
    w.method.value = "unet3d"
    assert w.epochs.value == 7


def test_diffusion_methods_show_their_own_fields_and_defaults(make_napari_viewer):
    """dccdm and ddpm3d: their diffusion fields with their defaults (shared ones such as
    steps per epoch and widths not left over from a CNN), the physics fields for dccdm only."""
    from napari_mpi.enhance.diffusion_config import DCCDMConfig, DDPM3DConfig
    from napari_mpi.nn.trainers import options

    w = TrainingWidget(make_napari_viewer())
    for method, config in (("dccdm", DCCDMConfig), ("ddpm3d", DDPM3DConfig)):
        w.method.value = "unet3d"
        w.method.value = method
        keys = w._keys[method]
        assert ("lambda_dc" in keys) == (method == "dccdm")
        kinds = {o.name: o.kind for o in options(config)}
        defaults = config()
        for name in ("steps_per_epoch", "epochs", "sample_steps", "prediction", "widths"):
            widgets = w.fields[keys[name]][1]
            got = (tuple(int(float(x)) for x in str(widgets[0].value).split())
                   if name == "widths" else widgets[0].value)  # fmt: skip
            want = getattr(defaults, name)
            assert got == (tuple(want) if name == "widths" else want), (method, name, kinds[name])


def test_every_float_default_survives_its_spin_box(make_napari_viewer):
    """A spin box keeps only as many decimals as its step: every method's float defaults
    (esrgan3d's adversarial weight 5e-3, the diffusion EMA 0.995, ...) read back unrounded."""
    from napari_mpi.nn.trainers import options

    w = TrainingWidget(make_napari_viewer())
    for name, entry in w._entries.items():
        w.method.value = name
        for option in options(entry.config):
            key = w._keys[name].get(option.name)
            if option.kind != "float" or key is None or not option.default:
                continue
            shown = w.fields[key][1][0].value
            assert shown == pytest.approx(option.default, rel=1e-9), (name, option.name, shown)


def test_the_dock_fits_a_laptop_screen_whatever_the_method(make_napari_viewer, qtbot):
    """The method's fields scroll inside the dock: for every method the docked widget needs
    less than a 1080-px screen's height, with the plot in view (without the scroll area,
    dccdm's 40 fields made the dock 1,500 px tall and the window taller than the screen);
    every field stays reachable inside the scroll area, and a short list does not scroll."""
    from napari_mpi._napari.training_widget import OPTIONS_MAX_HEIGHT

    viewer = make_napari_viewer(show=True)
    w = TrainingWidget(viewer)
    viewer.window.add_dock_widget(w, name="Training", area="right")
    scroll = w._options_scroll
    heights = {}
    for method in w.method.choices:
        w.method.value = method
        qtbot.wait(10)
        heights[method] = w.native.minimumSizeHint().height()
        shown_fields = [ws[0] for key, (_, ws) in w.fields.items() if shown(ws[0])]
        assert shown_fields, method
        for field in shown_fields:  # inside the scroll area, not beside it
            assert scroll.widget().isAncestorOf(field.native), (method, field.label)
        needed = w.method_options.native.sizeHint().height()
        assert scroll.maximumHeight() == min(needed, OPTIONS_MAX_HEIGHT), method
    assert max(heights.values()) < 900, heights
    assert w._canvas.native.isVisible()
    # the fields of the longest method do not fit OPTIONS_MAX_HEIGHT: they scroll
    w.method.value = "dccdm"
    qtbot.wait(10)
    assert scroll.verticalScrollBar().maximum() > 0
