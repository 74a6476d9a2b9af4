"""The Simulation dock widget: scanner preset, phantom, noise -> phantom, system-matrix,
measurement and x-space layers, computed in a thread worker with progress and cancel."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FloatSpinBox,
    LineEdit,
    PushButton,
    SpinBox,
)

from ..progress import Progress
from ..simulation import (
    PRESETS,
    Particles,
    get_preset,
    iter_measurement,
    iter_system_matrix,
    layered_scan,
    native_image,
    scanner_grid,
)
from ..simulation.phantom_specs import PHANTOM_SPEC_HELP, make_phantom, phantom_examples
from . import _workers, view
from .layers import calibration_layers, image_layer, spectra_layer
from .writer import image_from_layer_data

if TYPE_CHECKING:
    import napari

_FROM_LAYER = "(image layer)"
#: the phantom menu, from the phantom registry (title -> example SPEC)
_PHANTOM_EXAMPLES = phantom_examples()


class SimulationWidget(_workers.WorkerWidgetMixin, Container):
    """Simulate a scanner's system matrix and a noisy measurement of a phantom."""

    task_title = "simulation"

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        self.preset = ComboBox(
            label="scanner preset", choices=sorted(PRESETS), value="preclinical-2d"
        )
        self.gradient = FloatSpinBox(
            label="gradient x, y (T/m)", value=1.0, min=0.05, max=20.0, step=0.1
        )
        self.drive_mt = FloatSpinBox(label="drive amplitude (mT)", value=12.0, min=0.1, max=100.0)
        self.diameter_nm = FloatSpinBox(
            label="particle core (nm)", value=25.0, min=1.0, max=100.0, step=1.0
        )
        self.nx = SpinBox(label="voxels x", value=19, min=1, max=256)
        self.ny = SpinBox(label="voxels y", value=19, min=1, max=256)
        self.nz = SpinBox(label="voxels z", value=1, min=1, max=256)
        self.phantom_kind = ComboBox(
            label="phantom", choices=[*_PHANTOM_EXAMPLES, _FROM_LAYER], value="two points"
        )
        self.phantom_spec = LineEdit(
            label="phantom SPEC", value=_PHANTOM_EXAMPLES["two points"], tooltip=PHANTOM_SPEC_HELP
        )
        self.spec_help = PushButton(text="SPEC syntax...", tooltip=PHANTOM_SPEC_HELP)
        self.spec_help.clicked.connect(self._show_spec_help)
        self.phantom_layer = ComboBox(label="phantom layer", choices=self._image_layers)
        self.snr = FloatSpinBox(label="SNR (dB)", value=30.0, min=-20.0, max=120.0, step=1.0)
        self.frames = SpinBox(label="frames", value=1, min=1, max=10000)
        self.background = SpinBox(label="background frames", value=0, min=0, max=10000)
        self.subvoxels = SpinBox(label="sub-voxels per axis", value=1, min=1, max=8)
        self.want_sm = CheckBox(label="system-matrix layer", value=True)
        self.want_xspace = CheckBox(label="x-space native image", value=False)
        self.extend(
            [
                self.preset, self.gradient, self.drive_mt, self.diameter_nm,
                self.nx, self.ny, self.nz, self.phantom_kind, self.phantom_spec, self.spec_help,
                self.phantom_layer, self.snr, self.frames, self.background, self.subvoxels,
                self.want_sm, self.want_xspace, *self._run_controls("Simulate"),
            ]
        )  # fmt: skip
        self.preset.changed.connect(self._on_preset)
        self.phantom_kind.changed.connect(self._on_phantom_kind)
        viewer.layers.events.inserted.connect(lambda _: self.phantom_layer.reset_choices())
        viewer.layers.events.removed.connect(lambda _: self.phantom_layer.reset_choices())
        self._init_run_state()
        self._on_preset(self.preset.value)
        self._on_phantom_kind(self.phantom_kind.value)

    # -- choices ------------------------------------------------------------------------------
    def _image_layers(self, _widget=None) -> list:
        from napari.layers import Image

        return [layer for layer in self.viewer.layers if isinstance(layer, Image)]

    def _on_preset(self, name: str) -> None:
        scanner = get_preset(name)
        self.gradient.value = abs(scanner.gradient[0])
        self.drive_mt.value = scanner.drive_amplitude[0] * 1e3
        self.nz.enabled = scanner.num_drive_channels >= 3
        self.ny.enabled = scanner.num_drive_channels >= 2
        if scanner.num_drive_channels < 3:
            self.nz.value = 1

    def _on_phantom_kind(self, kind: str) -> None:
        from_layer = kind == _FROM_LAYER
        self.phantom_layer.visible = from_layer
        self.phantom_spec.visible = self.spec_help.visible = not from_layer
        if not from_layer:
            self.phantom_spec.value = _PHANTOM_EXAMPLES[kind]

    def _show_spec_help(self) -> None:
        """Show the SPEC syntax next to the help button (it is also the field's tooltip)."""
        from qtpy.QtWidgets import QToolTip

        button = self.spec_help.native
        QToolTip.showText(button.mapToGlobal(button.rect().bottomLeft()), PHANTOM_SPEC_HELP)

    def fail(self, exc: Exception) -> None:
        """Report the error; the long SPEC syntax stays in the help button, not the status."""
        text = str(exc)
        if PHANTOM_SPEC_HELP in text:
            exc = ValueError(text.replace(PHANTOM_SPEC_HELP, "").strip() + " (see 'SPEC syntax')")
        super().fail(exc)

    # -- running ------------------------------------------------------------------------------
    def _scanner(self):
        """The chosen preset with the widget's gradient and drive amplitude (trace-free)."""
        base = get_preset(self.preset.value)
        g = float(self.gradient.value)
        return base.with_changes(
            gradient=(-g, -g, 2 * g),
            drive_amplitude=(float(self.drive_mt.value) * 1e-3,) * base.num_drive_channels,
        )

    def _grid(self, scanner):
        sizes = [self.nx.value, self.ny.value, self.nz.value][: scanner.num_drive_channels]
        return scanner_grid(scanner, tuple(sizes))

    def _phantom(self, grid):
        if self.phantom_kind.value == _FROM_LAYER:
            layer = self.phantom_layer.value
            if layer is None:
                raise ValueError("phantom layer: choose an image layer (none is open)")
            return image_from_layer_data(layer.data, layer.as_layer_data_tuple()[1])
        return make_phantom(self.phantom_spec.value, grid)

    def _work(self, scanner, grid, phantom, particles, params):
        sm = yield from iter_system_matrix(scanner, grid, particles, subvoxels=params["subvoxels"])
        meas = yield from iter_measurement(
            sm,
            phantom,
            params["snr"],
            frames=params["frames"],
            background_frames=params["background"],
            seed=0,
        )
        xspace = None
        if params["xspace"]:
            yield Progress(0, 1, "x-space image")
            if grid.shape[0] > 1:
                # the preset's own 3D FFP field (z gradient twice the in-plane one), not the
                # papers' z-stepped 2D scanner, whose z blur at a preset's 1 T/m would exceed
                # the field of view
                xspace = layered_scan(
                    meas.phantom, scanner.gradient[0] * -1, particles, model="trace-free"
                )
            else:
                xspace = native_image(meas.phantom, scanner.gradient, particles)
            yield Progress(1, 1, "x-space image")
        result = {"system_matrix": sm, "measurement": meas, "xspace": xspace, "scanner": scanner}
        yield Progress(0, 1, "preparing layers")
        result["layers"] = self.layer_data(result, params["want_sm"])
        return result

    def start(self) -> None:
        """Read the parameters and start the simulation (errors go to the status line)."""
        if self.state == "running":
            return
        try:
            scanner = self._scanner()
            particles = Particles(diameter=float(self.diameter_nm.value) * 1e-9)
            grid = self._grid(scanner)
            phantom = self._phantom(grid)
        except ValueError as exc:
            self.fail(exc)
            return
        params = {
            "snr": float(self.snr.value),
            "frames": int(self.frames.value),
            "background": int(self.background.value),
            "subvoxels": int(self.subvoxels.value),
            "xspace": bool(self.want_xspace.value),
            "want_sm": bool(self.want_sm.value),
        }
        self.launch(lambda: self._work(scanner, grid, phantom, particles, params), self._on_done)

    def _on_done(self, result: dict) -> None:
        self.add_layers(result)
        meas = result["measurement"]
        self.status.value = (
            f"done: {result['system_matrix'].num_rows} rows, {meas.data.shape[0]} frame(s) at "
            f"{meas.snr_db:g} dB"
        )
        self.result = result
        view.publish(self.viewer, last_simulation=result)

    @staticmethod
    def layer_data(result: dict, want_sm: bool = True) -> list:
        """Layer-data tuples of a result (built in the worker; adding them is cheap)."""
        sm, meas = result["system_matrix"], result["measurement"]
        layers = calibration_layers(sm, "system matrix") if want_sm else []
        layers.append(image_layer(meas.phantom, "phantom", kind="phantom"))  # drawn above
        channels = np.unique(sm.channels)
        bins = np.unique(sm.frequency_indices)
        spectra = np.zeros((meas.data.shape[0], channels.size, bins.size), dtype=np.complex64)
        rows_c = np.searchsorted(channels, sm.channels)
        rows_k = np.searchsorted(bins, sm.frequency_indices)
        spectra[:, rows_c, rows_k] = meas.data
        freqs = sm.acquisition.frequencies[bins]
        meta = {"simulated_measurement": meas, "snr_db": meas.snr_db,
                "scanner": result["scanner"].name}  # fmt: skip
        name = f"measurement ({meas.snr_db:g} dB)"
        layers.append(spectra_layer(spectra, freqs, name, meta))
        if result.get("xspace") is not None:
            layers.append(image_layer(result["xspace"], "x-space", kind="xspace"))
        for _, kwargs, _ in layers:
            kwargs["metadata"].setdefault("scanner", result["scanner"].name)
        return layers

    def add_layers(self, result: dict) -> list:
        """Add the phantom, system-matrix, measurement and x-space layers of a result.

        They arrive one per event-loop turn (all at once in synchronous mode); returns those
        added so far.
        """
        data = result.get("layers") or self.layer_data(result, self.want_sm.value)
        return self.add_result_layers(data)
