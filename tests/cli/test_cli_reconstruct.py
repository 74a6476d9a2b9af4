"""napari-mpi reconstruct and methods: end to end through MDF files."""

from __future__ import annotations

import json

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.cli import main
from napari_mpi.metrics import psnr


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("rec")
    cal, meas, ph = d / "cal.mdf", d / "meas.mdf", d / "ph.npy"
    assert main(["simulate", "system-matrix", "--grid", "15", "15", "-o", str(cal), "--quiet"]) == 0
    args = ["simulate", "measurement", "--calibration", str(cal), "--snr", "30", "--frames", "4"]
    args += ["--phantom", "two-points:gap=8,diameter=2", "--background-frames", "2"]
    assert main([*args, "-o", str(meas), "--phantom-out", str(ph), "--quiet"]) == 0
    return d, cal, meas, ph


@pytest.mark.parametrize(
    ("method", "options"),
    [
        ("kaczmarz", ["--lam", "0.1", "--sweeps", "10"]),
        ("admm", ["--regularization", "l1+tv"]),
        ("cgnr", ["--iterations", "10"]),
        ("pinv", ["--mode", "tikhonov", "--lam", "0.01"]),
    ],
)
def test_reconstruct_writes_mdf(files, method, options):
    d, cal, meas, ph = files
    out = d / f"{method}.mdf"
    argv = ["reconstruct", "--calibration", str(cal), "--measurement", str(meas)]
    argv += ["--method", method, "--snr-threshold", "30", "--frames", "1..2", *options]
    assert main([*argv, "-o", str(out), "--quiet", "--overwrite"]) == 0
    with nm.read_mdf(out) as f:
        img = f.image()
    truth = nm.MPIImage(np.load(ph)[None], img.fov, img.center)
    assert img.num_frames == 2 and img.grid_shape == (1, 15, 15)
    assert psnr(img, truth) > 18


def test_frames_mean_and_all(files):
    d, cal, meas, _ = files
    base = ["reconstruct", "--calibration", str(cal), "--measurement", str(meas), "--quiet"]
    assert main([*base, "--frames", "mean", "-o", str(d / "mean.mdf")]) == 0
    assert main([*base, "--frames", "all", "-o", str(d / "all.mdf")]) == 0
    with nm.read_mdf(d / "mean.mdf") as f:
        assert f.image().num_frames == 1
    with nm.read_mdf(d / "all.mdf") as f:
        assert f.image().num_frames == 4


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--frames", "7..9"], "--frames"),
        (["--frames", "x"], "--frames"),
        (["--method", "nope"], "unknown reconstruction method"),
        (["--method", "kaczmarz", "--regularization", "l1"], "not a parameter"),
        (["--method", "admm", "--iterations", "0"], "iterations"),
    ],
)
def test_bad_options(files, capsys, extra, message):
    d, cal, meas, _ = files
    argv = ["reconstruct", "--calibration", str(cal), "--measurement", str(meas), *extra]
    assert main([*argv, "-o", str(d / "bad.mdf"), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (d / "bad.mdf").exists()


def test_mismatched_files_are_refused(files, tmp_path, capsys):
    _, cal, _, _ = files
    other_cal = tmp_path / "other.mdf"
    other_meas = tmp_path / "other_meas.mdf"
    sm_args = ["simulate", "system-matrix", "--grid", "5", "5", "--drive-amplitude-mt", "10", "10"]
    assert main([*sm_args, "-o", str(other_cal), "--quiet"]) == 0
    meas_args = ["simulate", "measurement", "--calibration", str(other_cal), "--phantom", "shape"]
    assert main([*meas_args, "--snr", "30", "-o", str(other_meas), "--quiet"]) == 0
    argv = ["reconstruct", "--calibration", str(cal), "--measurement", str(other_meas)]
    assert main([*argv, "-o", str(tmp_path / "r.mdf"), "--quiet"]) != 0
    err = capsys.readouterr().err
    assert "drive strengths" in err


def test_methods_lists_the_registry(capsys):
    assert main(["methods", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in listed][:4] == ["kaczmarz", "admm", "cgnr", "pinv"]
    admm = next(m for m in listed if m["name"] == "admm")
    assert {p["name"] for p in admm["params"]} >= {"regularization", "lam", "alpha_tv"}
    assert main(["methods"]) == 0
    assert "--sweeps" in capsys.readouterr().out


@pytest.fixture(scope="module")
def preset_files(tmp_path_factory):
    """The preset's default 19 x 19 calibration (the shipped networks' one) and a measurement."""
    d = tmp_path_factory.mktemp("defaults")
    cal, meas = d / "cal.mdf", d / "meas.mdf"
    assert main(["simulate", "system-matrix", "-o", str(cal), "--quiet"]) == 0
    args = ["simulate", "measurement", "--calibration", str(cal), "--snr", "30"]
    args += ["--phantom", "two-points:gap=6,diameter=1.5", "--frames", "1"]
    assert main([*args, "-o", str(meas), "--quiet"]) == 0
    return d, cal, meas


@pytest.mark.parametrize("method", ["kaczmarz", "admm", "dernet"])
def test_cli_defaults_are_the_library_defaults(preset_files, method):
    """No option: the CLI reads every row and reconstructs as ``nm.reconstruct`` does with its
    defaults (the automatic SNR threshold; the networks take their own rows)."""
    d, cal, meas = preset_files
    out = d / f"{method}.mdf"
    argv = ["reconstruct", "--calibration", str(cal), "--measurement", str(meas)]
    assert main([*argv, "--method", method, "-o", str(out), "--quiet", "--overwrite"]) == 0
    with nm.read_mdf(cal) as f:
        sm = f.system_matrix()
    with nm.read_mdf(meas) as f:
        u = f.measurements(sm)
    expected = nm.reconstruct(sm, u, method)
    with nm.read_mdf(out) as f:
        got = f.image()
    np.testing.assert_allclose(got.data, expected.data, rtol=1e-4, atol=1e-5 * expected.data.max())


def test_cli_network_ignores_the_snr_threshold(preset_files):
    d, cal, meas = preset_files
    argv = ["reconstruct", "--calibration", str(cal), "--measurement", str(meas), "--quiet"]
    out = d / "dernet-thr.mdf"
    assert main([*argv, "--method", "dernet", "--snr-threshold", "30", "-o", str(out)]) == 0
    with nm.read_mdf(d / "dernet.mdf") as f:
        plain = f.image().data
    with nm.read_mdf(out) as f:
        np.testing.assert_allclose(f.image().data, plain, rtol=1e-5, atol=1e-6)


def test_learned_method_names_the_setting_to_change():
    from napari_mpi.recon.selection import select_frequencies
    from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix

    scanner = get_preset("preclinical-2d")
    full = simulate_system_matrix(scanner, scanner_grid(scanner, (19, 19)))
    chosen = select_frequencies(full, snr_threshold=30)
    u = np.zeros((1, chosen.num_rows), np.complex64)
    with pytest.raises(ValueError, match="read without one"):
        nm.reconstruct(chosen, u, "dernet")
    other = simulate_system_matrix(scanner, scanner_grid(scanner, (19, 19)), max_frequency=5e5)
    with pytest.raises(ValueError, match="choose a model trained for this one"):
        nm.reconstruct(other, np.zeros((1, other.num_rows), np.complex64), "dernet")
