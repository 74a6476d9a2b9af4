"""Packaging: the manifest ships inside the package, the core stays free of napari and Qt."""

from __future__ import annotations

import subprocess
import sys
from importlib import metadata, resources
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_manifest_is_shipped_and_registered():
    eps = metadata.entry_points(group="napari.manifest")
    ours = [ep for ep in eps if ep.value == "napari_mpi:napari.yaml"]
    assert ours, "napari.manifest entry point missing"
    shipped = resources.files("napari_mpi").joinpath("napari.yaml").read_text()
    assert shipped == (REPO / "napari.yaml").read_text()


def test_core_import_pulls_no_gui_or_torch():
    code = (
        "import sys, napari_mpi, napari_mpi.io, napari_mpi.simulation, napari_mpi.cli;"
        "bad = [m for m in ('napari', 'qtpy', 'PyQt6', 'magicgui', 'torch') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_napari_imports_only_in_napari_subpackage():
    src = REPO / "src" / "napari_mpi"
    offenders = []
    for path in src.rglob("*.py"):
        if "_napari" in path.parts:
            continue
        for line in path.read_text().splitlines():
            stripped = line.strip()
            words = stripped.replace(",", " ").split()
            if stripped.startswith(("import ", "from ")) and any(
                word == mod or word.startswith(f"{mod}.")
                for word in words[1:]
                for mod in ("napari", "qtpy", "magicgui", "PyQt6", "superqt")
            ):
                offenders.append(f"{path}: {stripped}")
    assert not offenders, offenders


def test_wheel_ships_the_manifest(tmp_path):
    """Build the wheel as a user's pip would and look inside."""
    import zipfile

    cmd = [sys.executable, "-m", "pip", "wheel", str(REPO), "--no-deps", "--no-build-isolation"]
    subprocess.run([*cmd, "-q", "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("napari_mpi-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        shipped = zf.read("napari_mpi/napari.yaml").decode()
        entry_points = next(n for n in zf.namelist() if n.endswith("entry_points.txt"))
        eps = zf.read(entry_points).decode()
        names = set(zf.namelist())
    for folder in ("ppmpi_denoiser", "dernet_preclinical2d", "cascaded_preclinical2d"):
        for part in ("model.pt", "card.json", "TRAINING.md"):
            assert f"napari_mpi/models/{folder}/{part}" in names
    assert shipped == (REPO / "napari.yaml").read_text()
    assert "napari-mpi = napari_mpi:napari.yaml" in eps
    assert "napari-mpi = napari_mpi.cli:main" in eps


#: what reading a file must not pay for (issue #15: light imports)
HEAVY = ("torch", "scipy.signal", "napari_mpi.simulation", "napari", "magicgui", "skimage")


def test_import_and_read_mdf_stay_light(tmp_path):
    """``import napari_mpi`` and reading an MDF file load neither torch, nor the simulator, nor
    scipy.signal (checked in a fresh interpreter); ``nm.metrics`` is there on first use."""
    from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix

    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (4, 4)))
    import napari_mpi as nm

    path = nm.write_calibration(tmp_path / "cal.mdf", sm)
    code = (
        "import sys, napari_mpi as nm\n"
        f"heavy = {HEAVY!r}\n"
        "after_import = [m for m in heavy if m in sys.modules]\n"
        f"with nm.read_mdf({str(path)!r}) as f:\n"
        "    sm = f.system_matrix(snr_threshold=2)\n"
        "after_read = [m for m in heavy if m in sys.modules]\n"
        "u = sm.matrix[:, :1].T\n"
        "img = nm.reconstruct(sm, u, 'kaczmarz')\n"
        "after_kaczmarz = [m for m in heavy if m in sys.modules]\n"
        "compare = nm.metrics.compare\n"
        "print(after_import, after_read, after_kaczmarz, sep='|')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    after_import, after_read, after_kaczmarz = out.stdout.strip().split("|")
    assert after_import == "[]"
    assert after_read == "[]"
    assert "torch" not in after_kaczmarz and "napari_mpi.simulation" not in after_kaczmarz


def test_lazy_attributes():
    import napari_mpi as nm

    assert callable(nm.metrics.compare)
    assert nm.simulation.get_preset("preclinical-2d").name == "preclinical-2d"
    assert "metrics" in dir(nm)
    with pytest.raises(AttributeError):
        nm.no_such_thing  # noqa: B018
