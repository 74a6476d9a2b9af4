"""Measure how responsive the Qt event loop stays: the largest gap between 10 ms timer ticks.

Used by the GUI responsiveness test and ``benchmarks/bench_gui_responsiveness.py``.
"""

from __future__ import annotations

import time


class TickGapMeter:
    """Record the largest interval (s) between ticks of a ``interval_ms`` QTimer.

    Start it, let the event loop run (e.g. while a worker computes), then read
    :attr:`max_gap`. A stalled main thread shows up as one long gap.
    """

    def __init__(self, interval_ms: int = 10) -> None:
        from qtpy.QtCore import QTimer

        self._timer = QTimer()
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)
        self._last: float | None = None
        self.max_gap = 0.0
        self.ticks = 0

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.max_gap = max(self.max_gap, now - self._last)
        self._last = now
        self.ticks += 1

    def start(self) -> TickGapMeter:
        """Start (or restart) measuring."""
        self.max_gap, self.ticks, self._last = 0.0, 0, None
        self._timer.start()
        return self

    def mark(self) -> float:
        """The largest gap since the start or the previous mark; starts a new phase."""
        gap, self.max_gap = self.max_gap, 0.0
        return gap

    def stop(self) -> float:
        """Stop measuring; returns the largest gap (s)."""
        self._timer.stop()
        return self.max_gap


def run_until(predicate, timeout: float = 600.0, step_ms: int = 5) -> bool:
    """Process Qt events until ``predicate()`` is true or ``timeout`` seconds pass."""
    from qtpy.QtCore import QCoreApplication, QEventLoop

    app = QCoreApplication.instance()
    t_end = time.perf_counter() + timeout
    while not predicate():
        if time.perf_counter() > t_end:
            return False
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, step_ms)
        time.sleep(0.001)
    return True
