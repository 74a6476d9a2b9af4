"""The one exception type of the MDF reader and writer."""

from __future__ import annotations

from os import PathLike


class MDFError(ValueError):
    """A file is not a valid MDF file, or a field in it is missing or malformed.

    Parameters
    ----------
    path : str or PathLike
        The file concerned.
    field : str or None
        The HDF5 path of the offending field (``"measurement/data"``), or None when the
        problem concerns the whole file.
    message : str
        What was expected and what was found.
    """

    def __init__(self, path: str | PathLike | None, field: str | None, message: str) -> None:
        self.path = None if path is None else str(path)
        self.field = field
        self.reason = message
        where = self.path or "<MDF>"
        text = f"{where}: field '{field}': {message}" if field else f"{where}: {message}"
        super().__init__(text)


class MDFFileNotFoundError(MDFError, FileNotFoundError):
    """The MDF file does not exist: both an :class:`MDFError` and a ``FileNotFoundError``."""
