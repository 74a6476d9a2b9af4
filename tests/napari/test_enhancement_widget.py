"""Enhancement widget: a 3D layer is enhanced in a worker and the result overlays it as a new
layer; Cancel adds nothing; every bad input gets one message and napari stays usable."""

from __future__ import annotations

import weakref

import numpy as np
import pytest

from napari_mpi import metrics
from napari_mpi._napari.enhancement_widget import (
    EnhancementWidget,
    enhance_names,
    layer_request,
    request_volume,
)
from napari_mpi._napari.layers import image_layer
from napari_mpi.enhance import Degradation
from napari_mpi.grid import Grid
from napari_mpi.progress import Progress
from napari_mpi.recon import registry
from napari_mpi.simulation.phantoms import vessel_phantom

pytestmark = pytest.mark.gui


@pytest.fixture(scope="module")
def volumes():
    """A 16^3 vessel phantom (1 mm voxels, off-centre) and its layered scan (30 dB)."""
    grid = Grid((16, 16, 16), (16e-3, 16e-3, 16e-3), (2e-3, -1e-3, 3e-3))
    phantom = vessel_phantom(grid, seed=1, radius=1.5e-3)
    return phantom, Degradation().apply(phantom, seed=0)


@pytest.fixture
def viewer(make_napari_viewer, volumes):
    from napari.layers import Layer

    v = make_napari_viewer()
    phantom, scan = volumes
    v.add_layer(Layer.create(*image_layer(phantom, "phantom", kind="phantom")))
    v.add_layer(Layer.create(*image_layer(scan, "scan", kind="xspace")))
    return v


@pytest.fixture
def sync(monkeypatch):
    monkeypatch.setenv("NAPARI_MPI_SYNC", "1")


@pytest.fixture
def notifications():
    from napari.utils.notifications import notification_manager

    seen: list[str] = []

    def record(notification):
        seen.append(str(notification.message))

    notification_manager.notification_ready.connect(record)
    yield seen
    notification_manager.notification_ready.disconnect(record)


def layer_volume(layer):
    """The MPIImage the widget would build from ``layer``."""
    return request_volume(layer_request(layer))


