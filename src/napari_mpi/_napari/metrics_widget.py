"""The Metrics dock widget: PSNR / SSIM / NRMSE / RMSE of image layers against a reference,
and line profiles (drawn with a Shapes layer) with their FWHM."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, Label, PushButton, Select, Table

from .. import metrics
from ..image import MPIImage
from ._plot import dock_canvas
from .writer import image_from_layer_data

if TYPE_CHECKING:
    import napari


def layer_image(layer) -> MPIImage:
    """The MPIImage behind an image layer (its own, or built from data, scale and translate)."""
    img = layer.metadata.get("mpi_image")
    if isinstance(img, MPIImage):
        return img
    return image_from_layer_data(layer.data, layer.as_layer_data_tuple()[1])


class MetricsWidget(Container):
    """Compare image layers with a reference layer; plot line profiles with FWHM."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.reference = ComboBox(label="reference", choices=self._images)
        self.images = Select(label="images", choices=self._images)
        self.compute_button = PushButton(text="Compare")
        self.table = Table(
            value={"layer": [], "PSNR (dB)": [], "SSIM": [], "NRMSE": [], "RMSE": []}
        )
        self.shapes = ComboBox(label="profile line", choices=self._shapes)
        self.profile_button = PushButton(text="Plot profile")
        self.status = Label(label="status", value="")
        self._canvas = None
        self.extend(
            [
                self.reference, self.images, self.compute_button, self.table, self.shapes,
                self.profile_button, self.status,
            ]
        )  # fmt: skip
        self.compute_button.clicked.connect(self.compute)
        self.profile_button.clicked.connect(self.plot_profile)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(lambda _: self.reset_choices())
        self.results: dict[str, dict] = {}
        self.profiles: dict[str, tuple[np.ndarray, np.ndarray, float]] = {}

    def _images(self, _widget=None) -> list:
        from napari.layers import Image

        return [la for la in self.viewer.layers if isinstance(la, Image)]

    def _shapes(self, _widget=None) -> list:
        from napari.layers import Shapes

        return [la for la in self.viewer.layers if isinstance(la, Shapes)]

    def compute(self) -> dict:
        """Fill the table; returns {layer name: metrics}."""
        ref_layer = self.reference.value
        if ref_layer is None:
            self.status.value = "choose a reference layer"
            return {}
        reference = layer_image(ref_layer)
        self.results = {}
        for layer in self.images.value:
            if layer is ref_layer:
                continue
            try:
                self.results[layer.name] = metrics.compare(layer_image(layer), reference)
            except ValueError as exc:
                self.status.value = f"{layer.name}: {exc}"
        rows = list(self.results.items())
        self.table.value = {
            "layer": [name for name, _ in rows],
            "PSNR (dB)": [round(r["psnr"], 2) for _, r in rows],
            "SSIM": [round(r["ssim"], 4) for _, r in rows],
            "NRMSE": [round(r["nrmse"], 4) for _, r in rows],
            "RMSE": [float(f"{r['rmse']:.4g}") for _, r in rows],
        }
        if rows:
            self.status.value = f"compared {len(rows)} layer(s) with '{ref_layer.name}'"
        return self.results

    def _line_mm(self) -> tuple[np.ndarray, np.ndarray]:
        layer = self.shapes.value
        if layer is None or len(layer.data) == 0:
            raise ValueError("draw a line in a Shapes layer first")
        pts = np.asarray(layer.data[-1], dtype=np.float64)
        world = np.array([layer.data_to_world(p) for p in pts[[0, -1]]])
        return world[0][-2:], world[1][-2:]  # (y, x) in mm

    def plot_profile(self) -> dict:
        """Profiles of the selected images (and the reference) along the last drawn line."""
        try:
            start, end = self._line_mm()
        except ValueError as exc:
            self.status.value = str(exc)
            return {}
        layers = list(self.images.value)
        if self.reference.value is not None and self.reference.value not in layers:
            layers.insert(0, self.reference.value)
        self.profiles = {}
        for layer in layers:
            img = layer_image(layer)
            dist, values = metrics.line_profile(img, start * 1e-3, end * 1e-3)
            width = metrics.fwhm(values, dist[1] - dist[0]) if values.max() > 0 else float("nan")
            self.profiles[layer.name] = (dist * 1e3, values, width * 1e3)
        self._draw()
        text = ", ".join(f"{n}: FWHM {w:.2f} mm" for n, (_, _, w) in self.profiles.items())
        self.status.value = text
        return self.profiles

    def _draw(self) -> None:
        self._canvas = dock_canvas(self, self._canvas)
        fig = self._canvas.figure
        fig.clear()
        ax = fig.add_subplot(111)
        for name, (dist, values, width) in self.profiles.items():
            ax.plot(dist, values, label=f"{name} (FWHM {width:.2f} mm)")
        ax.set_xlabel("distance along line (mm)")
        ax.set_ylabel("value")
        ax.legend(fontsize="small")
        self._canvas.draw_idle()
