"""Benchmark: filtered system-matrix reads touch only the selected rows.

Writes a synthetic 3D calibration (frame axis fast and slow), then reads it whole and with a
selective SNR threshold, reporting wall time and the peak of memory allocated during each read
(tracemalloc, which sees numpy and h5py buffers). A filtered read should cost time and memory in
proportion to the rows kept, not to the file.

    python benchmarks/bench_mdf_io.py [--grid 19] [--frequencies 817] [--channels 3] [--keep 0.05]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np

import napari_mpi as nm


def write_calibration(path: Path, grid: int, k: int, c: int, fast: bool, rng) -> None:
    n = grid**3
    v = 2 * (k - 1)
    with h5py.File(path, "w") as h5:
        h5["version"] = "2.1.0"
        h5["acquisition/drivefield/baseFrequency"] = 2.5e6
        h5["acquisition/drivefield/divider"] = np.array([[102], [96], [99]])
        h5["acquisition/drivefield/strength"] = np.full((1, 3, 1), 0.012)
        h5["acquisition/receiver/numSamplingPoints"] = v
        h5["acquisition/receiver/bandwidth"] = v / (2 * 0.0214)
        h5["acquisition/receiver/numChannels"] = c
        h5["acquisition/numPeriodsPerFrame"] = 1
        shape = (1, c, k, n) if fast else (n, 1, c, k)
        ds = h5.create_dataset("measurement/data", shape=shape, dtype=np.complex64)
        # fill in slabs to keep the writer's memory small
        for ch in range(c):
            block = (rng.normal(size=(k, n)) + 1j * rng.normal(size=(k, n))).astype(np.complex64)
            if fast:
                ds[0, ch] = block
            else:
                ds[:, 0, ch, :] = block.T
        h5["measurement/isFourierTransformed"] = np.int8(1)
        h5["measurement/isFastFrameAxis"] = np.int8(fast)
        h5["measurement/isBackgroundFrame"] = np.zeros(n, np.int8)
        h5["measurement/isFrequencySelection"] = np.int8(0)
        h5["calibration/snr"] = rng.random((1, c, k)) * 100
        h5["calibration/size"] = np.array([grid] * 3)
        h5["calibration/fieldOfView"] = np.array([0.024, 0.024, 0.012])
        h5["calibration/fieldOfViewCenter"] = np.zeros(3)


def measure(path: Path, **kw) -> tuple[float, float, int]:
    tracemalloc.start()
    t0 = time.perf_counter()
    with nm.read_mdf(path) as f:
        sm = f.system_matrix(**kw)
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 2**20, sm.num_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=19, help="voxels per axis (3D)")
    parser.add_argument("--frequencies", type=int, default=817, help="rfft bins per channel")
    parser.add_argument("--channels", type=int, default=3)
    parser.add_argument("--keep", type=float, default=0.05, help="fraction of rows kept by SNR")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    threshold = 100 * (1 - args.keep)
    with tempfile.TemporaryDirectory() as tmp:
        for fast in (True, False):
            path = Path(tmp) / f"cal_{'fast' if fast else 'slow'}.mdf"
            write_calibration(path, args.grid, args.frequencies, args.channels, fast, rng)
            size_mb = path.stat().st_size / 2**20
            t_full, m_full, r_full = measure(path)
            t_sel, m_sel, r_sel = measure(path, snr_threshold=threshold)
            layout = "frame axis fast" if fast else "frame axis slow"
            print(f"{layout}: file {size_mb:.0f} MiB, {args.grid}^3 voxels, {r_full} rows")
            print(f"  full read     {t_full:7.3f} s  peak {m_full:8.1f} MiB  rows {r_full}")
            print(f"  SNR-filtered  {t_sel:7.3f} s  peak {m_sel:8.1f} MiB  rows {r_sel}")
            print(
                f"  ratio filtered/full: time {t_sel / t_full:.3f}, memory {m_sel / m_full:.3f} "
                f"(rows kept {r_sel / r_full:.3f})"
            )
            path.unlink()


if __name__ == "__main__":
    main()
