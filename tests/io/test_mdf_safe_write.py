"""Safe writes: no clobbering (even racing), dangling symlinks, full disk, stale temp files."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.io import MDFWriteError, _safe_write, mdf_writer

REPO = Path(__file__).resolve().parents[2]


def _image(n=4):
    return nm.MPIImage(np.ones((1, 1, n, n), np.float32), [1e-3, 1e-3, 1e-3], [0, 0, 0])


def test_a_file_created_during_the_write_is_never_replaced(tmp_path, monkeypatch):
    target = tmp_path / "r.mdf"
    original = mdf_writer.write_grid

    def racing(*args, **kwargs):  # another process creates the target meanwhile
        target.write_bytes(b"someone else's")
        return original(*args, **kwargs)

    monkeypatch.setattr(mdf_writer, "write_grid", racing)
    with pytest.raises(FileExistsError, match="while this file was written"):
        nm.write_reconstruction(target, _image())
    assert target.read_bytes() == b"someone else's"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.mdf"]  # no temp left


def test_dangling_symlink_is_not_followed_without_overwrite(tmp_path):
    target = tmp_path / "r.mdf"
    os.symlink(tmp_path / "elsewhere.mdf", target)
    with pytest.raises(FileExistsError, match=r"symbolic link.*does not exist"):
        nm.write_reconstruction(target, _image())
    assert not (tmp_path / "elsewhere.mdf").exists()
    nm.write_reconstruction(target, _image(), overwrite=True)  # replaces the link itself
    assert not target.is_symlink() and nm.is_mdf(target)
    assert not (tmp_path / "elsewhere.mdf").exists()


def test_bad_targets(tmp_path):
    with pytest.raises(IsADirectoryError):
        nm.write_reconstruction(tmp_path, _image(), overwrite=True)
    with pytest.raises(FileNotFoundError, match="folder does not exist"):
        nm.write_reconstruction(tmp_path / "missing" / "r.mdf", _image())


def test_stale_temp_files_are_removed_and_reported(tmp_path):
    dead = tmp_path / ".r.mdf.napari-mpi-999999999-deadbeef.tmp"  # no such process
    alive = tmp_path / f".r.mdf.napari-mpi-{os.getppid()}-0badf00d.tmp"  # being written
    legacy_old = tmp_path / ".r.mdf.1234abcd.tmp"
    legacy_new = tmp_path / ".q.mdf.9876fedc.tmp"
    other = tmp_path / ".someone.tmp"
    for p in (dead, alive, legacy_old, legacy_new, other):
        p.write_bytes(b"x" * 10)
    old = time.time() - 2 * _safe_write.LEGACY_STALE_SECONDS
    os.utime(legacy_old, (old, old))
    with pytest.warns(UserWarning, match="removed 2 stale temporary file") as record:
        nm.write_reconstruction(tmp_path / "r.mdf", _image())
    text = str(record[0].message)
    assert str(dead) in text and str(legacy_old) in text
    assert not dead.exists() and not legacy_old.exists()
    assert alive.exists() and legacy_new.exists() and other.exists()


FULL_DISK = textwrap.dedent(
    """
    import os, resource, signal, sys
    import numpy as np
    import napari_mpi as nm
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
    limit = int(sys.argv[2])
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    image = nm.MPIImage(np.ones((2, 1, 120, 120), np.float32), [1e-3] * 3, [0, 0, 0])
    try:
        nm.write_reconstruction(sys.argv[1], image)
    except OSError as exc:
        print(type(exc).__name__, exc.errno, exc)
    """
)


@pytest.mark.parametrize("limit", [2_000, 20_000, 100_000])
def test_full_disk_is_a_clean_oserror_and_leaves_nothing(tmp_path, limit):
    """Past a file-size limit every write fails, like on a full disk: one clean error, no
    crash (h5py used to segfault while closing), no temporary file left."""
    script = tmp_path / "full.py"
    script.write_text(FULL_DISK)
    out = tmp_path / "out"
    out.mkdir()
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [sys.executable, str(script), str(out / "r.mdf"), str(limit)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"MDFWriteError {errno.EFBIG} "), result.stdout
    assert "could not be written" in result.stdout
    assert "Exception ignored" not in result.stderr
    assert list(out.iterdir()) == []


def test_write_error_type():
    assert issubclass(MDFWriteError, OSError)


def test_interrupted_write_leaves_only_a_temp_that_the_next_write_removes(tmp_path):
    """SIGKILL in the middle of a write: the target is absent, the temp goes next time."""
    script = tmp_path / "slow.py"
    script.write_text(
        textwrap.dedent(
            """
            import sys, time, numpy as np, napari_mpi as nm
            from napari_mpi.io import mdf_writer
            original = mdf_writer.write_grid
            def slow(*a, **k):
                print("writing", flush=True)
                time.sleep(60)
            mdf_writer.write_grid = slow
            nm.write_reconstruction(sys.argv[1], nm.MPIImage(np.ones((1, 1, 2, 2), np.float32),
                                    [1e-3] * 3, [0, 0, 0]))
            """
        )
    )
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    proc = subprocess.Popen(
        [sys.executable, str(script), str(tmp_path / "r.mdf")],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout.readline().strip() == "writing"
    finally:
        proc.kill()
        proc.wait()
    temps = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(temps) == 1 and not (tmp_path / "r.mdf").exists()
    with pytest.warns(UserWarning, match="stale temporary"):
        nm.write_reconstruction(tmp_path / "other.mdf", _image())
    assert not temps[0].exists()
