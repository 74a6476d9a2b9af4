"""Checks on a path before HDF5 opens it (regular file, clear reasons for bad names)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from .errors import MDFError, MDFFileNotFoundError


def check_regular_file(path: Path) -> int:
    """Refuse anything but an existing regular file before HDF5 opens it; return its size.

    A FIFO or a device would block or stream forever, so they are refused from ``os.stat``
    alone, without opening them.

    Raises
    ------
    MDFFileNotFoundError
        If ``path`` does not exist (or is a dangling symbolic link).
    MDFError
        For a folder, a FIFO, a socket, a device, a name too long, a symbolic-link loop, or
        a path that cannot be examined.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            raise MDFFileNotFoundError(
                path, None, f"is a symbolic link to '{os.readlink(path)}', which does not exist"
            ) from None
        raise MDFFileNotFoundError(path, None, "no such file") from None
    except OSError as exc:
        reasons = {
            errno.ENAMETOOLONG: "the name is too long for the file system",
            errno.ELOOP: "symbolic links loop (too many levels of symbolic links)",
            errno.ENOTDIR: "a part of the path is not a folder",
            errno.EACCES: "permission denied",
        }
        reason = reasons.get(exc.errno, exc.strerror or str(exc))
        raise MDFError(path, None, f"cannot be opened: {reason}") from None
    except (ValueError, TypeError) as exc:  # embedded NUL byte, bad type
        raise MDFError(path, None, f"is not a usable path ({exc})") from None
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        raise MDFError(path, None, "is a directory, expected an MDF (HDF5) file")
    if not stat.S_ISREG(mode):
        kind = (
            "a FIFO (named pipe)"
            if stat.S_ISFIFO(mode)
            else "a character device"
            if stat.S_ISCHR(mode)
            else "a block device"
            if stat.S_ISBLK(mode)
            else "a socket"
            if stat.S_ISSOCK(mode)
            else "not a regular file"
        )
        raise MDFError(path, None, f"is {kind}, expected a regular MDF (HDF5) file")
    return int(st.st_size)
