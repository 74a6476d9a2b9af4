"""Run a progress generator either in a napari thread worker or, for tests, synchronously.

Set ``NAPARI_MPI_SYNC=1`` to run the work in the calling thread: the same generator and the
same callbacks, without threads (the tests use it to exercise the widget code without races).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Generator
from typing import Any

from ..progress import Progress


def sync_mode() -> bool:
    """True when NAPARI_MPI_SYNC asks for synchronous work."""
    return os.environ.get("NAPARI_MPI_SYNC", "").lower() in ("1", "true", "yes")


def start(
    work: Callable[[], Generator[Progress, None, Any]],
    on_progress: Callable[[Progress], None],
    on_done: Callable[[Any], None],
    on_error: Callable[[Exception], None],
    on_finished: Callable[[], None],
):
    """Start ``work()``; returns the napari worker (None in sync mode).

    ``on_finished`` always runs last, after success, error or cancellation.
    """
    if sync_mode():
        try:
            gen = work()
            while True:
                try:
                    on_progress(next(gen))
                except StopIteration as stop:
                    on_done(stop.value)
                    break
        except Exception as exc:  # reported to the user, never left half-done
            on_error(exc)
        finally:
            on_finished()
        return None

    from napari.qt.threading import create_worker

    def generator():  # a generator function, so napari makes a GeneratorWorker (quit, yielded)
        return (yield from work())

    worker = create_worker(generator, _start_thread=False)
    worker.yielded.connect(on_progress)
    worker.returned.connect(on_done)
    worker.errored.connect(on_error)
    worker.finished.connect(on_finished)
    worker.start()
    return worker


class WorkerWidgetMixin:
    """Run state shared by the dock widgets: one worker at a time, progress, cancel, errors.

    The widget provides ``run_button``, ``cancel_button``, ``progress``, ``status`` and
    ``task_title``; state is one of idle, running, done, cancelled, failed. Whatever happens,
    the buttons end up usable again.
    """

    task_title = "task"

    def _run_controls(self, run_text: str) -> list:
        """Create the run/cancel buttons, progress bar and status line (in display order)."""
        from magicgui.widgets import Label, ProgressBar, PushButton

        self.run_button = PushButton(text=run_text)
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", value=0, min=0, max=100)
        self.status = Label(label="status", value="idle")
        return [self.run_button, self.cancel_button, self.progress, self.status]

    def _init_run_state(self) -> None:
        self.worker = None
        self.state = "idle"
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)

    def launch(self, work: Callable[[], Generator[Progress, None, Any]], on_done) -> None:
        """Start ``work()`` in a worker (or synchronously in sync mode)."""
        self.state = "running"
        self.progress.value = 0
        self.status.value = "running"
        self.run_button.enabled, self.cancel_button.enabled = False, True

        def done(result: Any) -> None:
            if self.state != "cancelled":
                on_done(result)
                self.state = "done"

        self.worker = start(work, self._on_progress, done, self.fail, self._on_finished)

    def cancel(self) -> None:
        """Stop at the next progress step; nothing is added."""
        if self.worker is not None and self.state == "running":
            self.state = "cancelled"
            self.status.value = "cancelling..."
            self.worker.quit()

    def fail(self, exc: Exception) -> None:
        """Report an error in the status line and as a napari notification."""
        self.state = "failed"
        self.status.value = f"error: {exc}"
        from napari.utils.notifications import show_error

        show_error(f"napari-mpi {self.task_title}: {exc}")

    def _on_progress(self, step: Progress) -> None:
        self.progress.value = int(100 * step.fraction)
        self.status.value = f"{step.message} ({step.done}/{step.total})"

    def _on_finished(self) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        if self.state == "cancelled":
            self.status.value = "cancelled"
        self.worker = None
