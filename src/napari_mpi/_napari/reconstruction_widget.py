"""The Reconstruction dock widget: calibration + measurement (layers or files), frequency
selection, frames, method and its parameters from the registry; runs in a thread worker."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    SpinBox,
)

from ..io import read_mdf
from ..recon import get_method, iter_reconstruct, methods
from ..recon.selection import align_spectra, select_frequencies
from . import _workers
from .layers import image_layer

if TYPE_CHECKING:
    import napari

_FILE = "(file)"


def _param_widget(p):
    """A widget for one registry parameter (floats as text: they span many decades)."""
    label = p.name.replace("_", " ")
    if p.kind is bool:
        return CheckBox(name=p.name, label=label, value=bool(p.default), tooltip=p.help)
    if p.kind == "choice":
        return ComboBox(
            name=p.name, label=label, choices=list(p.choices), value=p.default, tooltip=p.help
        )
    if p.kind is int:
        return SpinBox(
            name=p.name, label=label, value=int(p.default), tooltip=p.help,
            min=int(p.minimum if p.minimum is not None else -(10**9)),
            max=int(p.maximum if p.maximum is not None else 10**9),
        )  # fmt: skip
    value = "" if p.default is None else (p.default if p.kind is str else repr(p.default))
    return LineEdit(name=p.name, label=label, value=value, tooltip=p.help)


class ReconstructionWidget(_workers.WorkerWidgetMixin, Container):
    """Reconstruct a measurement with any registered method and add the image in mm."""

    task_title = "reconstruction"

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.calibration = ComboBox(label="calibration", choices=self._calibrations)
        self.calibration_file = FileEdit(label="calibration file", filter="*.mdf *.h5 *.hdf5")
        self.measurement = ComboBox(label="measurement", choices=self._measurements)
        self.measurement_file = FileEdit(label="measurement file", filter="*.mdf *.h5 *.hdf5")
        self.snr_threshold = FloatSpinBox(
            label="SNR threshold (0: off)", value=0.0, min=0.0, max=1e9
        )
        self.min_khz = FloatSpinBox(label="min frequency (kHz)", value=0.0, min=0.0, max=1e6)
        self.max_khz = FloatSpinBox(
            label="max frequency (kHz, 0: off)", value=0.0, min=0.0, max=1e6
        )
        self.channels = LineEdit(label="channels", value="all")
        self.background = CheckBox(label="background correction", value=True)
        self.frames = ComboBox(label="frames", choices=["first", "average", "all"], value="first")
        self.method = ComboBox(label="method", choices=[m.name for m in methods()])
        self.params = Container(labels=True)
        self.extend(
            [
                self.calibration, self.calibration_file, self.measurement, self.measurement_file,
                self.snr_threshold, self.min_khz, self.max_khz, self.channels, self.background,
                self.frames, self.method, self.params, *self._run_controls("Reconstruct"),
            ]
        )  # fmt: skip
        self.method.changed.connect(self._show_params)
        self.calibration.changed.connect(self._toggle_files)
        self.measurement.changed.connect(self._toggle_files)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(lambda _: self.reset_choices())
        self._init_run_state()
        self._show_params(self.method.value)
        self._toggle_files()

    # -- choices ------------------------------------------------------------------------------
    def _calibrations(self, _widget=None) -> list:
        layers = [la for la in self.viewer.layers if "system_matrix" in la.metadata]
        return [*[(la.name, la) for la in layers], (_FILE, _FILE)]

    def _measurements(self, _widget=None) -> list:
        layers = [la for la in self.viewer.layers if "spectra" in la.metadata]
        return [*[(la.name, la) for la in layers], (_FILE, _FILE)]

    def _toggle_files(self, _=None) -> None:
        self.calibration_file.visible = self.calibration.value == _FILE
        self.measurement_file.visible = self.measurement.value == _FILE

    def _show_params(self, name: str) -> None:
        self.params.clear()
        for p in get_method(name).params:
            self.params.append(_param_widget(p))

    def param_values(self) -> dict:
        """The parameters as set in the widget (empty text = default)."""
        out = {}
        for w in self.params:
            value = w.value
            if isinstance(w, LineEdit):
                value = value.strip()
                if value in ("", "None"):
                    continue
            out[w.name] = value
        return out

    # -- inputs -------------------------------------------------------------------------------
    def _selection(self) -> dict:
        channels = None
        text = self.channels.value.strip().lower()
        if text not in ("", "all"):
            try:
                channels = [int(c) for c in text.replace(" ", ",").split(",") if c]
            except ValueError:
                raise ValueError(
                    f"channels: expected 'all' or numbers like 0,1; got '{text}'"
                ) from None
        return {
            "snr_threshold": self.snr_threshold.value or None,
            "min_frequency": self.min_khz.value * 1e3 or None,
            "max_frequency": self.max_khz.value * 1e3 or None,
            "channels": channels,
        }

    def _inputs(self):
        """(system matrix, measurements (frames, rows), name) from layers or files."""
        sel = self._selection()
        cal = self.calibration.value
        if cal == _FILE:
            path = Path(self.calibration_file.value)
            with read_mdf(path) as f:
                sm = f.system_matrix(background_correction=self.background.value, **sel)
        else:
            sm = select_frequencies(cal.metadata["system_matrix"], **sel)
        frames_mode = self.frames.value
        meas = self.measurement.value
        source = None if meas == _FILE else meas.metadata.get("source")
        if meas == _FILE or (source and Path(source).is_file()):
            # read through the file: background frames and the drive-field check apply
            path = Path(self.measurement_file.value) if meas == _FILE else Path(source)
            name = path.stem if meas == _FILE else meas.name
            with read_mdf(path) as f:
                u = f.measurements(
                    sm,
                    frames=[0] if frames_mode == "first" else None,
                    background_correction=self.background.value,
                    average=frames_mode == "average",
                )
        else:
            name = meas.name
            u = align_spectra(meas.metadata["spectra"], meas.metadata["frequencies"], sm)
            if frames_mode == "first":
                u = u[:1]
            elif frames_mode == "average":
                u = u.mean(axis=0, keepdims=True)
        return sm, u, name

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        """Read inputs and parameters, then reconstruct in a worker."""
        if self.state == "running":
            return
        method = self.method.value
        try:
            params = get_method(method).check_params(self.param_values())
            sm, u, name = self._inputs()
        except (ValueError, OSError) as exc:
            self.fail(exc)
            return
        self.launch(
            lambda: iter_reconstruct(sm, u, method, **params),
            lambda image: self._add_image(image, method, name, params, sm),
        )

    def _add_image(self, image, method: str, name: str, params: dict, sm) -> None:
        from napari.layers import Layer

        image.metadata.update({"measurement": name, "rows": sm.num_rows})
        layer = Layer.create(*image_layer(image, f"{method} {name}"))
        layer.metadata["params"] = dict(params)
        self.viewer.add_layer(layer)
        self.status.value = f"done: {method}, {image.num_frames} frame(s), {sm.num_rows} rows"
