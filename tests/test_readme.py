"""The README's Python examples run, in order, against small simulated files."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def _snippets(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.fixture
def files(tmp_path, monkeypatch):
    """calibration.mdf (2 channels, SNR, scanner name) and measurement.mdf (10 frames) in the
    working directory, as the README's first example expects."""
    import napari_mpi as nm
    from napari_mpi.simulation import (
        get_preset,
        scanner_grid,
        simulate_measurement,
        simulate_system_matrix,
        write_simulated_measurement,
    )
    from napari_mpi.simulation.phantoms import make_phantom

    scanner = get_preset("preclinical-2d")
    grid = scanner_grid(scanner, (8, 8))
    sm = simulate_system_matrix(scanner, grid)
    nm.write_calibration(tmp_path / "calibration.mdf", sm, metadata={"scanner": {"name": "sim"}})
    meas = simulate_measurement(sm, make_phantom("two-points:gap=8", grid), 30.0, frames=10)
    write_simulated_measurement(tmp_path / "measurement.mdf", meas)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_readme_python_examples_run(files):
    snippets = _snippets(REPO / "README.md")
    assert len(snippets) >= 3
    namespace: dict = {}
    for code in snippets:
        code = textwrap.dedent(code)
        if "last_simulation" in code:  # the napari console's namespace after a simulation
            namespace["last_simulation"] = {
                "system_matrix": namespace["sm"],
                "measurement": namespace["meas"],
                "xspace": None,
                "scanner": namespace["scanner"],
            }
        exec(compile(code, "README.md", "exec"), namespace)
    scores = namespace["nm"].metrics.compare(namespace["img"], namespace["phantom"])
    assert set(scores) >= {"psnr", "ssim", "nrmse", "rmse"}
    assert np.isfinite(scores["psnr"])
    assert (files / "image.mdf").is_file() and (files / "copy.mdf").is_file()
