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


def install(viewer) -> None:
    """Connect the layer hooks and put ``nm`` in the console (once per viewer)."""
    if viewer is None or getattr(viewer, _INSTALLED, False):
        return
    viewer.layers.events.inserted.connect(lambda event: _on_inserted(viewer, event))
    object.__setattr__(viewer, _INSTALLED, True)
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
