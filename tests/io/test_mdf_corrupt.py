"""Broken files always end in MDFError naming the file (and the field), never a bare traceback."""

from __future__ import annotations

import shutil

import h5py
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import napari_mpi as nm
from mdf_factory import Layout, full_read, write_mdf_file
from napari_mpi import MDFError


def _datasets(path):
    names = []
    with h5py.File(path, "r") as h5:
        h5.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return names


SOURCES = {
    "calibration": Layout(fast=True, background=2, selection=np.array([1, 3, 4]), with_snr=True),
    "measurement td": Layout(kind="measurement", fourier=False, conversion=np.ones((2, 2))),
    "measurement permuted": Layout(kind="measurement", permutation=np.arange(12)[::-1]),
    "v1 calibration": Layout(version="1.0.5"),
}

REQUIRED = {
    "version",
    "measurement/data",
    "calibration/dataFD",
    "acquisition/drivefield/baseFrequency",
    "acquisition/drivefield/divider",
    "acquisition/receiver/numSamplingPoints",
    "acquisition/receiver/bandwidth",
    "acquisition/receiver/numChannels",
    "measurement/frequencySelection",
    "measurement/framePermutation",
}


def _source(tmp_path, name):
    return write_mdf_file(tmp_path / "src.mdf", SOURCES[name]).path


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_missing_field(tmp_path, name):
    src = _source(tmp_path, name)
    full_read(src)  # the intact file reads
    for field in _datasets(src):
        broken = tmp_path / "broken.mdf"
        shutil.copy(src, broken)
        with h5py.File(broken, "a") as h5:
            del h5[field]
        if field in REQUIRED:
            with pytest.raises(MDFError) as info:
                full_read(broken)
            assert str(broken) in str(info.value)
        else:
            try:
                full_read(broken)
            except MDFError as exc:
                assert str(broken) in str(exc)


@pytest.mark.parametrize("name", list(SOURCES))
@pytest.mark.parametrize("mutation", ["string", "extra axis", "empty", "float for int"])
def test_every_mistyped_or_misshaped_field(tmp_path, name, mutation):
    src = _source(tmp_path, name)
    for field in _datasets(src):
        broken = tmp_path / "broken.mdf"
        shutil.copy(src, broken)
        with h5py.File(broken, "a") as h5:
            old = h5[field][()]
            del h5[field]
            if mutation == "string":
                h5.create_dataset(field, data="not a number", dtype=h5py.string_dtype())
            elif mutation == "extra axis":
                h5[field] = (
                    np.asarray(old)[np.newaxis, np.newaxis]
                    if np.asarray(old).dtype.kind != "O"
                    else np.zeros((2, 2))
                )
            elif mutation == "empty":
                h5.create_dataset(field, shape=(0,), dtype="f8")
            else:
                arr = np.asarray(old)
                h5[field] = arr.astype(np.float64) + 0.5 if arr.dtype.kind in "iu" else arr
        try:
            full_read(broken)
        except MDFError as exc:
            assert str(broken) in str(exc)


def test_mistyped_fields_name_the_field(tmp_path):
    src = _source(tmp_path, "calibration")
    cases = {
        "acquisition/receiver/numSamplingPoints": "expected integers",
        "calibration/size": "expected",
        "measurement/isBackgroundFrame": "expected",
        "measurement/data": "expected",
    }
    for field, message in cases.items():
        broken = tmp_path / "broken.mdf"
        shutil.copy(src, broken)
        with h5py.File(broken, "a") as h5:
            del h5[field]
            h5.create_dataset(field, data="oops", dtype=h5py.string_dtype())
        with pytest.raises(MDFError, match=message) as info:
            full_read(broken)
        assert f"'{field}'" in str(info.value)


def test_wrong_shapes_are_explained(tmp_path):
    src = _source(tmp_path, "calibration")
    cases = {
        "calibration/size": (np.array([5, 5, 5]), "voxels"),
        "measurement/isBackgroundFrame": (np.zeros(3, np.int8), "one per frame"),
        "measurement/frequencySelection": (np.array([1, 2]), "entries"),
        "calibration/snr": (np.ones((1, 2, 7)), "J x C x K"),
    }
    for field, (value, message) in cases.items():
        broken = tmp_path / "broken.mdf"
        shutil.copy(src, broken)
        with h5py.File(broken, "a") as h5:
            del h5[field]
            h5[field] = value
        with pytest.raises(MDFError, match=message):
            full_read(broken)


def test_missing_groups(tmp_path):
    src = _source(tmp_path, "calibration")
    for group in ("acquisition", "acquisition/receiver", "acquisition/drivefield", "measurement"):
        broken = tmp_path / "broken.mdf"
        shutil.copy(src, broken)
        with h5py.File(broken, "a") as h5:
            del h5[group]
        with pytest.raises(MDFError):
            full_read(broken)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(fraction=st.floats(0.0, 0.999))
def test_truncated_files(tmp_path_factory, fraction):
    folder = tmp_path_factory.mktemp("trunc")
    src = write_mdf_file(folder / "src.mdf", SOURCES["calibration"]).path
    blob = src.read_bytes()
    broken = folder / "broken.mdf"
    broken.write_bytes(blob[: int(len(blob) * fraction)])
    with pytest.raises(MDFError) as info:
        full_read(broken)
    assert str(broken) in str(info.value)


def test_not_hdf5_and_directories(tmp_path):
    text = tmp_path / "notes.mdf"
    text.write_text("this is not HDF5")
    with pytest.raises(MDFError, match="cannot be opened as HDF5"):
        nm.read_mdf(text)
    with pytest.raises(MDFError, match="directory"):
        nm.read_mdf(tmp_path)
    empty = tmp_path / "empty.mdf"
    empty.write_bytes(b"")
    with pytest.raises(MDFError):
        nm.read_mdf(empty)


def test_bad_version(tmp_path):
    path = tmp_path / "v.mdf"
    with h5py.File(path, "w") as h5:
        h5["version"] = "7.3"
        h5["acquisition/x"] = 1
    with pytest.raises(MDFError, match=r"version 1\.x or 2\.x"):
        nm.read_mdf(path)
