"""Default parameters against tuned ones: every reconstruction method on two standard cases.

Cases (the first things a user runs):

- ``example-2d``: the ``preclinical-2d`` sample (19 x 19 calibration, resolution phantom on a
  5x finer grid, 30 dB measurement), as napari's ``example-2d`` sample data builds it;
- ``two-points``: the Simulation widget's defaults (``two-points:gap=6,diameter=1.5`` on the
  19 x 19 calibration grid, 30 dB, seed 0).

For each method, ``default`` is ``nm.reconstruct(sm, u, method)`` with nothing else set (the
automatic frequency selection and the registry's defaults, which the CLI and the widget use
too), and ``tuned`` the best PSNR over :data:`TUNING` (the frequency selection included). The
criterion of issue #13 is a gap of at most 3 dB. ``--digits N`` adds N validation digits
(MNIST 8100+, fine protocol, 30 dB) as a third, informative case.

Run: ``OMP_NUM_THREADS=1 python benchmarks/bench_defaults.py --digits 20 --json
benchmarks/results/defaults.json`` (the table in docs/reconstruction.md).
"""

from __future__ import annotations

import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np

import napari_mpi as nm
from napari_mpi.metrics import psnr
from napari_mpi.resample import resample
from napari_mpi.simulation import (
    add_noise,
    get_preset,
    scanner_grid,
    simulate_measurement,
    simulate_system_matrix,
)
from napari_mpi.simulation.phantoms import digit_phantom, make_phantom

MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist-test10k" / "mnist.npz"

#: the frequency selections tried when tuning: every row, the automatic one, SNR >= 10
SELECTIONS = (None, "auto", {"snr_threshold": 10.0})

#: tuning grid per method (every combination is tried, with every selection)
TUNING: dict[str, dict[str, tuple]] = {
    "kaczmarz": {
        "lam": (1e-4, 1e-3, 1e-2, 1e-1),
        "sweeps": (3, 10, 50, 200),
        "row_weighting": (True, False),
    },
    "admm": {"lam": (1e-5, 1e-4), "rho": (0.05, 0.15), "iterations": (50, 200)},
    "cgnr": {"lam": (1e-4, 1e-3, 1e-2), "iterations": (10, 20, 50)},
    "pinv": {"lam": (1e-4, 1e-3, 1e-2, 3e-2)},
    "ppmpi": {"rho": (0.03, 0.1, 0.3), "iterations": (10, 20, 30)},
    "dernet": {},
    "cascaded": {"stage": ("final", "preliminary")},
}


def make_cases(digits: int) -> tuple:
    """(system matrix, {case: (list of (phantom, measurement (1, rows)))})."""
    scanner = get_preset("preclinical-2d")
    grid = scanner_grid(scanner, (19, 19))
    fine_grid = scanner_grid(scanner, (95, 95))
    sm = simulate_system_matrix(scanner, grid)
    cases = {}
    phantom = make_phantom("resolution", fine_grid)
    cases["example-2d"] = [(phantom, simulate_measurement(sm, phantom, 30.0, frames=1).data)]
    phantom = make_phantom("two-points:gap=6,diameter=1.5", grid)
    meas = simulate_measurement(sm, phantom, 30.0, frames=1, seed=0)
    cases["two-points"] = [(phantom, meas.data)]
    if digits:
        fine = simulate_system_matrix(scanner, fine_grid).matrix.astype(np.complex128)
        items = []
        for idx in range(8100, 8100 + digits):
            p = digit_phantom(MNIST, fine_grid, index=idx, seed=idx)
            clean = fine @ p.data[0].reshape(-1).astype(np.complex128)
            u = add_noise(clean, 30.0, np.random.default_rng([idx, 300]))[0]
            items.append((resample(p, grid), u[np.newaxis].astype(np.complex64)))
        cases["digits"] = items
    return sm, cases


def score(sm, items, method: str, selection, params: dict) -> float:
    """Mean PSNR (dB) of ``method`` over the case's (phantom, measurement) pairs."""
    values = []
    for phantom, u in items:
        image = nm.reconstruct(sm, u, method, selection=selection, **params)
        values.append(psnr(image, phantom))
    return float(np.mean(values))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--digits", type=int, default=0, help="also N validation digits")
    parser.add_argument("--methods", nargs="+", help="only these methods")
    parser.add_argument("--json", help="write the results here")
    args = parser.parse_args()
    sm, cases = make_cases(args.digits)
    results = []
    names = args.methods or [m.name for m in nm.methods("reconstruct")]
    print(f"{'method':<10}{'case':<12}{'default':>9}{'tuned':>8}{'gap':>6}  tuned at")
    for name in names:
        grid = TUNING.get(name, {})
        combos = [dict(zip(grid, v, strict=True)) for v in itertools.product(*grid.values())]
        selects = (None,) if nm.recon.get_method(name).selects_rows else SELECTIONS
        for case, items in cases.items():
            t0 = time.perf_counter()
            default = score(sm, items, name, "auto", {})
            best = (default, "auto", "defaults")  # the defaults are one of the candidates
            for sel, params in itertools.product(selects, combos or [{}]):
                value = score(sm, items, name, sel, params)
                if value > best[0]:
                    best = (value, sel, params)
            gap = best[0] - default
            where = f"selection={best[1]} {best[2]}"
            print(
                f"{name:<10}{case:<12}{default:9.2f}{best[0]:8.2f}{gap:6.2f}  {where}", flush=True
            )
            results.append(
                {
                    "method": name,
                    "case": case,
                    "default_psnr_db": default,
                    "tuned_psnr_db": best[0],
                    "tuned_selection": best[1],
                    "tuned_params": best[2],
                    "gap_db": gap,
                    "seconds": time.perf_counter() - t0,
                }
            )
    if "kaczmarz" in names:
        # the row weighting, chosen by measurement: the defaults with weighting on
        for case, items in cases.items():
            weighted = score(sm, items, "kaczmarz", "auto", {"row_weighting": True})
            print(f"kaczmarz row_weighting=True (else defaults), {case}: {weighted:.2f} dB")
            results.append({"method": "kaczmarz", "case": case, "row_weighting_true_db": weighted})
    worst = max((r for r in results if "gap_db" in r), key=lambda r: r["gap_db"])
    print(f"largest gap: {worst['gap_db']:.2f} dB ({worst['method']}, {worst['case']})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
