"""Writing an HDF5 file safely: temporary file, no-clobber publication, full-disk handling.

* The file is written to a hidden temporary name in the target folder,
  ``.NAME.napari-mpi-PID-XXXXXXXX.tmp``, and published only when complete.
* Without ``overwrite`` it is published with ``os.link`` (which fails if the target exists,
  atomically, whatever another process does meanwhile) and the temporary name is then removed;
  an existing target, also a dangling symbolic link, is never replaced. With ``overwrite`` it is
  published with ``os.replace`` (a symbolic link at the target is replaced, not followed).
* HDF5 writes through a Python file object (h5py's ``fileobj`` driver) that never lets a write
  error reach HDF5: on the first failure (a full disk, a file-size limit, an I/O error) it keeps
  the error and discards the rest. HDF5 then closes normally (when its own write calls fail,
  h5py can crash the interpreter while closing); the temporary file is removed and the error is
  raised as :class:`MDFWriteError`, an ``OSError`` with the original ``errno``.
* Temporary files of this naming left by a killed process (whose process id is gone) are removed
  on the next write to the same folder, with a warning naming them.
"""

from __future__ import annotations

import contextlib
import errno as errno_mod
import io
import os
import re
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import h5py

#: ``.NAME.napari-mpi-PID-HEX.tmp`` (current) and ``.NAME.HEX.tmp`` (before version 0.3).
TEMP_PATTERN = re.compile(r"^\..+\.napari-mpi-(?P<pid>\d+)-[0-9a-f]{8}\.tmp$")
LEGACY_TEMP_PATTERN = re.compile(r"^\..+\.[0-9a-f]{8}\.tmp$")
#: A legacy temporary file (no process id in its name) is stale after this many seconds.
LEGACY_STALE_SECONDS = 3600.0


class MDFWriteError(OSError):
    """Writing a file failed (full disk, file-size limit, I/O error); nothing was left behind."""


def temp_name(target: Path) -> Path:
    """The temporary file beside ``target`` that this process writes first."""
    return target.with_name(f".{target.name}.napari-mpi-{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp")


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def clean_stale_temps(folder: Path) -> list[Path]:
    """Remove temporary files of this project's naming left by processes that are gone.

    Returns the files removed; a :class:`UserWarning` names them (and any that could not be
    removed).
    """
    removed: list[Path] = []
    failed: list[str] = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        name = entry.name
        if not name.startswith(".") or not name.endswith(".tmp"):
            continue
        match = TEMP_PATTERN.match(name)
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            if match:
                stale = not _pid_alive(int(match.group("pid")))
            elif LEGACY_TEMP_PATTERN.match(name):
                stale = now - entry.stat(follow_symlinks=False).st_mtime > LEGACY_STALE_SECONDS
            else:
                continue
            if stale:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError as exc:
            failed.append(f"{entry.path} ({exc.strerror or exc})")
    if removed or failed:
        text = f"removed {len(removed)} stale temporary file(s) left by an interrupted write"
        if removed:
            text += ": " + ", ".join(str(p) for p in removed)
        if failed:
            text += "; could not remove: " + ", ".join(failed)
        warnings.warn(text, UserWarning, stacklevel=3)
    return removed


def check_target(target: Path, overwrite: bool) -> None:
    """Refuse early (before any data are written) what the final publication would refuse."""
    if target.is_dir():
        raise IsADirectoryError(errno_mod.EISDIR, f"{target}: is a directory")
    if not overwrite:
        if target.is_symlink() and not target.exists():
            raise FileExistsError(
                errno_mod.EEXIST,
                f"{target}: is a symbolic link to '{os.readlink(target)}', which does not exist; "
                "it is not followed: remove it or pass overwrite=True to replace the link",
            )
        if target.exists() or target.is_symlink():
            raise FileExistsError(
                errno_mod.EEXIST, f"{target}: exists; pass overwrite=True to replace it"
            )
    if not target.parent.is_dir():
        raise FileNotFoundError(errno_mod.ENOENT, f"{target.parent}: folder does not exist")


