"""Argument types and a text progress bar shared by the sub-commands."""

from __future__ import annotations

import argparse
import sys

from ..progress import Progress


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got '{text}'") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got '{text}'") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive number, got '{text}'") from None
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return value


def finite_float(text: str) -> float:
    """argparse type: a finite number."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got '{text}'") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"expected a finite number, got {value}")
    return value


class ProgressBar:
    """A one-line progress display on stderr (quiet when ``enabled`` is False)."""

    def __init__(self, enabled: bool = True, width: int = 30) -> None:
        self.enabled = enabled
        self.width = width
        self.tty = sys.stderr.isatty()
        self._last = -1

    def __call__(self, step: Progress) -> None:
        if not self.enabled:
            return
        percent = int(step.fraction * 100)
        if self.tty:
            filled = int(step.fraction * self.width)
            bar = "#" * filled + "-" * (self.width - filled)
            sys.stderr.write(f"\r{step.message:<30} [{bar}] {percent:3d}%")
            if step.done >= step.total:
                sys.stderr.write("\n")
            sys.stderr.flush()
        elif percent // 25 != self._last // 25 or step.done >= step.total:
            sys.stderr.write(f"{step.message}: {percent}%\n")
        self._last = percent
