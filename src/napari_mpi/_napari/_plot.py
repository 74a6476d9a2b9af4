"""A matplotlib canvas docked at the bottom of a magicgui container, in napari's theme."""

from __future__ import annotations


def dock_canvas(container, canvas=None, min_height: int = 240):
    """Return ``canvas``, or a new Qt matplotlib canvas added to ``container``'s layout."""
    if canvas is not None:
        return canvas
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure
    from qtpy.QtWidgets import QSizePolicy

    canvas = FigureCanvasQTAgg(Figure(figsize=(4, 3), layout="tight"))
    canvas.setMinimumHeight(min_height)
    canvas.setMinimumWidth(0)
    # the plot takes the dock's width, never widens it
    canvas.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    container.native.layout().addWidget(canvas)
    return canvas


def theme_colors(viewer) -> dict[str, str]:
    """Background, axes face, text and grid colours (hex) of the viewer's napari theme."""
    try:
        from napari.utils.theme import get_theme

        theme = get_theme(viewer.theme if viewer is not None else "dark")
        return {
            "background": theme.background.as_hex(),
            "face": theme.foreground.as_hex(),
            "text": theme.text.as_hex(),
            "grid": theme.highlight.as_hex(),
        }
    except Exception:  # unknown theme name: matplotlib's defaults
        return {"background": "#ffffff", "face": "#ffffff", "text": "#000000", "grid": "#cccccc"}


def style_axes(fig, axes, viewer, grid: bool | None = True) -> dict[str, str]:
    """Colour a figure and its axes like the viewer's theme; returns the colours.

    ``viewer`` may also be the colours themselves (:func:`theme_colors`'s dict). ``grid``:
    True draws the theme's grid, None recolours the grid lines as they are (on or off), False
    leaves the grid alone.
    """
    colors = viewer if isinstance(viewer, dict) else theme_colors(viewer)
    fig.set_facecolor(colors["background"])
    for ax in axes:
        ax.set_facecolor(colors["face"])
        ax.tick_params(colors=colors["text"], which="both")
        for spine in ax.spines.values():
            spine.set_color(colors["text"])
        ax.xaxis.label.set_color(colors["text"])
        ax.yaxis.label.set_color(colors["text"])
        ax.title.set_color(colors["text"])
        if grid:
            ax.grid(True, color=colors["grid"], lw=0.4, alpha=0.6)
        elif grid is None:
            for line in (*ax.get_xgridlines(), *ax.get_ygridlines()):
                line.set_color(colors["grid"])
    return colors


def restyle(fig, viewer) -> dict[str, str]:
    """Recolour a drawn figure (every axes and legend) for the viewer's current theme (or for
    ``theme_colors``' dict)."""
    colors = style_axes(fig, fig.axes, viewer, grid=None)
    for ax in fig.axes:
        style_legend(ax.get_legend(), colors)
    return colors


class ThemedPlotMixin:
    """For a widget with ``viewer`` and a matplotlib ``_canvas`` (or None): the plot is
    recoloured when napari's theme changes (View > Theme, ``viewer.theme = "light"``)."""

    def _follow_theme(self) -> None:
        """Connect the viewer's theme event (call once, in ``__init__``)."""
        try:
            self.viewer.events.theme.connect(self._on_theme)
        except AttributeError:  # a viewer model without a theme event: nothing to follow
            pass

    def _on_theme(self, _event=None) -> None:
        canvas = getattr(self, "_canvas", None)
        if canvas is None:
            return
        colors = theme_colors(self.viewer)
        if isinstance(canvas, BackgroundCanvas):  # its figure belongs to its render thread
            canvas.submit(lambda fig: restyle(fig, colors))
            return
        try:
            restyle(canvas.figure, colors)
            canvas.draw_idle()
        except RuntimeError:  # the widget's Qt canvas was deleted with its dock
            pass


def style_legend(legend, colors: dict[str, str]) -> None:
    """Legend text and frame in the theme's colours."""
    if legend is None:
        return
    legend.get_frame().set_facecolor(colors["face"])
    legend.get_frame().set_edgecolor(colors["grid"])
    for text in legend.get_texts():
        text.set_color(colors["text"])


