"""Benchmark: a 128^3 volume enhanced in 32^3 tiles by every learned method, memory and time.

Issue #16's target: a 128^3 volume in tiles within 2 GiB of memory. Each method runs in a
fresh process (so one method's peak does not hide another's): the parent simulates a 128^3
layered scan of a procedural vessel tree once (1 mm voxels, the default ``Degradation()``;
its FFTs need more memory than any enhancement, so it is not done in the measured process);
each child loads it, records its resident memory after the imports, the input and the model
(``baseline``),
enhances the volume with ``napari_mpi.enhance(image, METHOD)`` (the shipped model unless
``--models DIR``) and reports the peak resident memory of the process (``VmHWM``), the
peak above the baseline, the time and the number of tiles.

    OMP_NUM_THREADS=2 python benchmarks/bench_enhance_memory.py [--size 128] [--threads 2]
        [--methods csdnet,unet3d,...] [--json benchmarks/results/enhance_memory.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

LEARNED = ("csdnet", "unet3d", "edsr3d", "rcan3d", "rrdb3d")


def _rss_mib(field: str = "VmRSS") -> float:
    """Resident memory of this process (MiB) from /proc: ``VmRSS`` now, ``VmHWM`` its peak.

    (Not ``getrusage``: Linux keeps ``ru_maxrss`` across ``exec``, so a child started by a
    parent that once used 2 GiB would report 2 GiB.)"""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def make_scan(size: int, path: Path) -> None:
    """The 128^3 layered scan, simulated once (its FFTs need far more memory than the
    enhancement) and saved for the children."""
    import numpy as np

    from napari_mpi.enhance import Degradation
    from napari_mpi.grid import Grid
    from napari_mpi.simulation.phantoms import vessel_phantom

    grid = Grid((size,) * 3, (size * 1e-3,) * 3, (0.0, 0.0, 0.0))
    np.save(path, Degradation().apply(vessel_phantom(grid, seed=3), seed=0).data)


def child(method: str, size: int, threads: int, models: str | None, scan_path: str) -> dict:
    import numpy as np
    import torch

    import napari_mpi as nm
    from napari_mpi.enhance import Degradation
    from napari_mpi.enhance.learned import load_enhancer
    from napari_mpi.image import MPIImage

    torch.set_num_threads(threads)
    data = np.load(scan_path)
    meta = {"degradation": Degradation().to_dict()}
    scan = MPIImage(data, (size * 1e-3,) * 3, (0.0, 0.0, 0.0), metadata=meta)
    model = "default" if models is None else str(Path(models) / method)
    load_enhancer(method, model, "cpu")  # the network, loaded before the baseline
    baseline = _rss_mib()
    work = nm.iter_enhance(scan, method, model=model, device="cpu")
    start = time.perf_counter()
    tiles = 0
    while True:
        try:
            tiles = next(work).total
        except StopIteration as stop:
            out = stop.value
            break
    seconds = time.perf_counter() - start
    peak = _rss_mib("VmHWM")
    assert out.data.shape == scan.data.shape and np.isfinite(out.data).all()
    return {"method": method, "size": size, "tiles": tiles, "seconds": seconds,
            "baseline_mib": baseline, "peak_mib": peak,
            "peak_above_baseline_mib": peak - baseline}  # fmt: skip


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--methods", default=",".join(LEARNED))
    p.add_argument("--models", default=None, help="folder with one model folder per method")
    p.add_argument("--json", default=None)
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--scan", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.child, args.size, args.threads, args.models, args.scan)))
        return 0
    import tempfile

    scan_path = Path(tempfile.mkdtemp()) / "scan.npy"
    make_scan(args.size, scan_path)
    rows = []
    for method in [m for m in args.methods.split(",") if m]:
        cmd = [sys.executable, __file__, "--child", method, "--size", str(args.size),
               "--threads", str(args.threads), "--scan", str(scan_path)]  # fmt: skip
        if args.models:
            cmd += ["--models", args.models]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            raise SystemExit(f"{method}: the child process failed")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{method}: {r['size']}^3 in {r['tiles']} tiles, {r['seconds']:.1f} s, peak "
              f"{r['peak_mib']:.0f} MiB ({r['peak_above_baseline_mib']:.0f} MiB above the "
              f"{r['baseline_mib']:.0f} MiB after imports and input)", flush=True)  # fmt: skip
    print("\n| method | volume | tiles | s | peak RSS (MiB) | above baseline (MiB) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['size']}³ | {r['tiles']} | {r['seconds']:.1f} "
              f"| {r['peak_mib']:.0f} | {r['peak_above_baseline_mib']:.0f} |")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({
            "rows": rows, "threads": args.threads,
            "machine": f"{platform.processor() or platform.machine()}, "
                       f"{platform.python_version()}",
        }, indent=2))  # fmt: skip
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