class _GuardedFile(io.RawIOBase):
    """A read/write file for h5py whose writes never fail towards HDF5.

    The first OSError of a write is kept in :attr:`error`; later writes are discarded (their
    length is reported as written, reads of the discarded range return what is on disk, padded
    with zeros), so that HDF5 can close without entering its failure paths.
    """

    def __init__(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666)
        self._fd = fd
        self._pos = 0
        self._size = 0
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence == 0:
            self._pos = offset
        elif whence == 1:
            self._pos += offset
        else:
            self._pos = self._size + offset
        return self._pos

    def tell(self) -> int:
        return self._pos

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        if self.error is None:
            try:
                done = 0
                while done < n:
                    done += os.pwrite(self._fd, view[done:], self._pos + done)
            except OSError as exc:
                self.error = exc
        self._pos += n
        self._size = max(self._size, self._pos)
        return n

    def readinto(self, buffer) -> int:
        view = memoryview(buffer).cast("B")
        want = min(len(view), max(0, self._size - self._pos))
        got = 0
        try:
            while got < want:
                chunk = os.pread(self._fd, want - got, self._pos + got)
                if not chunk:
                    break
                view[got : got + len(chunk)] = chunk
                got += len(chunk)
        except OSError as exc:
            if self.error is None:
                self.error = exc
        view[got:want] = bytes(want - got)
        self._pos += want
        return want

    def truncate(self, size: int | None = None) -> int:
        size = self._pos if size is None else size
        if self.error is None:
            try:
                os.ftruncate(self._fd, size)
            except OSError as exc:
                self.error = exc
        self._size = size
        return size

    def flush(self) -> None:
        pass

    def sync(self) -> None:
        """fsync the data (where a full disk is often reported on network file systems)."""
        if self.error is None:
            try:
                os.fsync(self._fd)
            except OSError as exc:
                self.error = exc

    def close(self) -> None:
        if self._fd >= 0:
            try:
                os.close(self._fd)
            except OSError as exc:
                if self.error is None:
                    self.error = exc
            self._fd = -1
        super().close()


def _publish(tmp: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(tmp, target)
        return
    try:
        os.link(tmp, target)
    except FileExistsError:
        raise FileExistsError(
            errno_mod.EEXIST,
            f"{target}: was created by someone else while this file was written; it is left "
            "alone (pass overwrite=True to replace it)",
        ) from None
    except OSError as exc:
        if exc.errno not in (
            errno_mod.EPERM,
            errno_mod.EOPNOTSUPP,
            errno_mod.EXDEV,
            errno_mod.EMLINK,
        ):
            raise
        # no hard links on this file system: claim the name exclusively, then replace it
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        os.close(fd)
        os.replace(tmp, target)
        return
    os.unlink(tmp)


@contextlib.contextmanager
def safe_h5(path: str | os.PathLike, overwrite: bool) -> Iterator[h5py.File]:
    """Open a new HDF5 file for writing at a temporary name; publish it at ``path`` on success.

    Raises
    ------
    FileExistsError
        ``path`` exists (or is a symbolic link, dangling or not) and ``overwrite`` is False,
        also when it appears while the file is written.
    IsADirectoryError, FileNotFoundError
        ``path`` is a folder, or its folder does not exist.
    MDFWriteError
        Writing failed (full disk, file-size limit, I/O error): the message names the file and
        the reason; no temporary file is left.
    """
    target = Path(path)
    check_target(target, overwrite)
    clean_stale_temps(target.parent)
    tmp = temp_name(target)
    raw = _GuardedFile(tmp)
    failure: BaseException | None = None
    try:
        try:
            h5 = h5py.File(raw, "w", libver=("earliest", "latest"))
        except BaseException:
            raw.close()
            raise
        try:
            yield h5
        except BaseException as exc:
            failure = exc
        finally:
            try:
                h5.close()
            except Exception as exc:  # HDF5 failing to close counts as a failed write
                failure = failure or exc
            raw.sync()
            raw.close()
        if raw.error is not None:
            err = raw.error
            reason = os.strerror(err.errno) if err.errno else str(err)
            raise MDFWriteError(
                err.errno,
                f"{target}: could not be written: {reason}; nothing was written (the temporary "
                "file was removed)",
            ) from err
        if failure is not None:
            raise failure
        _publish(tmp, target, overwrite)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
