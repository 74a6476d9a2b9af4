"""The Reconstruction dock widget: calibration + measurement (layers or files), frequency
selection, frames, method and its parameters from the registry; runs in a thread worker."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    LineEdit,
    SpinBox,
)

from ..frequency_selection import AUTO_SNR_THRESHOLD
from ..io import read_mdf
from ..progress import Progress
from ..recon import get_method, iter_reconstruct, methods
from ..recon.selection import align_spectra, select_frequencies
from . import _workers, view
from .layers import image_layer

if TYPE_CHECKING:
    import napari

_FILE = "(file)"


def _param_widget(p, help_text: str | None = None):
    """A widget for one registry parameter (floats as text: they span many decades)."""
    label = p.name.replace("_", " ")
    if help_text is not None:
        p = replace(p, help=help_text)
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
    value = (
        "" if p.default is None else (p.default if isinstance(p.default, str) else repr(p.default))
    )
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
            label="SNR threshold (0: auto)", value=0.0, min=0.0, max=1e9,
            tooltip=f"keep rows with calibration SNR >= T; 0: automatic (SNR >= "
            f"{AUTO_SNR_THRESHOLD:g} where the calibration has an SNR). DERnet and the cascaded "
            "network read the rows their model needs whatever is set here.",
        )  # fmt: skip
        self.min_khz = FloatSpinBox(label="min frequency (kHz)", value=0.0, min=0.0, max=1e6)
        self.max_khz = FloatSpinBox(
            label="max frequency (kHz, 0: off)", value=0.0, min=0.0, max=1e6
        )
        self.channels = LineEdit(label="channels", value="all")
        self.background = CheckBox(label="background correction", value=True)
        self.frames = ComboBox(label="frames", choices=["first", "average", "all"], value="first")
        self.method = ComboBox(label="method", choices=[m.name for m in methods("reconstruct")])
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
            event.connect(self._follow_layers)
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

    def _follow_layers(self, _=None) -> None:
        """Refresh the choices; an empty '(file)' choice moves to a layer that appeared."""
        self.reset_choices()
        for combo, field in ((self.calibration, self.calibration_file),
                             (self.measurement, self.measurement_file)):  # fmt: skip
            layers = [c for c in combo.choices if c != _FILE]
            if combo.value == _FILE and str(field.value).strip() in ("", ".") and layers:
                combo.value = layers[-1]

    def _toggle_files(self, _=None) -> None:
        self.calibration_file.visible = self.calibration.value == _FILE
        self.measurement_file.visible = self.measurement.value == _FILE

    def _show_params(self, name: str) -> None:
        self.params.clear()
        method = get_method(name)
        if method.kind == "learned":
            view.warm_torch()  # imported by the worker, torch would freeze napari meanwhile
        for p in method.params:
            self.params.append(_param_widget(p, method.param_help(p)))

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
        """The frequency selection as set in the widget (ValueError for contradictory values)."""
        channels = None
        text = self.channels.value.strip().lower()
        if text not in ("", "all"):
            try:
                channels = [int(c) for c in text.replace(" ", ",").split(",") if c]
            except ValueError:
                raise ValueError(
                    f"channels: expected 'all' or numbers like 0,1; got '{text}'"
                ) from None
            if any(c < 0 for c in channels):
                raise ValueError(f"channels: channel numbers start at 0; got '{text}'")
        low, high = self.min_khz.value, self.max_khz.value
        if high and low > high:
            raise ValueError(
                f"frequency range: min frequency ({low:g} kHz) is above max frequency "
                f"({high:g} kHz); lower the min or raise the max (0: no max)"
            )
        return {
            "snr_threshold": self.snr_threshold.value or "auto",
            "min_frequency": low * 1e3 or None,
            "max_frequency": high * 1e3 or None,
            "channels": channels,
        }

    def _request(self) -> dict:
        """Everything the worker needs, read from the widget on the main thread (no file I/O).

        Raises ValueError for an empty file field, contradictory selections or unknown channels
        of a calibration layer; reading the files is left to the worker.
        """
        req = {"selection": self._selection(), "background": self.background.value,
               "frames": self.frames.value}  # fmt: skip
        cal = self.calibration.value
        if cal is None:
            raise ValueError("calibration: open or simulate a calibration, or choose '(file)'")
        if cal == _FILE:
            req["calibration_file"] = _file_field(self.calibration_file.value, "calibration file")
        else:
            req["system_matrix"] = cal.metadata["system_matrix"]
            check_channels(req["selection"]["channels"], req["system_matrix"], cal.name)
        meas = self.measurement.value
        if meas is None:
            raise ValueError("measurement: open or simulate a measurement, or choose '(file)'")
        source = None if meas == _FILE else meas.metadata.get("source")
        if meas == _FILE:
            path = _file_field(self.measurement_file.value, "measurement file")
            req["measurement_file"], req["name"] = path, path.stem
        elif source and Path(source).is_file():
            # read through the file: background frames and the drive-field check apply
            req["measurement_file"], req["name"] = Path(source), meas.name
        else:
            req["spectra"] = meas.metadata["spectra"]
            req["frequencies"] = meas.metadata["frequencies"]
            req["name"] = meas.name
        return req

    def _inputs(self):
        """(system matrix, measurements (frames, rows), name) from layers or files."""
        return read_inputs(self._request())

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        """Check the settings, then read the inputs and reconstruct in a worker."""
        if self.state == "running":
            return
        method = self.method.value
        try:
            params = get_method(method).check_params(self.param_values())
            req = self._request()
        except (ValueError, OSError) as exc:
            self.fail(exc)
            return
        self.launch(lambda: reconstruction_work(req, method, params), self._add_image)

    def _add_image(self, result) -> None:
        image, layer_data = result
        self.result = image
        meta = image.metadata
        self.status.value = (
            f"done: {meta['method']} of '{meta['measurement']}', {image.num_frames} frame(s), "
            f"{meta['rows']} rows"
        )
        view.publish(self.viewer, last_reconstruction=image)
        self.add_result_layers([layer_data])


def _file_field(value, field: str) -> Path:
    """The path in a file field; ValueError when it is empty or names no file."""
    text = str(value).strip()
    if text in ("", "."):
        raise ValueError(f"{field}: empty; choose an MDF file")
    path = Path(text)
    if not path.is_file():
        raise ValueError(f"{field}: {path} does not exist")
    return path


def check_channels(channels: list[int] | None, sm, name: str = "the calibration") -> None:
    """ValueError naming the channels that ``sm`` does not have."""
    if channels is None:
        return
    have = sorted({int(c) for c in np.unique(sm.channels)})
    missing = sorted(set(channels) - set(have))
    if missing:
        raise ValueError(
            f"channels: {', '.join(map(str, missing))} not in '{name}' "
            f"(its channels: {', '.join(map(str, have))})"
        )


def read_inputs(req: dict, select: bool = True):
    """(system matrix, measurements (frames, rows), name) for a request (reads files).

    The frequency selection (an automatic SNR threshold when the widget's is 0) is the one
    ``nm.reconstruct`` applies; with ``select`` False every row is kept (for the networks,
    which take the rows their model needs).
    """
    sel = req["selection"]
    if "calibration_file" in req:
        path = req["calibration_file"]
        with read_mdf(path) as f:
            full = f.system_matrix(background_correction=req["background"])
        check_channels(sel["channels"], full, path.name)
    else:
        full = req["system_matrix"]
    sm = select_frequencies(full, **sel) if select else full
    frames_mode = req["frames"]
    if "measurement_file" in req:
        with read_mdf(req["measurement_file"]) as f:
            u = f.measurements(
                sm,
                frames=[0] if frames_mode == "first" else None,
                background_correction=req["background"],
                average=frames_mode == "average",
            )
    else:
        u = align_spectra(req["spectra"], req["frequencies"], sm)
        if frames_mode == "first":
            u = u[:1]
        elif frames_mode == "average":
            u = u.mean(axis=0, keepdims=True)
    return sm, u, req["name"]


def reconstruction_work(req: dict, method: str, params: dict):
    """The worker's generator: read the inputs, reconstruct, build the layer data."""
    yield Progress(0, 1, "reading inputs")
    sm, u, name = read_inputs(req, select=not get_method(method).selects_rows)
    # the selection is applied already (the networks ignore it)
    image = yield from iter_reconstruct(sm, u, method, None, **params)
    image.metadata.update({"measurement": name, "rows": sm.num_rows})
    layer_data = image_layer(image, method)
    layer_data[1]["metadata"]["params"] = dict(params)
    return image, layer_data
