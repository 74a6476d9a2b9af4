"""napari-mpi simulate: system-matrix, measurement, xspace, and refusals."""

from __future__ import annotations

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi.cli import main
from napari_mpi.simulation import measured_snr_db


@pytest.fixture(scope="module")
def calibration(tmp_path_factory):
    path = tmp_path_factory.mktemp("cal") / "cal.mdf"
    args = ["simulate", "system-matrix", "--preset", "preclinical-2d", "--grid", "13", "11"]
    assert main([*args, "--background-frames", "3", "--quiet", "-o", str(path)]) == 0
    return path


def test_system_matrix_file(calibration):
    with nm.read_mdf(calibration) as f:
        assert f.kind == "calibration"
        sm = f.system_matrix()
        summary = f.summary()
    assert sm.grid_shape == (1, 11, 13)
    assert summary["background_frames"] == 3
    np.testing.assert_allclose(sm.fov[1:], [0.024, 0.024])
    assert sm.snr is not None and sm.num_rows == 2 * 817


def test_measurement_file_and_phantom_out(calibration, tmp_path):
    out, ph = tmp_path / "meas.mdf", tmp_path / "phantom.npy"
    code = main(
        [
            "simulate", "measurement", "--calibration", str(calibration),
            "--phantom", "two-points:gap=8,diameter=2", "--snr", "25", "--frames", "3",
            "--background-frames", "2", "-o", str(out), "--phantom-out", str(ph), "--quiet",
        ]
    )  # fmt: skip
    assert code == 0
    phantom = np.load(ph)
    assert phantom.shape == (1, 11, 13)
    with nm.read_mdf(calibration) as f:
        sm = f.system_matrix()
    with nm.read_mdf(out) as f:
        assert f.num_background_frames == 2
        u = f.measurements(sm, background_correction=False)
    clean = sm.matrix.astype(complex) @ phantom.reshape(-1)
    assert u.shape == (3, sm.num_rows)
    for frame in u:
        assert abs(measured_snr_db(clean, frame) - 25) < 0.3


def test_measurement_on_finer_grid(calibration, tmp_path):
    out = tmp_path / "fine.mdf"
    args = ["simulate", "measurement", "--calibration", str(calibration), "--phantom", "shape"]
    assert main([*args, "--snr", "30", "--fine-grid", "3", "-o", str(out), "--quiet"]) == 0
    assert nm.is_mdf(out)


@pytest.mark.parametrize("mode", ["native", "gridded", "narrowband"])
def test_xspace_2d(tmp_path, mode):
    out = tmp_path / "x.mdf"
    args = ["simulate", "xspace", "--phantom", "two-points:gap=8", "--grid", "24", "24"]
    assert main([*args, "--mode", mode, "-o", str(out), "--quiet"]) == 0
    with nm.read_mdf(out) as f:
        img = f.image()
    assert img.grid_shape == (1, 24, 24) and img.data.max() > 0


def test_xspace_layered_3d(tmp_path):
    out, ph = tmp_path / "x3.mdf", tmp_path / "p3.npy"
    args = ["simulate", "xspace", "--preset", "preclinical-3d", "--grid", "16", "16", "8"]
    args += ["--phantom", "vessels:seed=2", "--mode", "layered", "--phantom-out", str(ph)]
    assert main([*args, "-o", str(out), "--quiet"]) == 0
    with nm.read_mdf(out) as f:
        img = f.image()
    assert img.grid_shape == (8, 16, 16) == np.load(ph).shape


def test_xspace_layered_scan_models(tmp_path):
    args = ["simulate", "xspace", "--preset", "preclinical-3d", "--grid", "16", "16", "8"]
    args += ["--phantom", "vessels:seed=2", "--mode", "layered", "--quiet"]
    images = {}
    for name, extra in {
        "papers": ["--z-step-mm", "1.5", "--scan-snr", "25"],
        "trace-free": ["--scan-model", "trace-free"],
    }.items():
        out = tmp_path / f"{name}.mdf"
        assert main([*args, *extra, "-o", str(out)]) == 0
        with nm.read_mdf(out) as f:
            images[name] = f.image().data
    assert images["papers"].shape == images["trace-free"].shape == (1, 8, 16, 16)
    assert not np.allclose(images["papers"], images["trace-free"])


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["simulate", "measurement", "--phantom", "two-points:gap=50", "--snr", "20"], "gap"),
        (["simulate", "measurement", "--phantom", "digit:path=/nope.npz", "--snr", "20"], "nope"),
        (["simulate", "measurement", "--phantom", "blob", "--snr", "20"], "unknown phantom"),
    ],
)
def test_bad_parameters_are_refused(calibration, tmp_path, capsys, argv, message):
    out = tmp_path / "m.mdf"
    code = main([*argv, "--calibration", str(calibration), "-o", str(out), "--quiet"])
    err = capsys.readouterr().err
    assert code != 0 and message in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


@pytest.mark.parametrize(
    "argv",
    [
        ["simulate", "system-matrix", "--grid", "-3", "5"],
        ["simulate", "system-matrix", "--grid", "0"],
        ["simulate", "system-matrix", "--subvoxels", "0"],
        ["simulate", "system-matrix", "--preset", "nope"],
    ],
)
def test_bad_sizes_are_refused(tmp_path, capsys, argv):
    out = tmp_path / "c.mdf"
    try:
        code = main([*argv, "-o", str(out), "--quiet"])
    except SystemExit as exc:  # argparse refuses malformed numbers itself
        code = exc.code
    err = capsys.readouterr().err
    assert code != 0 and ("--grid" in err or "--subvoxels" in err or "preset" in err)
    assert not out.exists()


def test_existing_output_is_kept(calibration, tmp_path, capsys):
    out = tmp_path / "keep.mdf"
    out.write_bytes(b"mine")
    code = main(["simulate", "system-matrix", "--grid", "5", "5", "-o", str(out), "--quiet"])
    assert code != 0 and "--overwrite" in capsys.readouterr().err
    assert out.read_bytes() == b"mine"


def test_help_documents_spec(capsys):
    with pytest.raises(SystemExit):
        main(["simulate", "measurement", "--help"])
    text = capsys.readouterr().out
    for word in ("--snr", "--frames", "--phantom-out", "two-points:gap", "digit:path", "vessels"):
        assert word in text
