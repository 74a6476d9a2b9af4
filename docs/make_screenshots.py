"""Take the screenshots the README and docs/napari.md show (run under Xvfb).

    xvfb-run -a -s "-screen 0 1600x1000x24" python docs/make_screenshots.py [--out docs/images]

Each picture is the whole napari window (canvas, layer list, the plugin's dock), downscaled
to about 1000 px wide and saved as an optimised palette PNG. Scenes: the ``example-2d`` sample;
a simulation; three reconstructions side by side with the phantom; the metrics table with a
line profile through two points; a short training with its live plot; the ``example-3d``
layered scan enhanced (``--only enhancement`` makes that picture alone); DC_GAN on the
``xspace-tubes`` sample with a profile across the tubes (``--only deblurring``).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTH = 1000
WINDOW = (1440, 900)


def settle(seconds: float = 0.6) -> None:
    """Let Qt lay out and paint."""
    from napari_mpi._napari._timing import run_until

    end = time.perf_counter() + seconds
    run_until(lambda: time.perf_counter() > end)


def save(viewer, path: Path) -> None:
    """Screenshot the whole window, downscale to WIDTH px and write an optimised PNG."""
    from PIL import Image

    settle()
    shot = viewer.screenshot(canvas_only=False, flash=False)
    img = Image.fromarray(np.asarray(shot)[..., :3])
    if img.width > WIDTH:
        img = img.resize((WIDTH, round(img.height * WIDTH / img.width)), Image.LANCZOS)
    img = img.quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(path, optimize=True)
    print(f"{path}: {img.width} x {img.height}, {path.stat().st_size / 1024:.0f} KiB")


def new_viewer():
    import napari

    viewer = napari.Viewer(show=True)
    viewer.window._qt_window.resize(*WINDOW)
    return viewer


def simulate(viewer, dock: bool = True):
    from napari_mpi._napari.simulation_widget import SimulationWidget

    sim = SimulationWidget(viewer)
    if dock:
        viewer.window.add_dock_widget(sim, name="Simulation")
    sim.nx.value = sim.ny.value = 19
    sim.phantom_kind.value = "two points"
    sim.start()
    assert sim.state == "done", sim.status.value
    return sim


def enhancement(out: Path) -> None:
    """The example-3d layered scan enhanced by Richardson-Lucy (the widget's defaults), seen
    from the side (z down, x across, maximum through y) above its phantom and scan."""
    from napari_mpi._napari.enhancement_widget import EnhancementWidget

    viewer = new_viewer()
    viewer.open_sample("napari-mpi", "example-3d")
    enh = EnhancementWidget(viewer)
    viewer.window.add_dock_widget(enh, name="Enhancement")
    enh.method.value = "richardson-lucy"
    enh.start()
    assert enh.state == "done", enh.status.value
    # a montage for the picture: each layer moved down by its height and a gap, a maximum
    # projection through the whole y extent, its name above it
    order = ["vessel phantom", "layered scan", "layered scan (richardson-lucy)"]
    titles = ["phantom", "layered scan (z blurred)", "Richardson-Lucy"]
    viewer.dims.order = (1, 0, 2)  # slice y: the canvas shows z down and x across
    first = viewer.layers[order[0]]
    thickness = list(viewer.dims.thickness)
    thickness[1] = float(first.scale[1] * first.data.shape[1]) + 1.0
    viewer.dims.thickness = tuple(thickness)
    labels = []
    for k, name in enumerate(order):
        layer = viewer.layers[name]
        layer.projection_mode = "max"
        height = layer.scale[0] * layer.data.shape[0]
        layer.translate = np.array(layer.translate) + np.array([k * (height + 4.0), 0.0, 0.0])
        centre_x = layer.translate[2] + layer.scale[2] * (layer.data.shape[2] - 1) / 2
        labels.append([layer.translate[0] - 1.6, 0.0, centre_x])
    viewer.add_points(np.array(labels), size=0, name="names", features={"name": titles},
                      text={"string": "{name}", "color": "white", "size": 12})  # fmt: skip
    viewer.layers.selection.active = viewer.layers[order[-1]]
    viewer.reset_view()
    save(viewer, out / "enhancement.png")
    viewer.close()


def deblurring(out: Path, model: str = "default") -> None:
    """DC_GAN on the ``xspace-tubes`` sample: the native image, DC_GAN's result and the
    phantom side by side, and the Metrics widget's profile across the two tubes."""
    from napari_mpi._napari.enhancement_widget import EnhancementWidget
    from napari_mpi._napari.metrics_widget import MetricsWidget

    viewer = new_viewer()
    viewer.window._qt_window.resize(WINDOW[0], WINDOW[1] + 250)  # two docks, one above the other
    viewer.open_sample("napari-mpi", "xspace-tubes")
    enh = EnhancementWidget(viewer)
    viewer.window.add_dock_widget(enh, name="Enhancement")
    enh.method.value = "dcgan"
    if model != "default":
        enh.params["model"].value = model
    enh.start()
    assert enh.state == "done", enh.status.value
    phantom = viewer.layers["two tubes (1.8 mm gap)"]
    metrics = MetricsWidget(viewer)
    viewer.window.add_dock_widget(metrics, name="Metrics")
    metrics.reference.value = phantom
    metrics.images.value = [la for la in viewer.layers if la is not phantom]
    metrics.compute()
    viewer.add_shapes([np.array([[0.0, -8.0], [0.0, 8.0]])], shape_type="line",
                      edge_color="cyan", edge_width=0.2, name="profile")  # fmt: skip
    metrics.shapes.reset_choices()
    metrics.shapes.value = viewer.layers["profile"]
    metrics.plot_profile()
    # a montage: native | DC_GAN | phantom, each shifted along x by one FOV and a gap
    order = ["x-space native (40 dB)", "x-space native (40 dB) (dcgan)", "two tubes (1.8 mm gap)"]
    titles = ["native (true PSF, 40 dB)", "DC_GAN", "phantom"]
    labels = []
    for k, name in enumerate(order):
        layer = viewer.layers[name]
        width = layer.scale[-1] * layer.data.shape[-1]
        layer.translate = np.array(layer.translate) + np.array([0.0, k * (width + 2.0)])
        labels.append([layer.translate[-2] - 1.2, layer.translate[-1] + width / 2])
    viewer.add_points(np.array(labels), size=0, name="names", features={"name": titles},
                      text={"string": "{name}", "color": "white", "size": 12})  # fmt: skip
    viewer.layers.selection.active = viewer.layers[order[1]]
    settle()
    viewer.reset_view()
    save(viewer, out / "deblurring.png")
    viewer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=str(Path(__file__).parent / "images"))
    parser.add_argument("--skip-training", action="store_true")
    parser.add_argument("--only", choices=["enhancement", "deblurring"],
                        help="make this picture alone")
    parser.add_argument("--dcgan-model", default="default", help="DC_GAN model folder")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    os.environ["NAPARI_MPI_SYNC"] = "1"  # deterministic: every result is in before the shot
    if args.only == "enhancement":
        enhancement(out)
        return
    if args.only == "deblurring":
        deblurring(out, args.dcgan_model)
        return

    from napari_mpi._napari.metrics_widget import MetricsWidget
    from napari_mpi._napari.reconstruction_widget import ReconstructionWidget
    from napari_mpi._napari.spectra_widget import SpectraWidget

    # 1. the example-2d sample, with its measurement's spectra in the Spectra dock
    viewer = new_viewer()
    viewer.open_sample("napari-mpi", "example-2d")
    viewer.layers.selection.active = viewer.layers["phantom"]
    viewer.window.add_dock_widget(SpectraWidget(viewer), name="Spectra")
    viewer.reset_view()
    save(viewer, out / "sample_example_2d.png")
    viewer.close()

    # 2. a simulation (two points at 30 dB): the phantom above its calibration
    viewer = new_viewer()
    simulate(viewer)
    viewer.reset_view()
    save(viewer, out / "simulation.png")
    viewer.close()

    # 3. reconstructions side by side with the phantom (grid view)
    viewer = new_viewer()
    simulate(viewer, dock=False)
    rec = ReconstructionWidget(viewer)
    rec.snr_threshold.value = 30  # the values the tests use; defaults are the registry's
    for method, params in (("kaczmarz", {"lam": "0.1", "sweeps": 10}), ("admm", {}),
                           ("pinv", {})):  # fmt: skip
        rec.method.value = method
        for name, value in params.items():
            rec.params[name].value = value
        rec.start()
        assert rec.state == "done", rec.status.value
    for layer in list(viewer.layers):
        if layer.metadata.get("kind") not in ("phantom", "reconstruction"):
            viewer.layers.remove(layer)
    # a montage: each layer shifted along x by one FOV and a gap, its name above it
    order = ["phantom", "kaczmarz", "admm", "pinv"]
    shifts, labels = {}, []
    for k, name in enumerate(order):
        layer = viewer.layers[name]
        shifts[name] = np.array(layer.translate, float)
        step = k * (layer.scale[-1] * layer.data.shape[-1] + 3.0)
        layer.translate = shifts[name] + np.array([0.0, step])
        top = layer.translate[-2] - layer.scale[-2]
        labels.append([top - 1.5, layer.translate[-1] + layer.scale[-1] * layer.data.shape[-1] / 2])
    names = viewer.add_points(np.array(labels), size=0, name="names",
                              features={"name": order},
                              text={"string": "{name}", "color": "white", "size": 14})  # fmt: skip
    viewer.reset_view()
    save(viewer, out / "reconstructions.png")
    viewer.layers.remove(names)
    for name, translate in shifts.items():
        viewer.layers[name].translate = translate

    # 4. the metrics table and a profile through both points
    viewer.grid.enabled = False
    metrics = MetricsWidget(viewer)
    viewer.window.add_dock_widget(metrics, name="Metrics")
    phantom = viewer.layers["phantom"]
    metrics.reference.value = phantom
    metrics.images.value = [la for la in viewer.layers if la is not phantom]
    metrics.compute()
    row = float(phantom.translate[0] + (phantom.data.shape[0] // 2) * phantom.scale[0])
    viewer.add_shapes([np.array([[row, -11.0], [row, 11.0]])], shape_type="line",
                      edge_color="cyan", edge_width=0.3, name="profile")  # fmt: skip
    metrics.shapes.reset_choices()
    metrics.shapes.value = viewer.layers["profile"]
    metrics.plot_profile()
    for layer in viewer.layers:
        layer.visible = layer.name in ("admm", "profile")
    viewer.reset_view()
    save(viewer, out / "metrics_profile.png")
    viewer.close()

    # 5. a short training with its live plot
    if not args.skip_training:
        from napari_mpi._napari.training_widget import TrainingWidget

        viewer = new_viewer()
        # the Training dock holds more fields than the other docks: a taller window shows its
        # plot whole instead of scrolled below the fold
        viewer.window._qt_window.resize(WINDOW[0], WINDOW[1] + 120)
        simulate(viewer, dock=False)
        train = TrainingWidget(viewer)
        viewer.window.add_dock_widget(train, name="Training")
        train.method.value = "cascaded"
        train.epochs.value, train.num_train.value, train.num_val.value = 6, 96, 16
        train.batch.value = 16
        with tempfile.TemporaryDirectory() as tmp:
            train.output.value = os.path.join(tmp, "model")
            train.start()
            assert train.state == "done", train.status.value
            viewer.reset_view()
            save(viewer, out / "training.png")
        viewer.close()

    # 6. the example-3d layered scan enhanced, seen from the side
    enhancement(out)


if __name__ == "__main__":
    main()