def test_deconvolutions_add_sharper_layers_over_the_input(viewer, volumes, sync):
    phantom, scan = volumes
    w = EnhancementWidget(viewer)
    assert list(w.method.choices) == enhance_names()
    assert {"richardson-lucy", "wiener"} <= set(enhance_names())
    scan_layer = viewer.layers["scan"]
    assert w.image.value is scan_layer  # the newest volume, not the phantom
    before = np.array(scan_layer.data)
    place = (tuple(scan_layer.scale), tuple(scan_layer.translate))
    w.method.value = "wiener"
    assert [p.name for p in w.params] == ["balance", "padding", "regulariser"]
    w.start()
    assert w.state == "done", w.status.value
    w.method.value = "richardson-lucy"
    assert [p.name for p in w.params] == ["iterations", "accelerate"]
    w.params["iterations"].value = 30
    w.start()
    assert w.state == "done", w.status.value
    assert "done: richardson-lucy of 'scan' (16 x 16 x 16 voxels)" in w.status.value

    psnr0, ssim0 = metrics.psnr(scan, phantom), metrics.ssim(scan, phantom)
    for name, gain in (("scan (wiener)", 0.2), ("scan (richardson-lucy)", 1.0)):
        layer = viewer.layers[name]
        assert layer.data.shape == scan_layer.data.shape == (16, 16, 16)
        for attr in ("scale", "translate"):
            np.testing.assert_allclose(getattr(layer, attr), getattr(scan_layer, attr))
            np.testing.assert_allclose(
                getattr(layer, attr), getattr(viewer.layers["phantom"], attr)
            )
        assert layer.metadata["kind"] == "enhancement" and layer.metadata["input_layer"] == "scan"
        assert layer.metadata["degradation"] == scan.metadata["degradation"]
        assert layer.contrast_limits[1] == pytest.approx(float(layer.data.max()), rel=1e-3)
        out = layer_volume(layer)
        assert metrics.psnr(out, phantom) > psnr0 + gain, name
        assert metrics.ssim(out, phantom) > ssim0, name
    rl = viewer.layers["scan (richardson-lucy)"]
    assert rl.metadata["params"] == {"iterations": 30, "accelerate": True}
    assert metrics.ssim(layer_volume(rl), phantom) > ssim0 + 0.1
    assert viewer.layers[-1] is rl and rl.visible  # the newest result is on top
    # the input is untouched, and a result does not become the next input
    np.testing.assert_array_equal(scan_layer.data, before)
    assert (tuple(scan_layer.scale), tuple(scan_layer.translate)) == place
    assert w.image.value is scan_layer and w.result.metadata["method"] == "richardson-lucy"
    console = {k: v for entry in viewer.window._qt_viewer.console_backlog for k, v in entry.items()}
    last = console["last_enhancement"]  # the backlog keeps weak references
    assert (last() if isinstance(last, weakref.ref) else last) is w.result

    # a layer from another reader (no MPIImage behind it): its own scale and translate
    plain = viewer.add_image(scan.data[0], name="volume", scale=(2.0, 0.5, 0.5),
                             translate=(-7.0, 1.0, 4.0))  # fmt: skip
    assert w.image.value is plain  # a new volume becomes the input
    w.method.value = "wiener"
    w.start()
    assert w.state == "done", w.status.value
    out = viewer.layers["volume (wiener)"]
    np.testing.assert_allclose(out.scale, [2.0, 0.5, 0.5])
    np.testing.assert_allclose(out.translate, [-7.0, 1.0, 4.0])
    np.testing.assert_allclose(w.result.voxel_size, [2e-3, 0.5e-3, 0.5e-3])
    np.testing.assert_allclose(w.result.center, [8e-3, 4.75e-3, 7.75e-3])
    assert not np.allclose(out.data, plain.data)


def test_cancel_stops_a_long_run_and_adds_nothing(viewer, qtbot):
    w = EnhancementWidget(viewer)
    w.method.value = "richardson-lucy"
    w.params["iterations"].value = 100000  # minutes of work
    count = len(viewer.layers)
    w.start()
    assert w.state == "running" and w.worker is not None
    assert not w.run_button.enabled and w.cancel_button.enabled
    worker = w.worker
    with qtbot.waitSignal(worker.finished, timeout=30000):
        qtbot.waitUntil(lambda: "iteration" in w.status.value, timeout=20000)
        w.cancel()
    qtbot.waitUntil(lambda: w.state == "cancelled" and w.worker is None, timeout=5000)
    qtbot.wait(100)
    assert len(viewer.layers) == count and w.status.value == "cancelled"
    assert w.run_button.enabled and not w.cancel_button.enabled


