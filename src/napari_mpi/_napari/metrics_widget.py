"""The Metrics dock widget: PSNR / SSIM / NRMSE / RMSE of image layers against a reference,
and line profiles (drawn with a Shapes layer) with the FWHM of every peak and the
peak-to-valley ratio."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, PushButton, Select, Table

from .. import metrics
from ..image import MPIImage
from ..profiles import clip_segment, find_peaks, peak_to_valley
from . import view
from ._messages import status_label
from ._plot import ThemedPlotMixin, dock_canvas, style_axes, style_legend
from .writer import image_from_layer_data, refusal

if TYPE_CHECKING:
    import napari

_COLUMNS = ("layer", "PSNR (dB)", "SSIM", "NRMSE", "RMSE")


def layer_image(layer) -> MPIImage:
    """The MPIImage behind an image layer (its own, or built from data, scale and translate)."""
    img = layer.metadata.get("mpi_image")
    if isinstance(img, MPIImage):
        return img
    return image_from_layer_data(layer.data, layer.as_layer_data_tuple()[1])


def _spatial_ndim(image: MPIImage) -> int:
    return int(sum(n > 1 for n in image.grid_shape)) or 1


def _fov_box_mm(image: MPIImage) -> tuple[np.ndarray, np.ndarray]:
    """Lower and upper edges (mm, z y x) of an image's field of view."""
    center, fov = np.asarray(image.center) * 1e3, np.asarray(image.fov) * 1e3
    return center - fov / 2, center + fov / 2


def skip_reason(layer, reference: MPIImage) -> str | None:
    """Why ``layer`` cannot be compared with ``reference`` (None when it can)."""
    reason = refusal(layer.as_layer_data_tuple()[1])
    if reason is not None:
        return reason
    try:
        image = layer_image(layer)
    except ValueError as exc:
        return str(exc)
    if _spatial_ndim(image) != _spatial_ndim(reference):
        return (
            f"it is {_spatial_ndim(image)}-D in space, the reference is "
            f"{_spatial_ndim(reference)}-D: not on the reference's grid"
        )
    lo, hi = _fov_box_mm(image)
    rlo, rhi = _fov_box_mm(reference)
    active = np.asarray(reference.grid_shape) > 1
    overlap = np.minimum(hi, rhi) - np.maximum(lo, rlo)
    if np.any(overlap[active] <= 0):
        return "its field of view does not overlap the reference's"
    return None


def _widths_text(widths: list[float]) -> str:
    """'1.93, 2.10 mm'; a peak not resolved at half maximum shows as 'n/a'."""
    if not widths:
        return "no peak"
    text = ", ".join(f"{w:.2f}" if np.isfinite(w) else "n/a" for w in widths)
    return text + (" mm" if any(np.isfinite(w) for w in widths) else " (not resolved)")


