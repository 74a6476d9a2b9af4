"""The CLI on bad input: booleans, Ctrl-C, failed commands leave nothing behind, huge sizes;
reconstruct() refuses a system matrix nothing can be reconstructed with."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import napari_mpi as nm
from napari_mpi import cli
from napari_mpi.recon import get_method

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "value"),
    [("true", True), ("False", False), ("1", True), ("0", False), (" YES ", True), ("no", False),
     (True, True), (0, False)],
)  # fmt: skip
def test_booleans_accept_the_usual_words(text, value):
    param = next(p for p in get_method("kaczmarz").params if p.name == "enforce_positive")
    assert param.check(text, "kaczmarz") is value


@pytest.mark.parametrize("text", ["maybe", "on", "", "2", 0.5, "tru"])
def test_booleans_refuse_anything_else(text):
    param = next(p for p in get_method("kaczmarz").params if p.name == "enforce_positive")
    with pytest.raises(ValueError, match="enforce_positive' expects true/false"):
        param.check(text, "kaczmarz")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    cal, meas = folder / "c.mdf", folder / "m.mdf"
    assert (
        cli.main(["simulate", "system-matrix", "--grid", "4", "4", "-o", str(cal), "--quiet"]) == 0
    )
    args = ["simulate", "measurement", "--calibration", str(cal), "--phantom", "resolution"]
    assert cli.main([*args, "--snr", "30", "-o", str(meas), "--quiet"]) == 0
    return folder, cal, meas


def test_bad_boolean_on_the_command_line(files, capsys):
    folder, cal, meas = files
    out = folder / "r.mdf"
    args = ["reconstruct", "--calibration", str(cal), "--measurement", str(meas), "-o", str(out)]
    assert cli.main([*args, "--enforce-positive", "maybe", "--quiet"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "enforce_positive" in err[0] and "maybe" in err[0]
    assert not out.exists()


def test_phantom_out_in_a_missing_folder_leaves_no_output(files, capsys):
    folder, cal, _ = files
    out = folder / "out.mdf"
    args = ["simulate", "measurement", "--calibration", str(cal), "--phantom", "resolution"]
    rc = cli.main([*args, "--snr", "30", "-o", str(out), "--phantom-out", "missing/p.npy"])
    assert rc == 1 and "folder does not exist" in capsys.readouterr().err
    assert not out.exists()


def test_demo_with_a_bad_preset_makes_no_folder(tmp_path, capsys):
    out = tmp_path / "demo"
    assert cli.main(["demo", "--preset", "bogus", "--out", str(out)]) == 1
    assert "bogus" in capsys.readouterr().err
    assert not out.exists()


def test_ctrl_c_is_one_line_and_status_130(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    parser = cli.build_parser

    def patched():
        p = parser()
        for action in p._subparsers._group_actions:
            action.choices["info"].set_defaults(func=interrupted)
        return p

    monkeypatch.setattr(cli, "build_parser", patched)
    assert cli.main(["info", "x.mdf"]) == 130
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["napari-mpi info: interrupted"]


def test_ctrl_c_in_a_real_process(tmp_path):
    """SIGINT while simulating: exit status 130, one line, no traceback, no output file."""
    out = tmp_path / "big.mdf"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "napari_mpi.cli", "simulate", "system-matrix", "--grid", "60",
         "60", "-o", str(out)],
        stderr=subprocess.PIPE, text=True, env=env,
        # a background shell starts jobs with SIGINT ignored; Python then installs no handler
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # fmt: skip
    deadline = time.monotonic() + 60
    line = ""
    while "simulating" not in line and time.monotonic() < deadline:
        line = proc.stderr.readline()  # the progress display says the work has started
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    lines = [ln for ln in err.replace("\r", "\n").splitlines() if "interrupted" in ln]
    assert lines == ["napari-mpi simulate system-matrix: interrupted"]
    assert "Traceback" not in err
    assert not out.exists()


def _sm(matrix):
    rows, voxels = matrix.shape
    return nm.SystemMatrix(
        matrix=matrix, channels=np.zeros(rows, int), frequency_indices=np.arange(rows),
        frequencies=np.arange(rows) * 1e3, grid_shape=(1, 1, voxels), fov=[1e-3] * 3,
        center=[0, 0, 0], source="cal.mdf",
    )  # fmt: skip


@pytest.mark.parametrize("method", ["kaczmarz", "cgnr", "pinv", "admm"])
@pytest.mark.parametrize(
    ("bad", "message"),
    [("nan", "NaN or infinite values in 1 of 6 rows"), ("inf", "rows 2"), ("zero", "all zeros"),
     ("empty", "no rows")],
)  # fmt: skip
def test_reconstruct_checks_the_system_matrix(method, bad, message):
    rng = np.random.default_rng(0)
    matrix = (rng.normal(size=(6, 4)) + 1j * rng.normal(size=(6, 4))).astype(np.complex64)
    if bad == "nan":
        matrix[3, 1] = np.nan
    elif bad == "inf":
        matrix[2, 0] = np.inf
    elif bad == "zero":
        matrix[:] = 0
    else:
        matrix = matrix[:0]
    sm = _sm(matrix)
    with pytest.raises(ValueError, match=message) as info:
        nm.reconstruct(sm, np.ones((1, sm.num_rows), np.complex64), method=method, selection=None)
    assert "cal.mdf" in str(info.value)