def test_bad_inputs_each_get_one_message(make_napari_viewer, volumes, sync, notifications):
    _, scan = volumes
    viewer = make_napari_viewer()
    w = EnhancementWidget(viewer)

    def refused(expected: str) -> None:
        count, seen = len(viewer.layers), len(notifications)
        w.start()
        assert w.state == "failed" and expected in w.status.value, w.status.value
        assert w.status.native.wordWrap()
        assert len(viewer.layers) == count  # nothing added
        assert w.run_button.enabled and not w.cancel_button.enabled
        assert len(notifications) == seen + 1 and expected in notifications[-1]

    refused("no image layer to enhance")
    labels = viewer.add_labels(np.zeros((8, 8, 8), np.int32), name="seg")
    viewer.add_shapes(name="roi")
    assert w.image.value is None  # neither is offered
    refused("'seg' is a Labels layer, 'roi' is a Shapes layer")
    with pytest.raises(ValueError, match="'seg' is a Labels layer, not an image"):
        layer_request(labels)
    viewer.add_image(np.ones((16, 16), np.float32), name="slice")
    w.image.value = viewer.layers["slice"]
    refused("'slice' is a 2D image (shape (16, 16)); this enhancement method takes a 3D volume")
    assert "(dcgan takes 2D images)" in w.status.value
    viewer.add_image(np.zeros((8, 8, 8), np.float32), name="blank")
    refused("'blank' holds no signal")
    holes = scan.data[0].copy()
    holes[3, 4, 5], holes[0, 0, 0] = np.nan, np.inf
    viewer.add_image(holes, name="holes")
    assert w.image.value.name == "holes"
    refused("'holes' has 2 NaN or infinite voxel(s)")
    viewer.add_image(np.array(scan.data[0]), name="ok")
    w.method.value = "wiener"
    w.params["balance"].value = "strong"
    refused("parameter 'balance' expects a number, got 'strong'")
    w.params["balance"].value = "1e-3"
    w.start()
    assert w.state == "done" and "ok (wiener)" in viewer.layers  # usable again
    # the registered learned methods: their fields, and an error of the method itself
    from magicgui.widgets import CheckBox, FileEdit, LineEdit, SpinBox

    from napari_mpi.enhance.learned import LEARNED_METHODS

    for name in LEARNED_METHODS:
        w.method.value = name
        assert [type(p) for p in w.params] == [FileEdit, LineEdit, SpinBox, CheckBox], name
    w.params["model"].value = "/no/such/model"
    refused("model folder /no/such/model does not exist")


def _toy_learned(image, model, device, overlap, allow_mismatch):
    yield Progress(0, 2, "toy: loading model")
    if not allow_mismatch:
        raise ValueError(
            f"toy-learned: model '{model}' was trained for 1 mm voxels and the papers' "
            "degradation; this image differs (voxel size 2 mm, z_step: 0.002 != 0.003); "
            "set allow_mismatch to proceed anyway"
        )
    yield Progress(1, 2, "toy: tiles")
    return image.data * 2.0


TOY = registry.Method(
    name="toy-learned", task="enhance", title="Toy learned method", kind="learned",
    description="doubles the image (a stand-in with the learned methods' parameters)",
    solve=_toy_learned, order=900,
    params=(
        registry.Param("model", str, "default", "model folder or 'default'"),
        registry.Param("device", str, "auto", "auto, cpu or cuda"),
        registry.Param("overlap", int, 4, "tile overlap (voxels)", 0, 64),
        registry.Param("allow_mismatch", bool, False,
                       "proceed when the image's voxel size or degradation differs"),
    ),
)  # fmt: skip


def test_learned_parameters_and_a_method_error(viewer, monkeypatch, qtbot, notifications, capfd,
                                               tmp_path):  # fmt: skip
    """A registered method with the learned methods' parameters gets its fields (a folder
    button for ``model``); its error inside the worker is one message, no traceback."""
    from magicgui.widgets import CheckBox, FileEdit, LineEdit, SpinBox

    registry.methods()
    monkeypatch.setitem(registry._REGISTRY, TOY.name, TOY)
    w = EnhancementWidget(viewer)
    assert "toy-learned" in list(w.method.choices)
    w.method.value = "toy-learned"
    kinds = {p.name: type(p) for p in w.params}
    assert kinds == {"model": FileEdit, "device": LineEdit, "overlap": SpinBox,
                     "allow_mismatch": CheckBox}  # fmt: skip
    assert w.params["model"].mode.value == "d" and str(w.params["model"].value) == "default"
    assert "doubles the image" in w.about.value
    assert w.param_values() == {"model": "default", "device": "auto", "overlap": 4,
                                "allow_mismatch": False}  # fmt: skip
    capfd.readouterr()
    count = len(viewer.layers)
    w.start()
    assert w.worker is not None
    qtbot.waitUntil(lambda: w.state != "running" and w.worker is None, timeout=20000)
    qtbot.wait(200)
    assert w.state == "failed" and "set allow_mismatch to proceed" in w.status.value
    assert w.status.value.endswith("(here: tick 'allow mismatch')")
    assert len([m for m in notifications if "allow_mismatch" in m]) == 1, notifications
    assert "Traceback" not in capfd.readouterr().err
    assert len(viewer.layers) == count and w.run_button.enabled

    w.params["allow_mismatch"].value = True
    w.params["model"].value = tmp_path
    assert w.param_values()["model"] == str(tmp_path)
    w.start()
    qtbot.waitUntil(lambda: w.state != "running" and w.worker is None, timeout=20000)
    qtbot.waitUntil(lambda: "scan (toy-learned)" in viewer.layers, timeout=5000)
    out = viewer.layers["scan (toy-learned)"]
    np.testing.assert_allclose(out.data, 2 * viewer.layers["scan"].data, rtol=1e-6)
    assert out.metadata["params"]["model"] == str(tmp_path)


