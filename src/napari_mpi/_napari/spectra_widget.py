"""The Spectra dock widget: a measurement's spectra (magnitude against frequency, one line per
receive channel) as a plot, so they never share the viewer's mm world with the images."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import ComboBox, Container, SpinBox

from . import view
from ._messages import status_label
from ._plot import ThemedPlotMixin, dock_canvas, style_axes, style_legend

if TYPE_CHECKING:
    import napari


class SpectraWidget(ThemedPlotMixin, Container):
    """Plot |spectrum| (log scale) against frequency (kHz) of a measurement layer's frame."""

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.measurement = ComboBox(label="measurement", choices=self._measurements)
        self.frame = SpinBox(label="frame", value=0, min=0, max=0)
        self.status = status_label("")
        self.extend([self.measurement, self.frame, self.status])
        self._canvas = None
        self.measurement.changed.connect(self.plot)
        self.frame.changed.connect(self.plot)
        viewer.layers.events.inserted.connect(self._follow_layers)
        viewer.layers.events.removed.connect(lambda _: self.measurement.reset_choices())
        view.install(viewer)
        self._follow_theme()
        self.plot()

    def _measurements(self, _widget=None) -> list:
        return [la for la in self.viewer.layers if "spectra" in la.metadata]

    def _follow_layers(self, event=None) -> None:
        self.measurement.reset_choices()
        new = getattr(event, "value", None)
        if new is not None and new in self.measurement.choices:
            self.measurement.value = new  # the newest measurement is the one shown

    def plot(self, _=None) -> dict:
        """Draw the chosen measurement's frame; returns {channel: magnitude (K,)}."""
        layer = self.measurement.value
        if layer is None:
            self.status.value = "open or simulate a measurement to plot its spectra"
            return {}
        spectra = np.asarray(layer.metadata["spectra"])  # (frames, channels, K)
        freqs_khz = np.asarray(layer.metadata["frequencies"], np.float64) / 1e3
        self.frame.max = max(0, spectra.shape[0] - 1)
        frame = min(self.frame.value, spectra.shape[0] - 1)
        curves = {c: np.abs(spectra[frame, c]) for c in range(spectra.shape[1])}
        self._canvas = dock_canvas(self, self._canvas)
        fig = self._canvas.figure
        fig.clear()
        ax = fig.add_subplot(111)
        colors = style_axes(fig, [ax], self.viewer)
        for c, mag in curves.items():
            shown = np.where(mag > 0, mag, np.nan)
            ax.plot(freqs_khz[: mag.size], shown, lw=0.7, label=f"channel {c}")
        ax.set_yscale("log")
        ax.set_xlabel("frequency (kHz)")
        ax.set_ylabel("|spectrum|")
        style_legend(ax.legend(fontsize="small"), colors)
        self._canvas.draw_idle()
        self.status.value = (
            f"'{layer.name}': frame {frame} of {spectra.shape[0]}, {spectra.shape[1]} channel(s), "
            f"{spectra.shape[2]} frequencies"
        )
        return curves
