"""The Training dock widget: train a registered learned method in a thread worker, with a live
plot of the training loss and the validation score, each phase's own progress, and a cancel
button that keeps the checkpoints written so far (and says which)."""

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
    LineEdit,
    SpinBox,
)

from ..io import read_mdf
from ..nn.checkpoint import CARD, WEIGHTS, read_card
from ..progress import Progress
from ..recon.training_config import check_snr_range
from . import _workers, view
from ._messages import status_label
from ._plot import BackgroundCanvas, ThemedPlotMixin, style_axes, style_legend, theme_colors

if TYPE_CHECKING:
    import napari

_FILE = "(file)"
#: Seconds between two redraws of the loss plot (every point is kept; only drawing waits).
#: A redraw costs ~0.1-0.3 s of the main thread (more while the worker competes for the GIL).
REDRAW_INTERVAL = 2.0
#: choices offered for a config's ``device``
DEVICES = ("auto", "cpu", "cuda")
#: pixels: the most the method's fields take of the dock's height before they scroll (the
#: fields of most methods need 450-1,000 px), and what they keep when the dock is short
OPTIONS_MAX_HEIGHT = 420
OPTIONS_MIN_HEIGHT = 160


#: validation numbers plotted (the first a method reports): signal networks' PSNR, the
#: enhancement networks' PSNR, the denoiser's gain over its noisy input
VAL_KEYS = ("val_psnr_db", "val_psnr", "val_gain_db")
#: colours of the terms of a loss with several (a GAN's "loss_d", "loss_gan", ...)
TERM_COLORS = ("tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:olive")


def trainable_names() -> list[str]:
    """The methods offered, from the trainable registry (reconstruction first)."""
    from ..nn.trainers import trainables

    return [t.name for t in trainables()]


def _option_widgets(option) -> list:
    """magicgui widgets for one config option (two for a (low, high) pair)."""
    meta, label = option.meta, option.label
    if option.kind == "bool":
        return [CheckBox(label=label, value=bool(option.default))]
    if option.kind == "choice":
        return [ComboBox(label=label, choices=list(option.choices), value=option.default)]
    if option.kind == "path":
        return [FileEdit(label=label, mode="d")]
    if option.kind == "int":
        low = meta.get("min", 0)
        return [SpinBox(label=label, value=option.default or low, min=low, max=10**8)]
    if option.kind == "float":
        extra = {k: meta[k] for k in ("step",) if k in meta}
        if "step" not in extra and option.default:
            # a spin box keeps as many decimals as its step: 2 by default, which would turn
            # 5e-3 into 0.01 and 0.995 into 0.99; the step follows the default's last digit
            places = next((d for d in range(2, 7) if round(option.default, d) == option.default), 6)
            if places > 2:
                extra["step"] = 10.0**-places
        return [FloatSpinBox(label=label, value=option.default or 0.0, min=meta.get("min", -1e9),
                             max=meta.get("max", 1e9), **extra)]  # fmt: skip
    if option.kind == "pair" and meta.get("nargs") == "+":  # e.g. widths: "12 24 48"
        edit = LineEdit(label=label, value=" ".join(str(v) for v in option.default))
        edit.tooltip = option.help
        return [edit]
    if option.kind == "pair":
        labels = meta.get("labels", (f"{label} from", f"{label} to"))
        return [FloatSpinBox(label=text, value=v, min=-1e6, max=1e6)
                for text, v in zip(labels, option.default, strict=True)]  # fmt: skip
    if option.name == "device":
        return [ComboBox(label=label, choices=list(DEVICES), value=option.default)]
    if option.name == "phantom_mix":
        from ..simulation.phantom_mix import format_mix

        edit = LineEdit(label=label, value=format_mix(option.default))
        edit.tooltip = option.help
        edit.native.setCursorPosition(0)  # show the first kinds, not the end of the text
        return [edit]
    if option.kind == "str":  # e.g. the enhancement trainings' degradation
        edit = LineEdit(label=label, value=str(option.default or ""))
        edit.tooltip = option.help
        return [edit]
    return []  # dict-valued options have their own controls (e.g. DERnet's dropout)


