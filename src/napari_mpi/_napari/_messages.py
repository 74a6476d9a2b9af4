"""Status lines that wrap inside their dock, and errors reported once.

A status line never widens its dock (and so never the window): its width is whatever the dock
gives it (Qt size policy *Ignored*), its text wraps at spaces, and the full text is also its
tooltip. Expected errors (bad parameters, unreadable files) become one notification with the
message only; anything else becomes one notification that keeps its traceback.
"""

from __future__ import annotations

from ..io import MDFError

#: Errors a user causes and can fix: reported by their message alone.
EXPECTED_ERRORS = (ValueError, KeyError, OSError, MDFError)


def make_wrapping(widget) -> None:
    """Let a magicgui Label's native QLabel wrap and take only the width its dock gives it."""
    from qtpy.QtWidgets import QSizePolicy

    native = widget.native
    native.setWordWrap(True)
    native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
    native.setMinimumWidth(0)

    def follow(value) -> None:
        native.setToolTip(str(value))

    widget.changed.connect(follow)


def status_label(value: str = "", label: str = "status"):
    """A magicgui Label for status text that wraps inside the dock."""
    from magicgui.widgets import Label

    widget = Label(label=label, value=value)
    make_wrapping(widget)
    return widget


def error_text(exc: BaseException) -> str:
    """The message of an error (a KeyError's repr quotes are dropped)."""
    if isinstance(exc, KeyError) and exc.args:
        return str(exc.args[0])
    return str(exc) or type(exc).__name__


def report_error(title: str, exc: BaseException) -> None:
    """Show ``exc`` as one napari notification (traceback kept only for unexpected errors)."""
    from napari.utils.notifications import notification_manager, show_error

    if isinstance(exc, EXPECTED_ERRORS):
        show_error(f"{title}: {error_text(exc)}")
    else:
        notification_manager.receive_error(type(exc), exc, exc.__traceback__)
