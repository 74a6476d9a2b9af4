"""One error type whatever the bytes; special paths refused before opening; bounded memory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

import napari_mpi as nm
from mdf_factory import Layout, full_read, write_mdf_file
from napari_mpi import MDFError
from napari_mpi.io import MDFFileNotFoundError, limits


@pytest.fixture
def cal(tmp_path):
    return write_mdf_file(tmp_path / "src.mdf", Layout(background=2, with_snr=True)).path


def _edit(src, dst, edit):
    shutil.copyfile(src, dst)
    with h5py.File(dst, "a") as h5:
        edit(h5)
    return dst


def test_special_paths_are_refused_before_opening(tmp_path, cal):
    fifo = tmp_path / "x.mdf"
    os.mkfifo(fifo)
    a, b = tmp_path / "a.mdf", tmp_path / "b.mdf"
    os.symlink(b, a)
    os.symlink(a, b)
    dangling = tmp_path / "dangling.mdf"
    os.symlink(tmp_path / "gone.mdf", dangling)
    cases = {
        fifo: "is a FIFO",
        a: "symbolic links loop",
        tmp_path / ("n" * 300 + ".mdf"): "name is too long",
        tmp_path: "is a directory",
        "/dev/null": "character device",
    }
    for path, message in cases.items():
        with pytest.raises(MDFError, match=message):
            nm.read_mdf(path)  # a FIFO would block forever if it were opened
        assert nm.is_mdf(path) is False
    with pytest.raises(MDFFileNotFoundError, match="does not exist"):
        nm.read_mdf(dangling)
    with pytest.raises(FileNotFoundError):  # still a FileNotFoundError, and an MDFError
        nm.read_mdf(tmp_path / "missing.mdf")
    assert nm.is_mdf(cal) is True
    link = tmp_path / "link.mdf"
    os.symlink(cal, link)
    full_read(link)  # a link to a valid file is fine


def test_link_loops_and_broken_links(tmp_path, cal):
    def hard_loop(h5):
        h5["tracer/loop"] = h5["/"]

    def soft_loop(h5):
        del h5["acquisition/receiver/bandwidth"]
        h5["acquisition/receiver/bandwidth"] = h5py.SoftLink("/acquisition/receiver/bw2")
        h5["acquisition/receiver/bw2"] = h5py.SoftLink("/acquisition/receiver/bandwidth")

    def external(h5):
        del h5["acquisition/drivefield/baseFrequency"]
        h5["acquisition/drivefield/baseFrequency"] = h5py.ExternalLink("/dev/zero", "/x")

    def broken(h5):
        h5["study/broken"] = h5py.SoftLink("/nowhere")
        h5["scanner/ext"] = h5py.ExternalLink("missing.h5", "/x")

    path = _edit(cal, tmp_path / "hard.mdf", hard_loop)
    with nm.read_mdf(path) as f:
        meta = f.metadata  # terminates at once; the cycle is not entered twice
        f.system_matrix()
    assert "loop" in meta["tracer"] and "loop" not in meta["tracer"]["loop"].get("tracer", {})
    with pytest.raises(MDFError, match=r"bandwidth'.*soft links loop"):
        full_read(_edit(cal, tmp_path / "soft.mdf", soft_loop))
    with pytest.raises(MDFError, match=r"external link.*not followed"):
        full_read(_edit(cal, tmp_path / "ext.mdf", external))
    with nm.read_mdf(_edit(cal, tmp_path / "broken.mdf", broken)) as f:
        assert "broken" not in f.metadata["study"] and "ext" not in f.metadata["scanner"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("acquisition/receiver/numSamplingPoints", h5py.Empty("i8"), "null dataspace"),
        ("study/name", h5py.Empty("f8"), "study/name'.*null dataspace"),
        ("acquisition/drivefield/divider", np.zeros((1, 0), np.int64), "D x F"),
        ("calibration/fieldOfView", np.array([np.inf, 0.01, 0.01]), "finite"),
        ("acquisition/drivefield/baseFrequency", np.inf, "finite"),
        ("measurement/isBackgroundFrame", np.ones(14, np.int8), "background|data has 0"),
        ("acquisition/receiver/numSamplingPoints", np.int64(2**40), "more than"),
    ],
)
def test_bad_values_are_mdf_errors_naming_the_field(tmp_path, cal, field, value, message):
    def edit(h5):
        del h5[field]
        h5.create_dataset(field, data=value)

    path = _edit(cal, tmp_path / "bad.mdf", edit)
    with pytest.raises(MDFError, match=message) as info:
        full_read(path)
    assert str(path) in str(info.value)


def test_declared_sizes_are_checked_before_reading(tmp_path, cal):
    """A small file declaring a huge field is refused without allocating it."""

    def huge_chunked(h5):
        del h5["acquisition/drivefield/waveform"]
        h5.create_dataset(
            "acquisition/drivefield/waveform", shape=(10**9, 1), dtype="f8", chunks=(1024, 1)
        )

    def huge_contiguous(h5):
        del h5["calibration/snr"]
        h5.create_dataset("calibration/snr", shape=(1, 2, 10**8), dtype="f8")  # not written

    path = _edit(cal, tmp_path / "chunked.mdf", huge_chunked)
    assert path.stat().st_size < 200_000
    with pytest.raises(MDFError, match=r"implausibly large|expected a string"):
        full_read(path)
    path = _edit(cal, tmp_path / "contig.mdf", huge_contiguous)
    with nm.read_mdf(path) as f, pytest.raises(MDFError, match="file is only"):
        f.system_matrix(snr_threshold=1)


def test_memory_limit_refuses_a_legitimate_read_and_says_how_to_select_less(tmp_path):
    truth = write_mdf_file(tmp_path / "cal.mdf", Layout(samples=256, frames=12))
    try:
        nm.io.set_memory_limit("20K")
        assert nm.io.memory_limit() == 20 * 1024
        with nm.read_mdf(truth.path) as f:
            with pytest.raises(MDFError, match=r"needs .*KiB.*memory limit.*min_frequency") as e:
                f.system_matrix()
            assert "NAPARI_MPI_MEMORY_LIMIT" in str(e.value)
            sm = f.system_matrix(max_frequency=float(truth.frequencies[20]))  # selects less
        assert sm.num_rows == 42
    finally:
        nm.io.set_memory_limit(None)
    assert nm.io.memory_limit() > 2**20


def test_memory_limit_setting(monkeypatch):
    monkeypatch.setenv(limits.ENV_VAR, "1.5G")
    assert limits.memory_limit() == int(1.5 * 2**30)
    monkeypatch.setenv(limits.ENV_VAR, "lots")
    with pytest.raises(ValueError, match=limits.ENV_VAR):
        limits.memory_limit()
    with pytest.raises(ValueError, match="positive size"):
        limits.set_memory_limit("-3")


def test_simulation_size_is_checked_before_allocating(capsys):
    from napari_mpi.cli import main

    rc = main(["simulate", "system-matrix", "--grid", "100000", "100000", "-o", "/tmp/never.mdf"])
    err = capsys.readouterr().err
    assert rc == 1 and len(err.strip().splitlines()) == 1
    assert "memory limit" in err and "--grid" in err
    assert not os.path.exists("/tmp/never.mdf")


def test_info_refuses_absurd_sampling_points(tmp_path):
    path = tmp_path / "meta.mdf"
    shutil.copyfile(write_mdf_file(tmp_path / "c.mdf", Layout()).path, path)
    with h5py.File(path, "a") as h5:
        del h5["acquisition/receiver/numSamplingPoints"]
        h5["acquisition/receiver/numSamplingPoints"] = np.int64(10**12)
    result = subprocess.run(
        [sys.executable, "-m", "napari_mpi.cli", "info", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "numSamplingPoints" in result.stderr and "Traceback" not in result.stderr


def _zero_free_space_object(path):
    """Set the size of the free-space object of /version's global heap collection to 0."""
    import struct

    with h5py.File(path, "r") as h5:
        ds = h5["version"]
        offset = ds.id.get_offset()
    blob = bytearray(path.read_bytes())
    _, address, _ = struct.unpack_from("<IQI", blob, offset)
    assert blob[address : address + 4] == b"GCOL"
    size = struct.unpack_from("<Q", blob, address + 8)[0]
    p = address + 16
    while p < address + size:
        index, _, _, length = struct.unpack_from("<HHIQ", blob, p)
        if index == 0:
            struct.pack_into("<Q", blob, p + 8, 0)
            path.write_bytes(bytes(blob))
            return
        p += 16 + (length + 7) // 8 * 8
    raise AssertionError("no free-space object found")


def test_corrupt_global_heap_is_refused_instead_of_hanging_hdf5(tmp_path):
    """HDF5 2.0 loops forever on a free-space object of size 0 in a global heap collection
    (found by benchmarks/fuzz_mdf.py); the reader checks the collection first."""
    path = write_mdf_file(tmp_path / "cal.mdf", Layout()).path
    _zero_free_space_object(path)
    code = (
        "import sys, napari_mpi as nm\n"
        "try:\n    nm.read_mdf(sys.argv[1])\n"
        "except nm.MDFError as exc:\n    print(exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr[-1000:]
    assert "field 'version'" in result.stdout and "would loop forever" in result.stdout


def test_is_mdf_never_raises_and_read_mdf_names_bad_arguments(tmp_path):
    for odd in (None, 3, b"\x00bad", "bad\x00name.mdf", tmp_path / ("x" * 5000)):
        assert nm.is_mdf(odd) is False
    with pytest.raises(MDFError, match="expected a path"):
        nm.read_mdf(None)
    with pytest.raises(MDFError, match="not a usable path"):
        nm.read_mdf("bad\x00name.mdf")
