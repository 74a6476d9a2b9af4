"""Argument types and a text progress bar shared by the sub-commands."""

from __future__ import annotations

import argparse
import sys

from ..progress import Progress


class CLIError(Exception):
    """A user-facing error: printed as one line on stderr, no traceback."""


def _number_type(convert, accept, expected: str):
    """An argparse type: ``convert`` the text, then require ``accept(value)``."""

    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {expected}, got '{text}'") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
        return value

    parse.__name__ = expected.replace(" ", "_")
    return parse


def _finite(value: float) -> bool:
    return value == value and value not in (float("inf"), float("-inf"))


#: argparse types: an integer >= 1, an integer >= 0, a finite number > 0, a finite number.
positive_int = _number_type(int, lambda v: v >= 1, "a positive integer")
non_negative_int = _number_type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _number_type(float, lambda v: _finite(v) and v > 0, "a positive number")
finite_float = _number_type(float, _finite, "a finite number")


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
