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


def style_axes(fig, axes, viewer) -> dict[str, str]:
    """Colour a figure and its axes like the viewer's theme; returns the colours."""
    colors = theme_colors(viewer)
    fig.set_facecolor(colors["background"])
    for ax in axes:
        ax.set_facecolor(colors["face"])
        ax.tick_params(colors=colors["text"], which="both")
        for spine in ax.spines.values():
            spine.set_color(colors["text"])
        ax.xaxis.label.set_color(colors["text"])
        ax.yaxis.label.set_color(colors["text"])
        ax.title.set_color(colors["text"])
        ax.grid(True, color=colors["grid"], lw=0.4, alpha=0.6)
    return colors


def style_legend(legend, colors: dict[str, str]) -> None:
    """Legend text and frame in the theme's colours."""
    if legend is None:
        return
    legend.get_frame().set_facecolor(colors["face"])
    legend.get_frame().set_edgecolor(colors["grid"])
    for text in legend.get_texts():
        text.set_color(colors["text"])
