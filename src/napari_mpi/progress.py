"""Long work as generators: they yield :class:`Progress` and return their result.

The CLI progress bar, the napari thread workers and the tests all drive the same generators;
a consumer can stop the work at any ``yield`` by closing the generator.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Progress:
    """One step of a long computation.

    Attributes
    ----------
    done, total : int
        Steps done and steps in all.
    message : str
        One line for a progress bar.
    info : dict
        Numbers a consumer may plot or log, e.g. a training's ``epoch``, ``loss`` and
        ``val_psnr_db``; empty when the work has nothing to report beyond the count.
    """

    done: int
    total: int
    message: str = ""
    info: dict = field(default_factory=dict, compare=False)

    @property
    def fraction(self) -> float:
        """Share of the work done, 0 to 1."""
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)


def run(
    work: Generator[Progress, None, T], callback: Callable[[Progress], object] | None = None
) -> T:
    """Drive a progress generator to the end and return its result."""
    while True:
        try:
            step = next(work)
        except StopIteration as stop:
            return stop.value
        if callback is not None:
            callback(step)


def remap(
    work: Generator[Progress, None, T], fn: Callable[[Progress], Progress]
) -> Generator[Progress, None, T]:
    """``work`` with each step replaced by ``fn(step)`` (e.g. another message, a phase or a
    count within a larger total); returns ``work``'s result. Use as
    ``result = yield from remap(work, fn)``."""
    while True:
        try:
            step = next(work)
        except StopIteration as stop:
            return stop.value
        yield fn(step)