def _field_value(option, widgets, value=None):
    """A comparable form of a field's value (``widgets``) or of a config value (``value``)."""
    if widgets is None:
        if option.kind == "pair" and option.meta.get("nargs") == "+":
            return " ".join(str(v) for v in value)
        if option.kind == "pair":
            return tuple(float(v) for v in value)
        if option.name == "phantom_mix":
            from ..simulation.phantom_mix import format_mix

            return format_mix(value)
        return value
    if option.kind == "pair" and option.meta.get("nargs") != "+":
        return tuple(float(w.value) for w in widgets)
    return widgets[0].value


def _set_field(option, widgets, value) -> None:
    """Show the config value ``value`` in the field's widgets."""
    if option.kind == "path":
        return
    shown = _field_value(option, None, value)
    if option.kind == "pair" and option.meta.get("nargs") != "+":
        for w, v in zip(widgets, shown, strict=True):
            w.value = v
    else:
        widgets[0].value = shown


class TrainingWidget(_workers.WorkerWidgetMixin, ThemedPlotMixin, Container):
    """Train any registered trainable method; plot losses live.

    The methods and their fields come from the trainable registry
    (:mod:`napari_mpi.nn.trainers`) and the methods' config dataclasses: a field is shown for
    the methods that have it, and a field still at the previous method's default follows the
    new method's default. Calibration (a layer from the reader or the simulator, or a file) is
    needed by the signal-to-image networks, which are tied to one system matrix; the PP-MPI
    denoiser is not. Phantoms: an MNIST-style ``.npz`` (its training and validation splits)
    or, left empty, the procedural digit-like phantoms. DERnet's dropout (both dropouts; the
    paper's 0.05) is its own field. Each phase of a run (making samples, training, validating)
    is shown with its own progress; Cancel keeps what was written and says what that is.
    """

    task_title = "training"

    def __init__(self, viewer: napari.viewer.Viewer) -> None:
        super().__init__(labels=True)
        self.viewer = viewer
        # torch is imported when the widget opens: imported by the worker, its start-up holds
        # the GIL for seconds and freezes napari (measured by bench_gui_responsiveness.py)
        import torch  # noqa: F401

        from ..nn.trainers import get_trainable, options, trainables

        names = trainable_names()
        self._entries = {n: get_trainable(n) for n in names}
        self._own = {n: {o.name for o in options(e.config)} for n, e in self._entries.items()}
        self.method = ComboBox(label="method", choices=names, value=names[0])
        self.calibration = ComboBox(label="calibration", choices=self._calibrations)
        self.calibration_file = FileEdit(label="calibration file", filter="*.mdf *.h5 *.hdf5")
        self.phantoms = FileEdit(label="phantoms (.npz, empty: procedural)", filter="*.npz")
        #: input name -> FileEdit for the .npz inputs of every method ("phantoms", ...)
        self.data_files = {"phantoms": self.phantoms}
        for entry in trainables():
            for inp in entry.inputs:
                if inp.kind == "npz" and inp.name not in self.data_files:
                    edit = FileEdit(label=f"{inp.name} (.npz)", filter="*.npz")
                    edit.tooltip = inp.help
                    self._expose(inp.name, edit)
                    self.data_files[inp.name] = edit
        #: field key -> (Option of the first method that has it, its widgets); the key is the
        #: option's name, or "name@method" where a method's option of that name takes other
        #: values (e.g. the enhancement trainings' loss choices)
        self.fields: dict[str, tuple] = {}
        #: method -> option name -> field key
        self._keys: dict[str, dict[str, str]] = {n: {} for n in names}
        generated = []
        for entry in trainables():
            for option in options(entry.config):
                if option.meta.get("hidden_widget"):
                    continue
                same = [k for k in self.fields
                        if k.split("@")[0] == option.name and
                        (self.fields[k][0].kind, self.fields[k][0].choices)
                        == (option.kind, option.choices)]  # fmt: skip
                if same:
                    self._keys[entry.name][option.name] = same[0]
                    continue
                key = option.name
                if key in self.fields:
                    key = f"{option.name}@{entry.name}"
                widgets = _option_widgets(option)
                if not widgets:
                    continue
                names_ = option.meta.get("widget_names") or (
                    [option.name] if len(widgets) == 1 else
                    [f"{option.name}_low", f"{option.name}_high"]
                )  # fmt: skip
                for attr, w in zip(names_, widgets, strict=True):
                    self._expose(attr, w)
                self.fields[key] = (option, widgets)
                self._keys[entry.name][option.name] = key
                generated.extend(widgets)
        self.dropout = FloatSpinBox(
            label="DERnet dropout", value=0.05, min=0.0, max=0.95, step=0.01
        )
        self.output = FileEdit(label="model folder", mode="d")
        self.overwrite = CheckBox(label="replace a model in that folder", value=False)
        self.phase = status_label("", label="phase")  # wraps: never widens the dock
        self.extend([self.method, self.calibration, self.calibration_file,
                     *self.data_files.values(), self.output, self.overwrite,
                     *self._run_controls("Train"), self.phase])  # fmt: skip
        #: the method's own fields (10-40 of them) in a scroll area of bounded height below
        #: the inputs, so the dock fits a laptop screen with the loss plot in view (unbounded,
        #: dccdm's fields made the dock 1,500 px tall and the window taller than the screen)
        self.method_options = Container(labels=True, name="method_options")
        self.method_options.margins = (0, 0, 0, 0)
        self.method_options.extend([*generated, self.dropout])
        self._options_scroll = self._scroll_area(self.method_options,
                                                 at=3 + len(self.data_files))  # fmt: skip
        self.history: dict = {"step": [], "loss": [], "val_step": [], "val": [], "terms": {}}
        self.val_key = ""
        self._last_phase, self._last_phase_text = None, -float("inf")
        self.card: dict | None = None
        # the plot's canvas exists from the start: docked later, it would re-lay out the
        # window (and repaint napari's canvas) in the middle of a training
        self._canvas = BackgroundCanvas(self)
        self._lines = None  # (loss line, validation line, run id), made by the render thread
        self._term_lines: dict = {}  # a line per loss term (GANs), made by the render thread
        self._run_id = 0
        self._last_draw = 0.0
        self._drawn = (0, 0)  # (loss points, validation points) shown; nothing to draw yet
        self._written: dict | None = None
        self._previous = self.method.value
        self.method.changed.connect(self._method_changed)
        self.calibration.changed.connect(self._toggle)
        if hasattr(self, "init_from"):
            self.init_from.changed.connect(self._follow_start_model)
        for event in (viewer.layers.events.inserted, viewer.layers.events.removed):
            event.connect(lambda _: self.reset_choices())
        self._init_run_state()
        view.warm_torch()  # every trainable method is a network
        self._follow_theme()
        colors = theme_colors(viewer)
        self._canvas.submit(lambda fig: self._plot_empty(fig, colors))
        self._method_changed()

    def _scroll_area(self, container: Container, at: int):
        """Put ``container`` in a vertical scroll area at row ``at`` of this widget's layout.

        napari docks a magicgui widget's ``native``, which for magicgui's own scrollable
        containers is the inner widget, so the scroll area is made here; the rows' label
        column is as wide as this widget's own."""
        from qtpy.QtCore import Qt
        from qtpy.QtWidgets import QFrame, QScrollArea

        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setWidget(container.native)
        self.native.layout().insertWidget(at, scroll)
        # one label column for the fields and the rows around them (magicgui lines up the
        # labels of each container on its own)
        rows = [lw for w in (*self, *container) if (lw := w._labeled_widget()) is not None]
        widest = max(lw._label_widget.native.sizeHint().width() for lw in rows)
        for lw in rows:
            lw.label_width = widest
        return scroll

    def reset_choices(self, *_) -> None:
        super().reset_choices()
        self.method_options.reset_choices()

    def _bound_options_height(self) -> None:
        """The options' scroll area takes the height its shown fields need, up to
        :data:`OPTIONS_MAX_HEIGHT` (beyond, they scroll); a short dock may squeeze it to
        :data:`OPTIONS_MIN_HEIGHT`."""
        inner = self.method_options.native
        inner.layout().activate()
        needed = inner.sizeHint().height()
        self._options_scroll.setMaximumHeight(min(needed, OPTIONS_MAX_HEIGHT))
        self._options_scroll.setMinimumHeight(min(needed, OPTIONS_MIN_HEIGHT))

    def _expose(self, name: str, widget) -> None:
        """``self.<name>`` for a generated control, unless the name is one of the container's
        own attributes (``width``, ``label``, ...); :attr:`fields` and :attr:`data_files` hold
        every control whatever its name."""
        if not hasattr(type(self), name) and name not in vars(self):
            setattr(self, name, widget)

    # -- inputs -------------------------------------------------------------------------------
    def _calibrations(self, _widget=None) -> list:
        layers = [la for la in self.viewer.layers if "system_matrix" in la.metadata]
        return [*[(la.name, la) for la in layers], (_FILE, _FILE)]

    def _needs_calibration(self) -> bool:
        entry = self._entries[self.method.value]
        return any(i.kind == "mdf" and i.required for i in entry.inputs)

    def _method_changed(self, _=None) -> None:
        """Show the new method's fields with the new method's defaults: a field the old method
        showed too keeps a value the user changed and otherwise takes the new default (e.g.
        epochs 15 for DERnet, 20 for the cascaded network); a field the old method did not
        show (its value left by whichever method used it last) takes the new default."""
        from ..nn.trainers import options

        old = {o.name: o.default for o in options(self._entries[self._previous].config)}
        keys, old_keys = self._keys[self.method.value], self._keys[self._previous]
        for option in options(self._entries[self.method.value].config):
            key = keys.get(option.name)
            if key is None or option.default is None:
                continue
            widgets = self.fields[key][1]
            shown_before = option.name in old and old_keys.get(option.name) == key
            if shown_before:
                before = old[option.name]
                if before is None or before == option.default:
                    continue
                if _field_value(option, widgets) != _field_value(option, None, before):
                    continue  # the user's own value
            _set_field(option, widgets, option.default)
        self._previous = self.method.value
        self._toggle()

    def _toggle(self, _=None) -> None:
        method = self.method.value
        own = set(self._keys[method].values())
        for key, (_, widgets) in self.fields.items():
            for w in widgets:
                w.visible = key in own
        calibration = self._needs_calibration()
        self.calibration.visible = calibration
        self.calibration_file.visible = calibration and self.calibration.value == _FILE
        self.dropout.visible = "architecture" in self._own[method] and method == "dernet"
        inputs = {i.name for i in self._entries[method].inputs}
        for name, edit in self.data_files.items():
            edit.visible = name in inputs
        self._bound_options_height()

    def _values(self) -> dict:
        """The current method's config values from the fields."""
        from ..nn.trainers import options

        values = {}
        keys = self._keys[self.method.value]
        for option in options(self._entries[self.method.value].config):
            if option.name not in keys:
                continue
            widgets = self.fields[keys[option.name]][1]
            if option.kind == "pair" and option.meta.get("nargs") == "+":
                text = str(widgets[0].value)
                try:
                    values[option.name] = tuple(int(v) for v in text.replace(",", " ").split())
                except ValueError:
                    raise ValueError(
                        f"{option.label}: expected whole numbers separated by spaces, got {text!r}"
                    ) from None
                if not values[option.name]:
                    raise ValueError(f"{option.label}: give at least one number")
            elif option.kind == "pair":
                values[option.name] = tuple(w.value for w in widgets)
            elif option.kind == "path":
                values[option.name] = self._init_from() if option.name == "init_from" else None
            elif option.name == "phantom_mix":
                from ..simulation.phantom_mix import parse_mix

                values[option.name] = parse_mix(str(widgets[0].value), option.label)
            else:
                values[option.name] = widgets[0].value
        if "snr_threshold" in values:
            values["snr_threshold"] = values["snr_threshold"] or None  # 0: every row
        if "snr_range" in values:
            values["snr_range"] = self._snr_range()
        if self.method.value == "dernet":
            values["architecture"] = {"dropout0": self.dropout.value,
                                      "dropout1": self.dropout.value}  # fmt: skip
        return values

    def _calibration_source(self):
        """The chosen layer's system matrix, or the chosen file's path (checked to exist; it is
        read in the worker, never on napari's main thread)."""
        cal = self.calibration.value
        if cal == _FILE:
            path = Path(self.calibration_file.value)
            if not path.is_file():
                raise ValueError(f"calibration file: {path} does not exist")
            return path
        return cal.metadata["system_matrix"]

    def _data_file(self, inp) -> str | None:
        """The file chosen for an ``.npz`` input (None when empty and not required)."""
        text = str(self.data_files[inp.name].value).strip()
        if text in ("", "."):
            if inp.required:
                raise ValueError(f"{inp.name}: choose an .npz file ({inp.help})")
            return None
        if not Path(text).is_file():
            hint = " (leave empty for procedural)" if inp.name == "phantoms" else ""
            raise ValueError(f"{inp.name}: {text} is not a file{hint}")
        return text

    def _output(self, resume: bool = False) -> Path:
        text = str(self.output.value).strip()
        if text in ("", "."):
            raise ValueError("model folder: choose a folder to write model.pt and card.json to")
        out = Path(text)
        if out.exists() and not out.is_dir():
            raise ValueError(f"model folder: {out} is a file, not a folder")
        holds = (out / WEIGHTS).exists() or (out / CARD).exists()
        if holds and not self.overwrite.value and not resume:
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
        from ..nn.trainers import config_from

        method = self.method.value
        entry = self._entries[method]
        values = self._values()
        out = self._output(resume=bool(values.get("resume")))
        values["command"] = f"napari-mpi Training widget: {method} -> {out}"
        config = config_from(entry, values)
        inputs = {i.name: self._data_file(i) for i in entry.inputs if i.kind == "npz"}
        source = self._calibration_source() if self._needs_calibration() else None

        def run():
            if isinstance(source, Path):  # read in the worker: a large file never freezes napari
                yield Progress(0, 1, f"reading {source.name}", {"phase": "reading calibration"})
                with read_mdf(source) as f:
                    inputs["calibration"] = f.system_matrix()
            elif source is not None:
                inputs["calibration"] = source
            return (yield from entry.train(config, out, **inputs))

        return run

    # -- running -------------------------------------------------------------------------------
    def _done(self, card: dict) -> None:
        self.card = card
        self._draw()
        metrics = card.get("metrics", {}) if card else {}
        best = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if k.startswith("val_"))
        self.status.value = f"done: best checkpoint in {self.output.value} ({best})"
        self.phase.value = "done"

    def _on_progress(self, step) -> None:
        super()._on_progress(step)
        info = step.info
        phase = info.get("phase", "")
        now = time.monotonic()
        if phase != self._last_phase or now - self._last_phase_text >= _workers.STATUS_INTERVAL:
            # each label change costs the main thread tens of ms: at most once a second
            self._last_phase, self._last_phase_text = phase, now
            if phase == "training" or (phase == "validating" and "epoch" in info):
                epoch, at = info.get("epoch"), info.get("step")
                self.phase.value = f"{phase} (epoch {epoch}, step {at})"
            else:
                self.phase.value = f"{phase} ({step.message})" if phase else step.message
        if "loss" in info and phase != "validating":
            self.history["step"].append(info.get("step", step.done))
            self.history["loss"].append(info["loss"])
            # the terms of a loss with several (a GAN's loss_d, loss_gan, ...), each plotted
            for key, value in info.items():
                if key.startswith("loss_") and isinstance(value, (int, float)):
                    self.history["terms"].setdefault(key, []).append(float(value))
        key = next((k for k in VAL_KEYS if k in info), None)
        if key is not None:
            self.val_key = key
            self.history["val_step"].append(info.get("step", step.done))
            self.history["val"].append(info[key])
            if info.get("best"):
                self._written = {"epoch": info.get("epoch"), key: info[key]}
            self._draw()
        elif time.monotonic() - self._last_draw > REDRAW_INTERVAL and self._history_changed():
            self._draw()

    def start(self) -> None:
        """Check the inputs, then train in a worker."""
        if self.state == "running":
            return
        try:
            work = self.work()
        except (ValueError, OSError, KeyError) as exc:
            self.fail(exc)
            return
        self.history = {"step": [], "loss": [], "val_step": [], "val": [], "terms": {}}
        self.val_key, self.card, self._written = "", None, None
        self._last_phase, self._last_phase_text = None, -float("inf")
        self._run_id += 1  # a new run draws new axes
        self._drawn = (0, 0)
        self.launch(work, self._done)

    def _on_finished(self) -> None:
        super()._on_finished()
        if self.state == "cancelled":
            self.status.value = self.cancel_message()
            self.phase.value = "cancelled"

    def cancel_message(self) -> str:
        """What a cancelled run kept, truthfully."""
        if self._written is None:
            return "cancelled: nothing written yet (no epoch had finished)"
        shown = ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                          for k, v in self._written.items())  # fmt: skip
        return (
            f"cancelled: the best checkpoint written so far is kept in {self.output.value} "
            f"({shown}), and the last epoch's state in last.pt (to continue: tick "
            "'resume the run in the model folder')"
        )

    def _history_changed(self) -> bool:
        """True when the history has points the plot does not show yet (no redraw, which costs
        the main thread a matplotlib render, while samples are made or nothing is new)."""
        return self._drawn != (len(self.history["loss"]), len(self.history["val"]))

    def _draw(self) -> None:
        """Show the history. The figure is drawn off the main thread (:class:`BackgroundCanvas`):
        this queues a job with a copy of the history; the axes and lines are made once per run
        and their data updated afterwards (rebuilding the figure at every redraw cost 0.7-1.7 s
        on the 2-core test machine)."""
        self._last_draw = time.monotonic()
        self._drawn = (len(self.history["loss"]), len(self.history["val"]))
        h = {key: list(values) for key, values in self.history.items() if key != "terms"}
        h["terms"] = {key: list(values) for key, values in self.history.get("terms", {}).items()}
        gain = self.val_key == "val_gain_db"
        label = "validation gain (dB)" if gain else "validation PSNR (dB)"
        colors, run = theme_colors(self.viewer), self._run_id
        self._canvas.submit(lambda fig: self._plot_history(fig, h, label, colors, run))

    @staticmethod
    def _plot_empty(fig, colors: dict) -> None:
        """The plot before a training: its empty axes in the viewer's theme (a blank figure
        is a white box in napari's dark theme)."""
        fig.clear()
        fig.set_layout_engine("none")
        fig.subplots_adjust(left=0.2, right=0.8, bottom=0.2, top=0.95)
        ax = fig.add_subplot(111)
        style_axes(fig, [ax], colors)
        ax.set_xlabel("step")
        ax.set_ylabel("training loss")
        ax.text(0.5, 0.5, "losses appear here during a training", ha="center", va="center",
                transform=ax.transAxes, color=colors["text"], fontsize="small")  # fmt: skip

    def _plot_history(self, fig, h: dict, label: str, colors: dict, run: int) -> None:
        """Draw ``h`` into ``fig`` (runs in the canvas's render thread)."""
        if self._lines is None or self._lines[2] != run:
            fig.clear()
            # fixed margins: matplotlib's tight layout re-measures every tick label at each
            # render
            fig.set_layout_engine("none")
            fig.subplots_adjust(left=0.2, right=0.8, bottom=0.2, top=0.95)
            ax = fig.add_subplot(111)
            style_axes(fig, [ax], colors)
            ax.set_xlabel("step")
            ax.set_ylabel("training loss")
            ax2 = ax.twinx()
            style_axes(fig, [ax2], colors)
            ax2.grid(False)
            (loss,) = ax.plot([], [], lw=0.8, color="tab:blue", label="training loss")
            (val,) = ax2.plot([], [], "o-", color="tab:orange", ms=3)
            self._lines = (loss, val, run)
            self._term_lines = {}
        loss, val, _ = self._lines
        ax, ax2 = loss.axes, val.axes
        loss.set_data(h["step"], h["loss"])
        values = list(h["loss"])
        for i, (key, term) in enumerate(sorted(h.get("terms", {}).items())):
            if key not in self._term_lines:
                color = TERM_COLORS[i % len(TERM_COLORS)]
                (self._term_lines[key],) = ax.plot([], [], lw=0.6, color=color, label=key)
                style_legend(ax.legend(fontsize="x-small", loc="upper right"), colors)
            steps = h["step"][-len(term) :] if term else []
            self._term_lines[key].set_data(steps, term)
            values += term
        if values:
            # log only when the losses span more than a decade (else the ticks are unreadable)
            low, high = min(values), max(values)
            ax.set_yscale("log" if low > 0 and high > 10 * low else "linear")
        val.set_data(h["val_step"], h["val"])
        val.set_label(label)
        ax2.set_ylabel(label if h["val"] else "")
        ax2.set_visible(bool(h["val"]))
        for axis in (ax, ax2):
            axis.relim()
            axis.autoscale_view()
