"""What the viewer does when the plugin adds layers, and the console namespace.

:func:`install` is called once per viewer by every widget, reader call and sample: when a layer
of this plugin arrives, a calibration stack moves the row slider to its strongest row and the
camera frames the physical images (mm); the console gets ``nm`` (the package).
"""

from __future__ import annotations

from typing import Any

from .layers import PHYSICAL_KINDS

_INSTALLED = "_napari_mpi_view_installed"


def show_start_row(viewer, layer) -> None:
    """Move the row slider of a calibration stack to ``metadata["start_row"]``."""
    start = layer.metadata.get("start_row")
    if start is None or layer.ndim < 3:
        return
    axis = viewer.dims.ndim - layer.ndim  # the layer's first axis in world coordinates
    world = float(layer.translate[0] + start * layer.scale[0])
    viewer.dims.set_point(axis, world)


def _on_inserted(viewer, event) -> None:
    layer = event.value
    kind = layer.metadata.get("kind")
    if kind == "calibration":
        show_start_row(viewer, layer)
    if kind in (*PHYSICAL_KINDS, "calibration"):
        viewer.reset_view()


def warm_up() -> None:
    """Pay napari's one-time costs when a widget opens, not when the first result arrives.

    pint's unit registry (~1-3 s on first use) and pandas (imported by the first layer with
    features, ~0.6 s) would otherwise stall the event loop when a worker's layers are added.
    """
    try:
        import pandas  # noqa: F401
        import pint

        _ = pint.get_application_registry().pixel
    except Exception:  # an older napari without these: nothing to warm
        pass
    warm_plots()


#: Characters of the row labels ("row 12: channel 0, 25.699 kHz (bin 33)"), rendered ahead.
_LABEL_CHARS = "row0123456789: channelkHzbipd,.()-"


def warm_glyphs(viewer) -> None:
    """Render the row labels' glyphs into napari's font atlas (~25 ms per new character,
    otherwise paid when the first calibration's labels are drawn). Uses napari internals
    where present; does nothing otherwise."""
    try:
        info = viewer.window._qt_viewer.canvas._font_info
        font = info.font_manager.get_font(info.face)
        for char in _LABEL_CHARS:
            font[char]
    except Exception:  # another napari version: the first draw pays instead
        return


_TORCH_WARM: list = []  # the warm-up thread, once per process


def freeze_loaded_objects(stage: str = "plugin", collect: bool = True) -> None:
    """Exempt every object alive now from later garbage collections (``gc.freeze``), once per
    ``stage`` and process; ``collect`` first collects the garbage there is.

    With napari loaded (and later torch and sympy) the interpreter tracks millions of objects,
    and each full (generation-2) collection walked all of them: 0.1-0.3 s with every thread
    stopped, measured with ``gc.callbacks`` on the 2-core test machine, at moments set by the
    allocation counts: the cause of the 0.26-0.34 s stalls left while a training ran, and of
    occasional ones in other workers. Frozen objects are loaded modules, classes and napari's
    own state, which live as long as the process anyway; later garbage is collected as usual.
    Stages: "plugin" when the first widget, reader or sample of the plugin installs its hooks
    (with a collection, on the main thread, once), "torch" after the torch warm-up (no
    collection: it would stop every thread again, possibly while a worker runs).
    """
    import gc

    if stage in _FROZEN:
        return
    _FROZEN.add(stage)
    if collect:
        gc.collect()
    gc.freeze()


_FROZEN: set[str] = set()


def warm_torch() -> None:
    """Import PyTorch and its optimiser machinery ahead, when a widget that runs networks opens.

    Done for the first time inside a worker, this froze napari's event loop for 0.4-0.7 s
    (2-core test machine under Xvfb, a second training beside it): ``import torch`` and the
    first ``torch.optim.Adam`` (which imports torch._dynamo and sympy, ~800 modules, 2-4 s)
    and its first step hold Python's GIL in long stretches. Here it runs in a background
    thread as soon as the widget opens (synchronously in ``NAPARI_MPI_SYNC`` mode), so the event
    loop keeps its turns in between and a later worker finds everything imported.
    """
    from ._workers import sync_mode

    def load() -> None:
        try:
            import torch

            weight = torch.zeros(4, requires_grad=True)
            optimiser = torch.optim.Adam([weight], lr=1e-3)
            (weight * 2.0).sum().backward()
            optimiser.step()  # the first step initialises its kernels too
        except Exception:  # no torch: the networks say so when run
            return
        freeze_loaded_objects("torch", collect=False)

    if _TORCH_WARM:
        return
    if sync_mode():
        _TORCH_WARM.append(None)
        load()
        return
    import threading

    thread = threading.Thread(target=load, name="napari-mpi torch warm-up", daemon=True)
    _TORCH_WARM.append(thread)
    thread.start()


def warm_plots() -> None:
    """Load matplotlib's Qt backend and fonts (the first plot otherwise stalls for ~1-2 s)."""
    try:
        from io import BytesIO

        from matplotlib.backends import backend_qtagg  # noqa: F401
        from matplotlib.figure import Figure

        fig = Figure(figsize=(1, 1))
        ax = fig.add_subplot(111)
        ax.plot([0, 1], [1, 10])
        ax.set_yscale("log")
        ax.set_xlabel("warm-up 0123456789")
        fig.savefig(BytesIO(), format="png")
    except Exception:  # no matplotlib: the plots say so when drawn
        return


def add_layer_data(viewer, layer_data: list, then=None) -> list:
    """Add layer-data tuples to ``viewer``, one per turn of the Qt event loop.

    Between two layers napari repaints and handles input, so adding several layers never stalls
    the UI for their sum. ``then(layers)`` runs after the last one. In synchronous mode
    (``NAPARI_MPI_SYNC``, the tests) everything is added at once. Returns the layers added so
    far (all of them in synchronous mode).
    """
    from napari.layers import Layer

    from ._workers import sync_mode

    added: list = []
    pending = list(layer_data)

    def add_next() -> None:
        if pending:
            layer = Layer.create(*pending.pop(0))
            viewer.add_layer(layer)
            added.append(layer)
        if pending and not sync_mode():
            from qtpy.QtCore import QTimer

            QTimer.singleShot(0, add_next)
        elif pending:
            add_next()
        elif then is not None:
            then(added)

    if sync_mode():
        add_next()
    else:  # even the first layer: the worker's "returned" handler itself stays short
        from qtpy.QtCore import QTimer

        QTimer.singleShot(0, add_next)
    return added


def install(viewer) -> None:
    """Connect the layer hooks and put ``nm`` in the console (once per viewer)."""
    # napari gives plugin dock widgets a PublicOnlyProxy of the viewer: mark the viewer itself
    viewer = getattr(viewer, "__wrapped__", viewer)
    if viewer is None or getattr(viewer, _INSTALLED, False):
        return
    warm_up()
    freeze_loaded_objects("plugin")
    viewer.layers.events.inserted.connect(lambda event: _on_inserted(viewer, event))
    object.__setattr__(viewer, _INSTALLED, True)
    warm_glyphs(viewer)
    import napari_mpi

    publish(viewer, nm=napari_mpi)


def install_current() -> None:
    """:func:`install` on napari's current viewer, if there is one (readers, samples)."""
    try:
        import napari

        install(napari.current_viewer())
    except Exception:  # no viewer (plain napari.run_reader, scripts): nothing to hook
        return


def publish(viewer, **variables: Any) -> None:
    """Put ``variables`` into the napari console's namespace (kept until the console opens)."""
    try:
        viewer.update_console(variables)
    except Exception:  # a ViewerModel without a window (headless scripts) has no console
        return
