"""The napari-mpi command line: info, demo, and clean failures."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from mdf_factory import Layout, write_mdf_file
from napari_mpi.cli import main
from napari_mpi.recon import methods

INFO_KEYS = {
    "kind",
    "version",
    "frames",
    "background_frames",
    "channels",
    "frequencies",
    "grid_xyz",
    "fov_m_xyz",
    "center_m_xyz",
}


def test_info_json_real_calibration(shared_mdf, capsys):
    assert main(["info", str(shared_mdf / "systemMatrix.mdf"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert INFO_KEYS <= set(out)
    assert out["kind"] == "calibration" and out["version"] == "2.0"
    assert out["frames"] == 9 and out["background_frames"] == 0
    assert out["channels"] == 1 and out["frequencies"] == 77
    assert out["grid_xyz"] == [9, 1, 1]
    np.testing.assert_allclose(out["fov_m_xyz"], [0.09, 0.001, 0.001])
    np.testing.assert_allclose(out["center_m_xyz"], [0.156, -0.0112, 0.071])


def test_info_json_selection_and_background(tmp_path, capsys):
    lay = Layout(fast=True, background=3, selection=np.array([1, 4, 6]), channels=3)
    truth = write_mdf_file(tmp_path / "cal.mdf", lay)
    assert main(["info", str(truth.path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["frames"], out["background_frames"]) == (15, 3)
    assert (out["channels"], out["frequencies"]) == (3, 3)
    assert out["grid_xyz"] == list(lay.grid_xyz)


def test_info_text_metadata_only(shared_mdf, capsys):
    assert main(["info", str(shared_mdf / "tmp.mdf")]) == 0
    text = capsys.readouterr().out
    assert "metadata" in text and "TestSimpleSimulatedScanner" in text


def test_bad_files_give_one_line_and_nonzero_exit(tmp_path):
    not_hdf5 = tmp_path / "bad.mdf"
    not_hdf5.write_text("garbage")
    for path in (not_hdf5, tmp_path / "missing.mdf"):
        proc = subprocess.run(
            [sys.executable, "-m", "napari_mpi.cli", "info", str(path), "--json"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode != 0
        assert proc.stdout == ""
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, proc.stderr
        assert str(path) in lines[0] and "Traceback" not in proc.stderr


def test_demo_runs_end_to_end(tmp_path, capsys):
    args = ["demo", "--out", str(tmp_path), "--grid", "9", "7", "--dip-iterations", "100"]
    assert main([*args, "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "read back identical: True" in text
    for name in ("calibration.mdf", "measurement.mdf", "xspace_native.mdf", "reco_admm.mdf"):
        assert (tmp_path / name).exists()
    report = json.loads((tmp_path / "report.json").read_text())
    assert abs(report["measured_snr_db"] - 30) < 0.3
    # every registered reconstruction method
    assert set(report["methods"]) == {m.name for m in methods("reconstruct")}
    assert {"kaczmarz", "admm", "cgnr", "pinv", "ppmpi", "dip", "admm-net", "dernet",
            "cascaded"} <= set(report["methods"])  # fmt: skip
    assert report["methods"]["dip"]["params"]["iterations"] == 100
    # the shipped networks fit the preset's 19 x 19 calibration only: skipped on 9 x 7
    for name in ("admm-net", "dernet", "cascaded"):
        assert "another system matrix" in report["methods"][name]["skipped"]
    scored = [r for r in report["methods"].values() if "psnr" in r]
    assert len(scored) == 6 and all(r["psnr"] > 15 for r in scored)
    # the enhancement step: a layered 3D scan of a vessel tree, every enhancement method
    enh = report["enhancement"]
    assert {"degraded input", "richardson-lucy", "wiener"} <= set(enh["methods"])
    for name in enh["files"].values():
        assert (tmp_path / name).exists()
    rl, raw = enh["methods"]["richardson-lucy"], enh["methods"]["degraded input"]
    assert rl["psnr"] > raw["psnr"] + 2 and rl["ssim"] > raw["ssim"]
    assert "enhancement:" in text and "richardson-lucy" in text
    assert "dcgan" not in enh["methods"]  # a 2D model: the deblurring step runs it
    # every other registered 3D method ran, or is listed as waiting for its shipped model
    import napari_mpi as nm

    for m in nm.methods("enhance"):
        if not m.extra.get("accepts_2d"):
            assert (m.name in enh["methods"]) != (m.name in enh.get("skipped", {})), m.name
    for name in enh.get("skipped", {}):
        assert f"{name:<16} skipped: no shipped model yet" in text
    # the x-space deblurring step: two tubes, nominal-PSF deconvolution against DC_GAN
    deb = report["deblurring"]
    assert set(deb["methods"]) == {"native", "wiener (nominal PSF)",
                                   "richardson-lucy (nominal PSF)", "dcgan"}  # fmt: skip
    for name in deb["files"].values():
        assert (tmp_path / name).exists()
    native, gan = deb["methods"]["native"], deb["methods"]["dcgan"]
    assert not native["resolved"] and gan["resolved"] and gan["ssim"] > native["ssim"] + 0.3
    assert "x-space deblurring:" in text