def test_docked_from_the_plugin_menu_keeps_the_window_width(make_napari_viewer, volumes, sync,
                                                            qtbot):  # fmt: skip
    from napari.layers import Layer

    viewer = make_napari_viewer(show=True)
    for data in (image_layer(volumes[0], "phantom", kind="phantom"),
                 image_layer(volumes[1], "scan", kind="xspace")):  # fmt: skip
        viewer.add_layer(Layer.create(*data))
    _dock, w = viewer.window.add_plugin_dock_widget("napari-mpi", "Enhancement")
    assert isinstance(w, EnhancementWidget)
    window = viewer.window._qt_window
    window.resize(1200, 800)
    qtbot.wait(50)
    width, dock_width = window.width(), w.native.width()
    w.method.value = "wiener"
    w.start()
    assert w.state == "done", w.status.value
    w.params["balance"].value = "x" * 300
    w.start()
    assert w.state == "failed" and "x" * 300 in w.status.value
    qtbot.wait(100)
    assert window.width() == width and w.native.width() <= dock_width + 1
    shot = viewer.screenshot(canvas_only=False, flash=False)
    assert shot.shape[1] <= width + 2  # the window as the user sees it, no wider


@pytest.fixture(scope="module")
def dcgan_model(tmp_path_factory):
    from napari_mpi.cli import main

    out = tmp_path_factory.mktemp("dcgan") / "model"
    argv = ["train", "dcgan", "--train-images", "6", "--val-images", "2", "--epochs", "1",
            "--steps-per-epoch", "2", "--batch", "2", "--crop", "32", "--width", "4",
            "--blocks", "2", "--d-width", "8", "--y-iterations", "5", "--patches", "16",
            "--head-width", "16", "-o", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    return out


def test_dcgan_enhances_a_2d_layer_and_a_volume_slice_by_slice(
    make_napari_viewer, volumes, dcgan_model, sync, notifications
):
    viewer = make_napari_viewer()
    added = viewer.open_sample("napari-mpi", "xspace-tubes")
    assert [la.name for la in added] == ["two tubes (1.8 mm gap)", "x-space native (40 dB)"]
    w = EnhancementWidget(viewer)
    native = viewer.layers["x-space native (40 dB)"]
    assert w.image.value is native  # the 2D image, not the phantom
    w.method.value = "richardson-lucy"
    w.start()  # a 3D method refuses the 2D layer before any work, and says which one takes it
    assert w.state == "failed" and "(dcgan takes 2D images)" in w.status.value
    w.method.value = "dcgan"
    assert [p.name for p in w.params] == ["model", "device", "axis", "allow_mismatch"]
    w.params["model"].value = str(dcgan_model)
    w.start()
    assert w.state == "done", w.status.value
    result = viewer.layers["x-space native (40 dB) (dcgan)"]
    assert result.data.shape == native.data.shape == (101, 101)
    np.testing.assert_allclose(result.scale, native.scale)
    np.testing.assert_allclose(result.translate, native.translate)
    assert result.data.min() >= 0 and result.data.max() > 0
    # a volume needs an axis; given one, every slice is enhanced and the grid kept
    from napari.layers import Layer

    _, scan = volumes
    viewer.add_layer(Layer.create(*image_layer(scan, "scan", kind="xspace")))
    assert w.image.value.name == "scan"
    w.start()
    assert w.state == "failed" and "choose the axis" in w.status.value
    assert "scan (dcgan)" not in viewer.layers
    w.params["axis"].value = "z"
    w.params["allow_mismatch"].value = True  # 1 mm voxels, the model's are 0.198 mm
    w.start()
    assert w.state == "done", w.status.value
    out = viewer.layers["scan (dcgan)"]
    assert out.data.shape == scan.data.shape[1:]
    np.testing.assert_allclose(out.scale, viewer.layers["scan"].scale)


@pytest.fixture(scope="module")
def dccdm_model(volumes, tmp_path_factory):
    """A tiny dccdm trained on copies of the module's 16^3 scan (seconds)."""
    from napari_mpi.enhance.diffusion_config import DCCDMConfig
    from napari_mpi.enhance.diffusion_recipe import DiffusionRecipe
    from napari_mpi.nn.training import iter_train
    from napari_mpi.progress import run

    phantom, scan = volumes
    x = np.repeat(scan.data[:1], 4, axis=0)
    y = np.repeat(phantom.data[:1], 4, axis=0)
    config = DCCDMConfig(widths=(4, 8), time_dim=8, epochs=1, batch=2, steps_per_epoch=2,
                         sample_steps=2, val_sample_volumes=2, timesteps=50)  # fmt: skip
    out = tmp_path_factory.mktemp("dccdm") / "model"
    run(iter_train(DiffusionRecipe(config, (x, y), (x[:2], y[:2])), out))
    return out


def test_dccdm_samples_add_the_result_and_its_uncertainty_and_cancel_adds_nothing(
    viewer, dccdm_model, sync, qtbot, monkeypatch
):
    w = EnhancementWidget(viewer)
    w.method.value = "dccdm"
    assert [p.name for p in w.params] == ["model", "device", "samples", "steps", "eta", "seed",
                                          "overlap", "allow_mismatch"]  # fmt: skip
    w.params["model"].value = str(dccdm_model)
    w.params["samples"].value = 3
    w.params["steps"].value = 2
    assert w.image.value.name == "scan"
    w.start()
    assert w.state == "done", w.status.value
    assert "consistency residual" in w.status.value
    mean, spread = viewer.layers["scan (dccdm)"], viewer.layers["scan (dccdm) uncertainty"]
    for layer in (mean, spread):
        assert layer.data.shape == viewer.layers["scan"].data.shape
        np.testing.assert_allclose(layer.scale, viewer.layers["scan"].scale)
        np.testing.assert_allclose(layer.translate, viewer.layers["scan"].translate)
    assert spread.colormap.name == "magma" and spread.data.max() > 0
    assert spread.metadata["kind"] == "uncertainty"
    # neither output is taken as the next input
    assert w.image.value.name == "scan"
    # a cancelled sampling adds nothing
    monkeypatch.delenv("NAPARI_MPI_SYNC")
    big = np.pad(viewer.layers["scan"].data, 16, mode="reflect")
    viewer.add_image(big, name="big", scale=viewer.layers["scan"].scale)
    w.image.value = viewer.layers["big"]
    w.params["samples"].value = 64
    w.params["steps"].value = 50
    count = len(viewer.layers)
    w.start()
    worker = w.worker
    with qtbot.waitSignal(worker.finished, timeout=60000):
        qtbot.waitUntil(lambda: "DDIM step" in w.status.value, timeout=30000)
        w.cancel()
    qtbot.waitUntil(lambda: w.state == "cancelled" and w.worker is None, timeout=5000)
    qtbot.wait(100)
    assert len(viewer.layers) == count and w.status.value == "cancelled"
