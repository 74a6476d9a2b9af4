"""napari-mpi enhance: end to end through MDF files, options from the registry, bad input."""

from __future__ import annotations

import json
import os

import h5py
import numpy as np
import pytest

import napari_mpi as nm
from mdf_factory import Layout, write_mdf_file
from napari_mpi.cli import main
from napari_mpi.enhance import Degradation
from napari_mpi.io import write_reconstruction
from napari_mpi.metrics import psnr
from napari_mpi.progress import Progress
from napari_mpi.recon import registry
from napari_mpi.simulation import layered_scan
from napari_mpi.simulation.phantoms import vessel_phantom

GRID = nm.Grid((16, 16, 16), (16e-3, 16e-3, 16e-3), (1e-3, 0.0, -2e-3))


def _acquisition() -> nm.Acquisition:
    return nm.Acquisition(
        2.5e6, np.array([102, 96]), np.array([0.012, 0.012]), 1632, 1.25e6, 2,
        gradient=np.array([-1.0, -1.0, 2.0]),
    )  # fmt: skip


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A 16^3 vessel phantom, its layered scan (default degradation, noise-free) with an
    acquisition, and a 2-frame scan without one."""
    d = tmp_path_factory.mktemp("enh")
    phantom = vessel_phantom(GRID, seed=1)
    scan = Degradation().without_noise().apply(phantom, seed=0)
    write_reconstruction(d / "scan.mdf", scan, acquisition=_acquisition())
    two = nm.MPIImage(
        np.concatenate([scan.data, 0.5 * scan.data]), scan.fov, scan.center, dict(scan.metadata)
    )
    write_reconstruction(d / "two.mdf", two)
    return d, phantom, scan


def _read(path):
    with nm.read_mdf(path) as f:
        return f.image(), (None if f.has_placeholder_acquisition else f.acquisition)


def _run(capsys, *argv) -> tuple[int, str]:
    rc = main(["enhance", *map(str, argv), "--quiet"])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(
    ("method", "options", "gain"),
    [("wiener", [], 0.985), ("richardson-lucy", ["--iterations", "30"], 0.95)],
)
def test_enhance_writes_a_sharper_image_on_the_same_grid(files, capsys, method, options, gain):
    d, phantom, scan = files
    out = d / f"{method}.mdf"
    assert main(["enhance", str(d / "scan.mdf"), "--method", method, *options, "-o", str(out)]) == 0
    said = capsys.readouterr()
    assert said.out.startswith(f"wrote {out}: {method} of ") and "acquisition copied" in said.out
    assert "100%" in said.err  # the progress display
    image, acquisition = _read(out)
    assert image.grid_shape == scan.grid_shape == (16, 16, 16) and image.num_frames == 1
    np.testing.assert_allclose(image.fov, scan.fov, atol=1e-12)
    np.testing.assert_allclose(image.center, scan.center, atol=1e-12)
    np.testing.assert_allclose(image.voxel_size, scan.voxel_size, atol=1e-12)
    assert acquisition is not None and acquisition.differences(_acquisition()) == []

    def rmse(a):
        return float(np.sqrt(np.mean((a.data - phantom.data) ** 2)))

    # closer to the phantom than the blurred input (measured: wiener 0.975, RL(30) 0.905)
    assert rmse(image) < gain * rmse(scan)
    assert psnr(image, phantom) > psnr(scan, phantom)
    # the same as the library call on the image read from the file
    with nm.read_mdf(d / "scan.mdf") as f:
        expected = nm.enhance(f.image(), method, **({"iterations": 30} if options else {}))
    np.testing.assert_allclose(image.data, expected.data, rtol=1e-5, atol=1e-6)
    with h5py.File(out, "r") as h5:
        meta = h5["_napari_mpi/image"]
        assert meta["method"][()].decode() == method
        params = json.loads(meta["params"][()].decode())
        assert params == registry.get_method(method).check_params(
            {"iterations": 30} if options else {}
        )
        assert meta["input"][()].decode() == str(d / "scan.mdf")
        assert json.loads(meta["degradation"][()].decode()) == scan.metadata["degradation"]


def test_frames_are_selected_and_no_acquisition_is_invented(files, capsys):
    d, _, scan = files
    out = d / "frame1.mdf"
    rc, err = _run(capsys, d / "two.mdf", "--method", "wiener", "--frames", "1", "-o", out)
    assert rc == 0, err
    image, acquisition = _read(out)
    assert image.num_frames == 1 and acquisition is None
    half = nm.MPIImage(0.5 * scan.data, scan.fov, scan.center, dict(scan.metadata))
    np.testing.assert_allclose(image.data, nm.enhance(half, "wiener").data, rtol=1e-5, atol=1e-6)
    rc, _ = _run(capsys, d / "two.mdf", "--method", "wiener", "-o", d / "all.mdf")
    assert rc == 0 and _read(d / "all.mdf")[0].num_frames == 2
    rc, _ = _run(capsys, d / "two.mdf", "--method", "wiener", "--frames", "mean", "-o", d / "m.mdf")
    assert rc == 0 and _read(d / "m.mdf")[0].num_frames == 1


def test_the_files_degradation_card_gives_the_psf(tmp_path, capsys):
    """A scan of another degradation is deconvolved with its own PSF (read back from the file);
    --degradation overrides it."""
    deg = Degradation(z_step=3e-3, snr_db=None)
    scan = deg.apply(vessel_phantom(GRID, seed=2))
    write_reconstruction(tmp_path / "in.mdf", scan)
    rc, err = _run(capsys, tmp_path / "in.mdf", "--method", "wiener", "-o", tmp_path / "own.mdf")
    assert rc == 0, err
    own = _read(tmp_path / "own.mdf")[0]
    np.testing.assert_allclose(own.data, nm.enhance(scan, "wiener").data, rtol=1e-5, atol=1e-6)
    argv = [tmp_path / "in.mdf", "--method", "wiener", "--degradation", "papers"]
    rc, err = _run(capsys, *argv, "-o", tmp_path / "papers.mdf")
    assert rc == 0, err
    papers = _read(tmp_path / "papers.mdf")[0]
    assert np.abs(papers.data - own.data).max() > 1e-3 * np.abs(own.data).max()
    rc, err = _run(capsys, *argv[:3], "--degradation", "z_step=oops", "-o", tmp_path / "x.mdf")
    assert rc == 1 and "--degradation" in err and not (tmp_path / "x.mdf").exists()


def test_a_layered_scans_own_parameters_make_its_card(tmp_path):
    """A layered scan written without a card (``simulate xspace --mode layered``) reads back
    with the card of its scan parameters."""
    scan = layered_scan(vessel_phantom(GRID, seed=3), 3.0, z_step=3e-3)
    assert "degradation" not in scan.metadata
    write_reconstruction(tmp_path / "layered.mdf", scan)
    card = _read(tmp_path / "layered.mdf")[0].metadata["degradation"]
    assert Degradation.from_dict(card) == Degradation(z_step=3e-3, snr_db=None)


def test_methods_lists_the_enhancement_methods(capsys):
    assert main(["methods", "--task", "enhance"]) == 0
    out = capsys.readouterr().out
    assert "richardson-lucy" in out and "wiener" in out and "kaczmarz" not in out


# -- options generated from the registry --------------------------------------------------------
@pytest.fixture
def fake_learned(monkeypatch):
    """A learned-style enhancement method with the learned methods' parameters, registered
    for one test; it records the parameters it was called with."""
    calls: list[dict] = []

    def solve(image, model, device, overlap, allow_mismatch):
        calls.append(
            {"model": model, "device": device, "overlap": overlap, "allow_mismatch": allow_mismatch}
        )
        yield Progress(1, 1, "fake")
        warnings = ["voxel size (z, y, x): image 1 mm, model 2 mm"] if allow_mismatch else []
        return nm.MPIImage(2 * image.data, image.fov, image.center, {"warnings": warnings})

    method = registry.Method(
        name="fake-learned", task="enhance", title="Fake", description="for tests",
        solve=solve, kind="learned",
        params=(
            registry.Param("model", str, "default", "model folder or 'default'"),
            registry.Param("device", str, "cpu", "torch device"),
            registry.Param("overlap", int, 8, "tile overlap (voxels)", 0, 64),
            registry.Param("allow_mismatch", bool, False, "proceed on a voxel-size mismatch"),
        ),
    )  # fmt: skip
    monkeypatch.setitem(registry._REGISTRY, method.name, method)
    return calls


def test_learned_parameters_become_options(files, fake_learned, capsys):
    d, _, scan = files
    with pytest.raises(SystemExit):
        main(["enhance", "--help"])
    helptext = capsys.readouterr().out
    assert "--model DIR" in helptext and "--allow-mismatch" in helptext
    assert "--overlap N" in helptext and "--device" in helptext
    out = d / "fake.mdf"
    argv = [d / "scan.mdf", "--method", "fake-learned", "--model", d / "models", "--overlap", "4"]
    rc, err = _run(capsys, *argv, "--allow-mismatch", "-o", out)
    assert rc == 0, err
    assert fake_learned == [
        {"model": str(d / "models"), "device": "cpu", "overlap": 4, "allow_mismatch": True}
    ]
    # the mismatch allowed is said on stderr and kept in the file
    assert (
        err.strip() == "napari-mpi enhance: warning: voxel size (z, y, x): image 1 mm, model 2 mm"
    )
    np.testing.assert_allclose(_read(out)[0].data, 2 * scan.data, rtol=1e-6)
    with h5py.File(out, "r") as h5:
        meta = h5["_napari_mpi/image"]
        assert json.loads(meta["warnings"][()].decode()) == [err.split("warning: ")[1].strip()]
        assert json.loads(meta["params"][()].decode())["model"] == str(d / "models")
    rc, err = _run(capsys, d / "scan.mdf", "--method", "fake-learned", "-o", d / "f2.mdf")
    assert rc == 0 and fake_learned[-1]["allow_mismatch"] is False
    assert fake_learned[-1]["model"] == "default"
    rc, err = _run(capsys, d / "scan.mdf", "--method", "wiener", "--model", d, "-o", d / "w.mdf")
    assert rc == 1 and "--model is not a parameter of 'wiener'" in err
    assert not (d / "w.mdf").exists()


# -- bad input: a clear one-line error naming what was wrong, nothing written --------------------
def _refused(capsys, argv, out, *words):
    rc, err = _run(capsys, *argv, "-o", out)
    lines = err.strip().splitlines()
    assert rc == 1, err
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], lines[0]
    assert not out.exists()
    return lines[0]


def _image(tmp_path, name, data, **kw):
    path = tmp_path / name
    data = np.asarray(data, dtype=np.float32)
    fov = np.array(data.shape[-3:], dtype=float) * 1e-3
    write_reconstruction(path, nm.MPIImage(data, fov, np.zeros(3)), **kw)
    return path


def test_missing_and_non_mdf_inputs(tmp_path, capsys):
    out = tmp_path / "out.mdf"
    _refused(capsys, [tmp_path / "nope.mdf", "--method", "wiener"], out, "nope.mdf", "no such")
    (tmp_path / "text.mdf").write_text("not an MDF file\n")
    _refused(capsys, [tmp_path / "text.mdf", "--method", "wiener"], out, "text.mdf", "HDF5")


@pytest.mark.parametrize("kind", ["calibration", "measurement"])
def test_a_file_without_a_reconstruction(tmp_path, capsys, kind):
    path = write_mdf_file(tmp_path / f"{kind}.mdf", Layout(kind=kind)).path
    line = _refused(
        capsys, [path, "--method", "wiener"], tmp_path / "o.mdf", str(path), kind,
        "not a reconstruction",
    )  # fmt: skip
    if kind == "measurement":
        assert "napari-mpi reconstruct" in line


@pytest.mark.parametrize("shape", [(1, 16, 16), (16, 1, 16), (16, 16, 1)])
@pytest.mark.parametrize("method", ["wiener", "richardson-lucy"])
def test_a_2d_image_is_refused(tmp_path, capsys, shape, method):
    path = _image(tmp_path, "flat.mdf", np.ones(shape))
    _refused(capsys, [path, "--method", method], tmp_path / "o.mdf", str(path), "3D", method)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_voxels(tmp_path, capsys, bad):
    data = np.ones((1, 8, 8, 8))
    data[0, 3, 4, 5] = bad
    path = _image(tmp_path, "nan.mdf", data)
    _refused(capsys, [path, "--method", "wiener"], tmp_path / "o.mdf", str(path), "NaN or inf")


def test_unknown_and_reconstruction_methods(files, capsys, tmp_path):
    d = files[0]
    out = tmp_path / "o.mdf"
    line = _refused(capsys, [d / "scan.mdf", "--method", "nope"], out, "unknown enhancement")
    assert "richardson-lucy" in line and "wiener" in line
    line = _refused(capsys, [d / "scan.mdf", "--method", "kaczmarz"], out, "reconstruction method")
    assert "napari-mpi reconstruct" in line and "wiener" in line


@pytest.mark.parametrize(
    ("options", "word"),
    [
        (["--balance", "0"], "balance"),
        (["--balance", "lots"], "balance"),
        (["--padding", "mirror"], "padding"),
        (["--iterations", "5"], "not a parameter of 'wiener'"),
        (["--frames", "1"], "--frames"),
        (["--frames", "x"], "--frames"),
    ],
)
def test_bad_options(files, capsys, tmp_path, options, word):
    d = files[0]
    _refused(capsys, [d / "scan.mdf", "--method", "wiener", *options], tmp_path / "o.mdf", word)


def test_output_equal_to_input_is_refused(files, capsys, tmp_path):
    d = files[0]
    path = tmp_path / "in.mdf"
    path.write_bytes((d / "scan.mdf").read_bytes())
    before = path.read_bytes()
    for target in (path, os.path.join(tmp_path, "..", tmp_path.name, "in.mdf")):
        rc, err = _run(capsys, path, "--method", "wiener", "-o", target, "--overwrite")
        assert rc == 1 and "is the input file" in err and len(err.strip().splitlines()) == 1
    (tmp_path / "link.mdf").symlink_to(path)
    rc, err = _run(capsys, path, "--method", "wiener", "-o", tmp_path / "link.mdf", "--overwrite")
    assert rc == 1 and "is the input file" in err
    assert path.read_bytes() == before


def test_existing_output_needs_overwrite(files, capsys, tmp_path):
    d = files[0]
    out = tmp_path / "out.mdf"
    out.write_bytes(b"keep me")
    rc, err = _run(capsys, d / "scan.mdf", "--method", "wiener", "-o", out)
    assert rc == 1 and str(out) in err and "--overwrite" in err
    assert out.read_bytes() == b"keep me"
    rc, err = _run(capsys, d / "scan.mdf", "--method", "wiener", "-o", out, "--overwrite")
    assert rc == 0 and _read(out)[0].grid_shape == (16, 16, 16)


def test_an_output_in_a_missing_folder_or_a_folder(files, capsys, tmp_path):
    d = files[0]
    argv = [d / "scan.mdf", "--method", "wiener"]
    _refused(capsys, argv, tmp_path / "nowhere" / "o.mdf", "-o", "folder does not exist")
    (tmp_path / "dir.mdf").mkdir()
    rc, err = _run(capsys, *argv, "-o", tmp_path / "dir.mdf", "--overwrite")
    assert rc == 1 and err.strip().endswith(f"-o {tmp_path / 'dir.mdf'}: is a directory")
    assert list((tmp_path / "dir.mdf").iterdir()) == []


def test_a_bad_degradation_card_in_the_file(tmp_path, capsys):
    data = np.ones((1, 8, 8, 8))
    image = nm.MPIImage(data, np.full(3, 8e-3), np.zeros(3), {"degradation": {"z_stride": 1}})
    write_reconstruction(tmp_path / "card.mdf", image)
    line = _refused(capsys, [tmp_path / "card.mdf", "--method", "wiener"], tmp_path / "o.mdf")
    assert "card.mdf" in line and "z_stride" in line and "--degradation" in line


@pytest.fixture
def failing(monkeypatch):
    """An enhancement method that fails (ValueError) or is interrupted half-way."""

    def solve(image, mode):
        yield Progress(1, 2, "half-way")
        if mode == "interrupt":
            raise KeyboardInterrupt
        raise ValueError("failing: the model does not fit this volume")

    method = registry.Method(
        name="failing", task="enhance", title="Failing", description="for tests", solve=solve,
        params=(registry.Param("mode", "choice", "error", "how", choices=("error", "interrupt")),),
    )  # fmt: skip
    monkeypatch.setitem(registry._REGISTRY, method.name, method)


@pytest.mark.parametrize(("mode", "status"), [("error", 1), ("interrupt", 130)])
def test_a_failure_during_enhancement_writes_nothing(
    files, failing, capsys, tmp_path, mode, status
):
    d = files[0]
    out = tmp_path / "out.mdf"
    argv = [d / "scan.mdf", "--method", "failing", "--mode", mode]
    rc, err = _run(capsys, *argv, "-o", out)
    assert rc == status and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    if mode == "error":
        assert "scan.mdf" in err and "does not fit" in err
    assert list(tmp_path.iterdir()) == []  # no output, no temporary file
    out.write_bytes(b"previous result")
    rc, _ = _run(capsys, *argv, "-o", out, "--overwrite")
    assert rc == status and out.read_bytes() == b"previous result"
    assert list(tmp_path.iterdir()) == [out]
