"""The Training dock widget: train a learned method for a calibration in a thread worker, with
a live plot of the training loss and the validation score, and a cancel button that keeps the
best checkpoint written so far."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    SpinBox,
)

from ..io import read_mdf
from ..nn.checkpoint import CARD, WEIGHTS, read_card
from ..recon.training_data import check_snr_range
from . import _workers
from ._plot import dock_canvas, style_axes

if TYPE_CHECKING:
    import napari

_FILE = "(file)"
TRAINABLE = ("dernet", "cascaded", "ppmpi")
#: Seconds between two redraws of the loss plot (every point is kept; only drawing waits).
#: A redraw costs ~0.1-0.3 s of the main thread (more while the worker competes for the GIL).
REDRAW_INTERVAL = 2.0


class TrainingWidget(_workers.WorkerWidgetMixin, Container):
    """Train DERnet, the cascaded network or PP-MPI's denoiser; plot losses live.

    Calibration (a layer from the reader or the simulator, or a file) is needed by the
    signal-to-image networks, which are tied to one system matrix; the PP-MPI denoiser is not.
    Phantoms: an MNIST-style ``.npz`` (its training and validation splits) or, left empty, the
    procedural digit-like phantoms. The options follow ``napari-mpi train``: training SNR range
    (dB), new phantom placements every epoch, learning rate; for DERnet its start (random or
    ridge), its dropout rate (both dropouts; the paper's 0.05) and a model to continue.
    """

    task_title = "training"

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        # torch is imported when the widget opens: imported by the worker, its start-up holds
        # the GIL for seconds and freezes napari (measured by bench_gui_responsiveness.py)
        import torch  # noqa: F401

        from ..nn.losses import LOSSES
        from ..recon.cascaded import STRATEGIES
        from ..recon.dernet import INITIALISATIONS

        self.method = ComboBox(label="method", choices=list(TRAINABLE), value="dernet")
        self.calibration = ComboBox(label="calibration", choices=self._calibrations)
        self.calibration_file = FileEdit(label="calibration file", filter="*.mdf *.h5 *.hdf5")
        self.phantoms = FileEdit(label="phantoms (.npz, empty: procedural)", filter="*.npz")
        self.snr_threshold = FloatSpinBox(label="rows: calibration SNR >=", value=10.0, min=0.0,
                                          max=1e9)  # fmt: skip
        self.epochs = SpinBox(label="epochs", value=15, min=1, max=10000)
        self.num_train = SpinBox(label="training pairs", value=8100, min=1, max=10**7)
        self.num_val = SpinBox(label="validation pairs", value=900, min=1, max=10**7)
        self.steps = SpinBox(label="steps", value=4000, min=1, max=10**8)
        self.batch = SpinBox(label="batch", value=64, min=1, max=4096)
        self.loss = ComboBox(label="loss", choices=list(LOSSES), value="l1+ssim")
        self.strategy = ComboBox(label="strategy", choices=list(STRATEGIES), value="end-to-end")
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.lr = FloatSpinBox(label="learning rate", value=1e-3, min=1e-6, max=1.0, step=1e-6)
        self.snr_low = FloatSpinBox(
            label="training SNR from (dB)", value=20.0, min=-50.0, max=200.0
        )
        self.snr_high = FloatSpinBox(label="training SNR to (dB)", value=40.0, min=-50.0, max=200.0)
        self.fresh_phantoms = CheckBox(label="new phantom placements every epoch", value=False)
        self.init = ComboBox(label="DERnet start", choices=list(INITIALISATIONS), value="random")
        self.dropout = FloatSpinBox(
            label="DERnet dropout", value=0.05, min=0.0, max=0.95, step=0.01
        )
        self.init_from = FileEdit(label="continue model (empty: new)", mode="d")
        self.output = FileEdit(label="model folder", mode="d")
        self.overwrite = CheckBox(label="replace a model in that folder", value=False)
        self.extend(
            [
                self.method, self.calibration, self.calibration_file, self.phantoms,
                self.snr_threshold, self.epochs, self.num_train, self.num_val, self.steps,
                self.batch, self.loss, self.strategy, self.seed, self.lr, self.snr_low,
                self.snr_high, self.fresh_phantoms, self.init, self.dropout, self.init_from,
                self.output, self.overwrite,
                *self._run_controls("Train"),
            ]
        )  # fmt: skip
        self.history: dict[str, list] = {"step": [], "loss": [], "val_step": [], "val": []}
        self.val_key = ""
        self.card: dict | None = None
        # the plot's canvas exists from the start: docked later, it would re-lay out the
        # window (and repaint napari's canvas) in the middle of a training
        self._canvas = dock_canvas(self, None)
        self._last_draw = 0.0
        self.method.changed.connect(self._toggle)
        self.calibration.changed.connect(self._toggle)
        self.init_from.changed.connect(self._follow_start_model)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(lambda _: self.reset_choices())
        self._init_run_state()
        self._toggle()

    # -- inputs -------------------------------------------------------------------------------
    def _calibrations(self, _widget=None) -> list:
        layers = [la for la in self.viewer.layers if "system_matrix" in la.metadata]
        return [*[(la.name, la) for la in layers], (_FILE, _FILE)]

    def _toggle(self, _=None) -> None:
        signal_model = self.method.value != "ppmpi"
        for w in (self.calibration, self.snr_threshold, self.epochs, self.num_train,
                  self.num_val, self.snr_low, self.snr_high, self.fresh_phantoms):  # fmt: skip
            w.visible = signal_model
        self.calibration_file.visible = signal_model and self.calibration.value == _FILE
        self.steps.visible = not signal_model
        self.loss.visible = self.strategy.visible = self.method.value == "cascaded"
        for w in (self.init, self.dropout, self.init_from):
            w.visible = self.method.value == "dernet"

    def _system_matrix(self):
        cal = self.calibration.value
        if cal == _FILE:
            path = Path(self.calibration_file.value)
            if not path.is_file():
                raise ValueError(f"calibration file: {path} does not exist")
            with read_mdf(path) as f:
                return f.system_matrix()
        return cal.metadata["system_matrix"]

    def _phantom_source(self) -> str | None:
        text = str(self.phantoms.value).strip()
        if text in ("", "."):
            return None
        if not Path(text).is_file():
            raise ValueError(f"phantoms: {text} is not a file (leave empty for procedural)")
        return text

    def _output(self) -> Path:
        text = str(self.output.value).strip()
        if text in ("", "."):
            raise ValueError("model folder: choose a folder to write model.pt and card.json to")
        out = Path(text)
        if out.exists() and not out.is_dir():
            raise ValueError(f"model folder: {out} is a file, not a folder")
        holds = (out / WEIGHTS).exists() or (out / CARD).exists()
        if holds and not self.overwrite.value:
            raise ValueError(f"model folder: {out} holds a model; tick 'replace' to overwrite it")
        return out

    def _init_from(self) -> Path | None:
        text = str(self.init_from.value).strip()
        if text in ("", "."):
            return None
        folder = Path(text)
        if not (folder / CARD).is_file() or not (folder / WEIGHTS).is_file():
            raise ValueError(
                f"continue model: {folder} holds no model ({CARD} and {WEIGHTS}); "
                "leave it empty to train a new one"
            )
        return folder

    def _follow_start_model(self, _=None) -> None:
        """Show the dropout rate of the model to continue (it is kept unless changed)."""
        try:
            folder = self._init_from()
            card = read_card(folder) if folder else {}
        except (ValueError, OSError):
            return
        rate = card.get("architecture", {}).get("dropout0")
        if isinstance(rate, (int, float)):
            self.dropout.value = float(rate)

    def _snr_range(self) -> tuple[float, float]:
        try:
            return check_snr_range((self.snr_low.value, self.snr_high.value))
        except ValueError as exc:
            raise ValueError(f"training SNR ('from', 'to'): {exc}") from None

    def work(self):
        """The training generator for the current settings (ValueError on bad input)."""
        method = self.method.value
        source = self._phantom_source()
        out = self._output()
        command = f"napari-mpi Training widget: {method} -> {out}"
        if method == "ppmpi":
            from ..recon.denoiser_training import iter_train_denoiser

            options = {"steps": self.steps.value, "batch": self.batch.value,
                       "seed": self.seed.value, "lr": self.lr.value}  # fmt: skip
            return lambda: iter_train_denoiser(out, source, command=command, **options)
        sm = self._system_matrix()
        common = {
            "snr_threshold": self.snr_threshold.value or None,
            "epochs": self.epochs.value,
            "batch": self.batch.value,
            "seed": self.seed.value,
            "num_train": self.num_train.value,
            "num_val": self.num_val.value,
            "lr": self.lr.value,
            "snr_range": self._snr_range(),
            "fresh_phantoms": self.fresh_phantoms.value,
            "command": command,
        }
        if method == "dernet":
            from ..recon.dernet import iter_train_dernet

            dernet = {
                "init": self.init.value,
                "init_from": self._init_from(),
                "architecture": {"dropout0": self.dropout.value, "dropout1": self.dropout.value},
            }
            return lambda: iter_train_dernet(sm, source, out, **common, **dernet)
        from ..recon.cascaded import iter_train_cascaded

        loss, strategy = self.loss.value, self.strategy.value
        return lambda: iter_train_cascaded(sm, source, out, loss=loss, strategy=strategy, **common)

    # -- running ------------------------------------------------------------------------------
    def start(self) -> None:
        """Check the inputs, then train in a worker."""
        if self.state == "running":
            return
        try:
            work = self.work()
        except (ValueError, OSError, KeyError) as exc:
            self.fail(exc)
            return
        self.history = {"step": [], "loss": [], "val_step": [], "val": []}
        self.val_key, self.card = "", None
        self.launch(work, self._done)

    def _done(self, card: dict) -> None:
        self.card = card
        self._draw()
        metrics = card.get("metrics", {}) if card else {}
        best = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith("val_"))
        self.status.value = f"done: best checkpoint in {self.output.value} ({best})"

    def _on_progress(self, step) -> None:
        super()._on_progress(step)
        info = step.info
        if "loss" in info:
            self.history["step"].append(info.get("step", step.done))
            self.history["loss"].append(info["loss"])
        key = "val_psnr_db" if "val_psnr_db" in info else "val_gain_db"
        if key in info:
            self.val_key = key
            self.history["val_step"].append(info.get("step", step.done))
            self.history["val"].append(info[key])
            self._draw()
        elif time.monotonic() - self._last_draw > REDRAW_INTERVAL:
            self._draw()

    def _on_finished(self) -> None:
        super()._on_finished()
        if self.state == "cancelled":
            self.status.value = "cancelled: the best checkpoint written so far is kept"

    def _draw(self) -> None:
        self._last_draw = time.monotonic()
        self._canvas = dock_canvas(self, self._canvas)
        fig = self._canvas.figure
        fig.clear()
        ax = fig.add_subplot(111)
        style_axes(fig, [ax], self.viewer)
        h = self.history
        if h["loss"]:
            ax.plot(h["step"], h["loss"], lw=0.8, color="tab:blue", label="training loss")
            if min(h["loss"]) > 0:
                ax.set_yscale("log")
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        if h["val"]:
            ax2 = ax.twinx()
            style_axes(fig, [ax2], self.viewer)
            ax2.grid(False)
            label = (
                "validation PSNR (dB)" if self.val_key == "val_psnr_db" else "validation gain (dB)"
            )
            ax2.plot(h["val_step"], h["val"], "o-", color="tab:orange", ms=3, label=label)
            ax2.set_ylabel(label)
        self._canvas.draw_idle()
