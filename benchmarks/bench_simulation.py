"""Benchmark: simulation speed and memory.

- the 2D preset system matrix (19 x 19, every bin): target seconds;
- the 3D preset system matrix (19^3, mixing order 12): target minutes, bounded memory;
- a 32^3 layered x-space volume (papers model): target well under a second, first call
  (layer kernels computed) and repeated calls (kernels cached).

    python benchmarks/bench_simulation.py [--skip-3d]
"""

from __future__ import annotations

import argparse
import time
import tracemalloc

from napari_mpi.simulation import (
    get_preset,
    layered_scan,
    scanner_grid,
    simulate_system_matrix,
)
from napari_mpi.simulation.layered import clear_kernel_cache
from napari_mpi.simulation.phantoms import vessel_phantom


def timed(fn, *args, repeat: int = 1, **kwargs):
    tracemalloc.start()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - t0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return out, best, peak / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--skip-3d", action="store_true", help="skip the 19^3 system matrix")
    args = parser.parse_args()

    s2 = get_preset("preclinical-2d")
    sm2, t2, m2 = timed(simulate_system_matrix, s2, scanner_grid(s2, (19, 19)), repeat=3)
    print(
        f"2D preset system matrix 19x19: {sm2.num_rows} rows x {sm2.num_voxels} voxels, "
        f"{t2:.3f} s (best of 3), peak {m2:.0f} MiB"
    )

    grid3 = scanner_grid(get_preset("preclinical-3d"), (32, 32, 32))
    phantom = vessel_phantom(grid3, seed=0)
    clear_kernel_cache()
    _, t1, m1 = timed(layered_scan, phantom, 3.0)
    _, tx, mx = timed(layered_scan, phantom, 3.0, repeat=5)
    print(
        f"layered x-space volume 32^3 (papers model): first {t1 * 1e3:.1f} ms (layer kernels "
        f"computed), peak {m1:.0f} MiB; {tx * 1e3:.1f} ms (best of 5, kernels cached), "
        f"peak {mx:.0f} MiB"
    )

    if not args.skip_3d:
        s3 = get_preset("preclinical-3d")
        sm3, t3, m3 = timed(simulate_system_matrix, s3, scanner_grid(s3, (19, 19, 19)))
        size = sm3.matrix.nbytes / 2**20
        print(
            f"3D preset system matrix 19^3: {sm3.num_rows} rows x {sm3.num_voxels} voxels "
            f"({size:.0f} MiB complex64), {t3:.1f} s, peak {m3:.0f} MiB"
        )


if __name__ == "__main__":
    main()
