"""A matplotlib canvas docked at the bottom of a magicgui container (created on first use)."""

from __future__ import annotations


def dock_canvas(container, canvas=None, min_height: int = 220):
    """Return ``canvas``, or a new Qt matplotlib canvas added to ``container``'s layout."""
    if canvas is not None:
        return canvas
    from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
    from matplotlib.figure import Figure

    canvas = FigureCanvasQTAgg(Figure(figsize=(4, 3), tight_layout=True))
    canvas.setMinimumHeight(min_height)
    container.native.layout().addWidget(canvas)
    return canvas