class MetricsWidget(ThemedPlotMixin, Container):
    """Compare image layers with a reference layer; plot line profiles with their FWHMs."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.reference = ComboBox(label="reference", choices=self._images)
        self.images = Select(label="images", choices=self._images)
        self.compute_button = PushButton(text="Compare")
        self.table = Table(value={c: [] for c in _COLUMNS})
        self.shapes = ComboBox(label="profile line", choices=self._shapes)
        self.profile_button = PushButton(text="Plot profile")
        self.status = status_label("")
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
        self.skipped: dict[str, str] = {}
        self.profiles: dict[str, dict] = {}
        view.install(viewer)
        self._follow_theme()

    def _images(self, _widget=None) -> list:
        from napari.layers import Image

        return [la for la in self.viewer.layers if isinstance(la, Image)]

    def _shapes(self, _widget=None) -> list:
        from napari.layers import Shapes

        return [la for la in self.viewer.layers if isinstance(la, Shapes)]

    # -- metrics ------------------------------------------------------------------------------
    def compute(self) -> dict:
        """Fill the table; returns {layer name: metrics}. Skipped layers say why."""
        ref_layer = self.reference.value
        if ref_layer is None:
            self.status.value = "choose a reference layer"
            return {}
        reason = skip_reason(ref_layer, MPIImage(np.zeros((1, 1, 1, 1)), (1, 1, 1), (0, 0, 0)))
        if reason is not None and "D in space" not in reason and "overlap" not in reason:
            self.status.value = f"reference '{ref_layer.name}' cannot be used: {reason}"
            return {}
        reference = layer_image(ref_layer)
        self.results, self.skipped = {}, {}
        for layer in self.images.value:
            if layer is ref_layer:
                continue
            why = skip_reason(layer, reference)
            if why is None:
                try:
                    self.results[layer.name] = metrics.compare(layer_image(layer), reference)
                except ValueError as exc:
                    why = str(exc)
            if why is not None:
                self.skipped[layer.name] = why
        rows = list(self.results.items())
        self.table.value = {
            "layer": [name for name, _ in rows],
            "PSNR (dB)": [round(r["psnr"], 2) for _, r in rows],
            "SSIM": [round(r["ssim"], 4) for _, r in rows],
            "NRMSE": [round(r["nrmse"], 4) for _, r in rows],
            "RMSE": [float(f"{r['rmse']:.4g}") for _, r in rows],
        }
        self._fit_table(len(rows))
        parts = []
        if rows:
            parts.append(f"compared {len(rows)} layer(s) with '{ref_layer.name}'")
        elif not self.skipped:
            parts.append("select the image layers to compare")
        parts += [f"skipped '{name}': {why}" for name, why in self.skipped.items()]
        self.status.value = "; ".join(parts)
        view.publish(self.viewer, last_metrics=dict(self.results))
        return self.results

    def _fit_table(self, rows: int) -> None:
        """Make the table tall enough to show every row (no inner scrolling for a few rows)."""
        native = self.table.native
        native.resizeColumnsToContents()
        header = native.horizontalHeader().height()
        row_height = native.verticalHeader().defaultSectionSize()
        shown = max(1, min(rows, 12))
        native.setMinimumHeight(header + shown * row_height + 2 * native.frameWidth() + 4)

    # -- profiles -----------------------------------------------------------------------------
    def _line_mm(self) -> tuple[np.ndarray, np.ndarray]:
        """The last drawn line's end points in world coordinates (mm, trailing (y, x))."""
        layer = self.shapes.value
        if layer is None or len(layer.data) == 0:
            raise ValueError("draw a line in a Shapes layer first (the line tool)")
        kind = layer.shape_type[-1]
        if kind != "line":
            raise ValueError(
                f"the last shape in '{layer.name}' is a {kind}, not a line: draw a line "
                "(Shapes layer, line tool) for a profile"
            )
        pts = np.asarray(layer.data[-1], dtype=np.float64)
        world = np.array([layer.data_to_world(p) for p in pts[[0, -1]]])
        return world[0][-2:], world[1][-2:]

    def plot_profile(self) -> dict:
        """Profiles of the selected images (and the reference) along the last drawn line.

        Returns {layer name: {"distance_mm", "values", "peaks", "fwhm_mm", "peak_to_valley"}};
        the line is clipped to the reference's field of view (a line outside it is refused).
        """
        try:
            start, end = self._line_mm()
        except ValueError as exc:
            self.status.value = str(exc)
            return {}
        layers = list(self.images.value)
        ref = self.reference.value
        if ref is not None and ref not in layers:
            layers.insert(0, ref)
        layers = [la for la in layers if refusal(la.as_layer_data_tuple()[1]) is None]
        if not layers:
            self.status.value = "choose a reference or image layers to profile"
            return {}
        box_image = layer_image(layers[0])
        lo, hi = _fov_box_mm(box_image)
        clipped = clip_segment(start, end, lo[-2:], hi[-2:])
        if clipped is None:
            self.status.value = (
                f"the line lies outside the field of view of '{layers[0].name}' "
                f"(y {lo[-2]:.1f} to {hi[-2]:.1f} mm, x {lo[-1]:.1f} to {hi[-1]:.1f} mm)"
            )
            return {}
        t0, t1 = clipped
        a, b = start + t0 * (end - start), start + t1 * (end - start)
        self.profiles = {}
        for layer in layers:
            img = layer_image(layer)
            dist, values = metrics.line_profile(img, a * 1e-3, b * 1e-3)
            dist_mm = dist * 1e3
            spacing = dist_mm[1] - dist_mm[0] if dist_mm.size > 1 else 1.0
            peaks = find_peaks(values, spacing) if values.size >= 3 else []
            self.profiles[layer.name] = {
                "distance_mm": dist_mm,
                "values": values,
                "peaks": peaks,
                "fwhm_mm": [p.fwhm for p in peaks],
                "peak_to_valley": peak_to_valley(values, peaks),
            }
        self._draw()
        texts = []
        for name, prof in self.profiles.items():
            widths = _widths_text(prof["fwhm_mm"])
            ratio = prof["peak_to_valley"]
            pv = f"; peak/valley {ratio:.2f}" if np.isfinite(ratio) else ""
            pv = "; peak/valley inf (valley 0)" if ratio == np.inf else pv
            texts.append(f"{name}: FWHM {widths}{pv}")
        note = " (line clipped to the field of view)" if (t0 > 0 or t1 < 1) else ""
        self.status.value = "; ".join(texts) + note
        view.publish(self.viewer, last_profiles=self.profiles)
        return self.profiles

    def _draw(self) -> None:
        self._canvas = dock_canvas(self, self._canvas)
        fig = self._canvas.figure
        fig.clear()
        ax = fig.add_subplot(111)
        colors = style_axes(fig, [ax], self.viewer)
        for name, prof in self.profiles.items():
            widths = _widths_text(prof["fwhm_mm"])
            (line,) = ax.plot(prof["distance_mm"], prof["values"], label=f"{name} ({widths})")
            for peak in prof["peaks"]:
                if np.isfinite(peak.fwhm):
                    x = prof["distance_mm"][0] + peak.position
                    ax.hlines(peak.height / 2, x - peak.fwhm / 2, x + peak.fwhm / 2,
                              color=line.get_color(), lw=0.8, ls=":")  # fmt: skip
        ax.set_xlabel("distance along line (mm)")
        ax.set_ylabel("value")
        style_legend(ax.legend(fontsize="small"), colors)
        self._canvas.draw_idle()
