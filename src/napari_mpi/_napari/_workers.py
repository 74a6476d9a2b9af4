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
