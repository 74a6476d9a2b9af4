"""Run a progress generator either in a napari thread worker or, for tests, synchronously.

Set ``NAPARI_MPI_SYNC=1`` to run the work in the calling thread: the same generator and the
same callbacks, without threads (the tests use it to exercise the widget code without races).

Keeping napari responsive: in a thread, steps without ``info`` are forwarded at most every
:data:`FORWARD_INTERVAL` seconds (a flood of queued signals starves Qt's timers and repaints),
and the widgets redraw their progress bar and status at most every :data:`UI_INTERVAL` seconds.
A worker's error is reported once, by the widget (the worker is created with its own error
handler, so napari does not re-raise the error on the main thread as a second toast).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from typing import Any

from ..progress import Progress
from ._messages import report_error, status_label

#: Least time (s) between two forwarded progress steps without ``info``.
FORWARD_INTERVAL = 0.05
#: Least time (s) between two updates of a widget's progress bar.
UI_INTERVAL = 0.1
#: Least time (s) between two updates of the status text while work runs (the last step is
#: always shown). In napari's window under Xvfb each change of a status line cost the 2-core
#: machine ~70 ms of the main thread: 100 Richardson-Lucy iterations of the example-3d scan
#: took 7.2 s with the text set every 0.1 s and 2.5 s with the bar alone.
STATUS_INTERVAL = 1.0


#: Niceness added to the plugin's worker and plot threads (Linux), so that on a busy machine
#: the scheduler runs napari's main thread first when both are ready.
BACKGROUND_NICENESS = 5


def lower_thread_priority(increment: int = BACKGROUND_NICENESS) -> None:
    """Make the calling thread yield the CPU to napari's main thread: its niceness becomes the
    main thread's + ``increment`` (Linux threads have their own niceness; the main thread's id
    is the process id; elsewhere nothing happens). Idempotent: a pooled worker thread that
    runs many workers is lowered once, not once per worker. Never raises."""
    import threading

    if threading.current_thread() is threading.main_thread() or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        target = min(19, os.getpriority(os.PRIO_PROCESS, os.getpid()) + increment)
        if os.getpriority(os.PRIO_PROCESS, tid) < target:
            os.setpriority(os.PRIO_PROCESS, tid, target)
    except (OSError, AttributeError):  # not permitted or not supported: keep the priority
        return


def sync_mode() -> bool:
    """True when NAPARI_MPI_SYNC asks for synchronous work."""
    return os.environ.get("NAPARI_MPI_SYNC", "").lower() in ("1", "true", "yes")


def throttled(
    gen: Generator[Progress, None, Any], interval: float = FORWARD_INTERVAL
) -> Generator[Progress, None, Any]:
    """Forward ``gen``'s steps, dropping those without ``info`` that come within ``interval``.

    Steps that carry numbers (``info``, e.g. a training loss) are always forwarded; the
    result is returned unchanged. Closing this generator closes ``gen``.
    """
    last = -float("inf")
    try:
        while True:
            try:
                step = next(gen)
            except StopIteration as stop:
                return stop.value
            now = time.monotonic()
            info = getattr(step, "info", None)
            if info or now - last >= interval:
                last = now
                yield step
    finally:
        gen.close()


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
        lower_thread_priority()  # the event loop first when the CPU is short
        return (yield from throttled(work()))

    # errored is given at creation: otherwise the error is also re-raised on the main thread
    # (a second toast and a traceback with locals on the terminal)
    worker = create_worker(generator, _start_thread=False, _connect={"errored": on_error})
    worker.yielded.connect(on_progress)
    worker.returned.connect(on_done)
    worker.finished.connect(on_finished)
    worker.start()
    return worker


def set_progress_later(bar, value: int) -> None:
    """Set a magicgui ProgressBar's value without the synchronous repaint QProgressBar does.

    ``QProgressBar.setValue`` repaints at once; in napari's window (an OpenGL canvas composited
    into the same top-level window) one repaint cost 70-290 ms of the main thread on the 2-core
    test machine under Xvfb. With updates switched off around the call, re-enabling them
    schedules an ordinary update, which Qt merges with the status line's into one paint.
    """
    native = bar.native
    qbar = native if hasattr(native, "setUpdatesEnabled") else None
    if qbar is None:
        bar.value = value
        return
    qbar.setUpdatesEnabled(False)
    try:
        bar.value = value
    finally:
        qbar.setUpdatesEnabled(True)


class WorkerWidgetMixin:
    """Run state shared by the dock widgets: one worker at a time, progress, cancel, errors.

    The widget provides ``run_button``, ``cancel_button``, ``progress``, ``status`` and
    ``task_title``; state is one of idle, running, done, cancelled, failed. Whatever happens,
    the buttons end up usable again.
    """

    task_title = "task"

    def _run_controls(self, run_text: str) -> list:
        """Create the run/cancel buttons, progress bar and status line (in display order)."""
        from magicgui.widgets import ProgressBar, PushButton

        self.run_button = PushButton(text=run_text)
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.progress = ProgressBar(label="progress", value=0, min=0, max=100)
        self.status = status_label("idle")
        return [self.run_button, self.cancel_button, self.progress, self.status]

    def _init_run_state(self) -> None:
        self.worker = None
        self.state = "idle"
        self.result = None  # the last result (also in the napari console)
        self._last_ui = -float("inf")
        self._last_status = -float("inf")
        self._pending: Progress | None = None
        self.run_button.clicked.connect(self.start)
        self.cancel_button.clicked.connect(self.cancel)
        from . import view

        view.install(getattr(self, "viewer", None))

    def launch(self, work: Callable[[], Generator[Progress, None, Any]], on_done) -> None:
        """Start ``work()`` in a worker (or synchronously in sync mode)."""
        self.state = "running"
        self.progress.value = 0
        self.status.value = "running"
        self._last_ui, self._last_status, self._pending = -float("inf"), -float("inf"), None
        self.run_button.enabled, self.cancel_button.enabled = False, True

        def done(result: Any) -> None:
            if self.state != "cancelled":
                self._pending = None
                self.progress.value = 100
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
        """Report an error once: in the status line and as one napari notification."""
        self.state = "failed"
        self._pending = None
        self.status.value = f"error: {exc}"
        report_error(f"napari-mpi {self.task_title}", exc)

    def _on_progress(self, step: Progress) -> None:
        """Keep the latest step; redraw the bar and the status line at most every UI_INTERVAL."""
        self._pending = step
        now = time.monotonic()
        if now - self._last_ui >= UI_INTERVAL or step.done >= step.total:
            self._last_ui = now
            self._show_progress(step)

    def _show_progress(self, step: Progress) -> None:
        """The bar at every UI update, the status text at most every STATUS_INTERVAL."""
        if self.state != "running":
            return
        value = int(100 * step.fraction)
        if value != self.progress.value:
            set_progress_later(self.progress, value)
        now = time.monotonic()
        if now - self._last_status >= STATUS_INTERVAL or step.done >= step.total:
            self._last_status = now
            self.status.value = f"{step.message} ({step.done}/{step.total})"

    @property
    def busy(self) -> bool:
        """True while the worker runs or its result's layers are still being added."""
        return self.state == "running" or getattr(self, "_layers_pending", 0) > 0

    def add_result_layers(self, layer_data: list, then=None) -> list:
        """Add layer-data tuples to the viewer one per event-loop turn; ``then(layers)`` after."""
        from . import view

        self._layers_pending = getattr(self, "_layers_pending", 0) + 1

        def finished(layers: list) -> None:
            self._layers_pending -= 1
            if then is not None:
                then(layers)

        return view.add_layer_data(self.viewer, layer_data, finished)

    def _on_finished(self) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        if self.state == "cancelled":
            self.status.value = "cancelled"
        self.worker = None