class BackgroundCanvas:
    """A matplotlib figure rendered off napari's main thread and shown as a picture.

    For plots that change while a worker runs (the Training widget's live loss). Rendering a
    figure is pure Python for the most part (tick labels, text layout), 0.1-0.3 s per render on
    the 2-core test machine; on the main thread each render was one stall of the event loop, up
    to 0.4-0.6 s while a training competed for the CPU. Here the figure lives in its own
    thread: :meth:`submit` queues a job ``job(figure)`` (every change to the figure goes through
    one), the thread applies the queued jobs in order, renders with Agg and hands the pixels to
    the main thread, which only swaps a pixmap. Python's GIL is shared in slices of a few ms,
    so a render no longer blocks the event loop in one piece. In synchronous mode
    (``NAPARI_MPI_SYNC``, the tests) jobs run and render at once in the calling thread.

    ``figure`` may be read directly once the jobs have run (tests, synchronous mode).
    """

    def __init__(self, container, min_height: int = 240) -> None:
        import threading

        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
        from qtpy.QtCore import QObject, QSize, Qt, Signal
        from qtpy.QtWidgets import QLabel, QSizePolicy

        class _Bridge(QObject):
            ready = Signal(object)

        owner = self

        class _PlotLabel(QLabel):
            def resizeEvent(self, event):
                super().resizeEvent(event)
                owner._resized(event.size().width(), event.size().height())

            def sizeHint(self):  # as a matplotlib Qt canvas: the figure's 4 x 3 in, not the
                return QSize(400, 300)  # picture's size (which follows the label's)

        self.figure = Figure(figsize=(4, 3), dpi=100)
        self._agg = FigureCanvasAgg(self.figure)
        self.native = _PlotLabel()
        self.native.setMinimumHeight(min_height)
        self.native.setMinimumWidth(0)
        self.native.setAlignment(Qt.AlignmentFlag.AlignCenter)
        # the plot takes the dock's width, never widens it; its height as a matplotlib canvas's
        self.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        container.native.layout().addWidget(self.native)
        self._bridge = _Bridge()
        self._bridge.ready.connect(self._show)
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._jobs: list = []
        self._pending = False
        self._size: tuple[int, int] | None = None  # device pixels
        self._ratio = 1.0
        self._thread: threading.Thread | None = None
        self.renders = 0

    def submit(self, job=None) -> None:
        """Queue ``job(figure)`` (None: only re-render) and wake the render thread."""
        from ._workers import sync_mode

        sync = sync_mode()
        thread = None
        with self._lock:
            if job is not None:
                self._jobs.append(job)
            self._pending = True
            if not sync and self._thread is None:  # decided under the lock: one thread at most
                import threading

                thread = threading.Thread(target=self._loop, name="napari-mpi plot", daemon=True)
                self._thread = thread
        if sync:
            self._render_pending()
            return
        if thread is not None:
            thread.start()
        self._wake.set()

    def draw_idle(self) -> None:
        """Re-render (after the queued jobs)."""
        self.submit(None)

    def _resized(self, width: int, height: int) -> None:
        ratio = float(self.native.devicePixelRatioF())  # HiDPI screens: render sharp
        size = (round(width * ratio), round(height * ratio))
        if width > 0 and height > 0 and size != self._size:
            self._size, self._ratio = size, ratio
            self.submit(None)

    def _loop(self) -> None:
        from ._workers import lower_thread_priority

        lower_thread_priority()
        while True:
            woke = self._wake.wait(timeout=60.0)
            self._wake.clear()
            if not woke:
                with self._lock:  # idle for a minute: end, unless a job came meanwhile
                    if not self._pending:
                        self._thread = None  # the next submit starts another
                        return
            self._render_pending()

    def _render_pending(self) -> None:
        from ._workers import sync_mode

        with self._lock:
            jobs, self._jobs = self._jobs, []
            size, pending, self._pending = self._size, self._pending, False
        if not pending:
            return
        import sys
        import traceback

        import numpy as np

        def attempt(step) -> bool:
            """Run one step; a failure is reported (raised in synchronous mode) and skipped,
            never the end of the render thread."""
            try:
                step()
                return True
            except Exception:
                if sync_mode():
                    raise
                traceback.print_exc(file=sys.stderr)
                return False

        for job in jobs:
            attempt(lambda job=job: job(self.figure))
        if size is not None:
            dpi = self.figure.dpi
            self.figure.set_size_inches(size[0] / dpi, size[1] / dpi, forward=False)
        if not attempt(self._agg.draw):
            return
        pixels = np.array(self._agg.buffer_rgba(), copy=True)
        self.renders += 1
        self._bridge.ready.emit(pixels)

    def _show(self, pixels) -> None:
        """On the main thread: show the rendered pixels (a few ms)."""
        from qtpy.QtGui import QImage, QPixmap

        try:
            height, width = pixels.shape[:2]
            image = QImage(pixels.data, width, height, 4 * width, QImage.Format.Format_RGBA8888)
            pixmap = QPixmap.fromImage(image)
            pixmap.setDevicePixelRatio(self._ratio)
            self.native.setPixmap(pixmap)
        except RuntimeError:  # the label was deleted with its dock
            pass
