"""Benchmark: batched inference speed of the reconstruction networks (frames per second).

The scanner of the ``preclinical-2d`` preset acquires a 2D frame every 652.8 us (1532 frames/s);
the target is DERnet keeping up with it, batched, on the 2-core machine. 1024 noisy frames of
test digits through the preset's default calibration; each network's forward pass on the
normalised signals (what ``reconstruct`` runs, without the row selection and normalisation
around it, which the end-to-end row adds), best of ``--repeat``. DERnet is timed side by side
as the plain network in eval mode and in its inference form (``DERnet.for_inference``: a 1D
convolution folded into the fully connected layer, batch norms folded, channels last), which
is what ``reconstruct`` uses. The threads are torch's (``--threads``, default 2).

    python benchmarks/bench_learned_speed.py [--frames 1024] [--repeat 5] [--threads 2]
        [--model admm-net=DIR] [--json benchmarks/results/learned_speed.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from napari_mpi.nn.checkpoint import load_checkpoint, read_card
from napari_mpi.nn.dernet import DERnet
from napari_mpi.recon import reconstruct
from napari_mpi.recon.dernet import default_dernet_path, load_dernet
from napari_mpi.recon.learned import normalise_signal
from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix
from napari_mpi.simulation.noise import add_noise
from napari_mpi.simulation.phantoms import stroke_phantom

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_reconstruction  # its best_of

SCANNER_FRAMES_PER_S = 1 / 652.8e-6


def best_of(fn, repeat: int) -> float:
    """Best of ``repeat`` timed calls after one warm-up call (allocations, one-off layout
    conversions)."""
    fn()
    return bench_reconstruction.best_of(fn, repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1024)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--model", action="append", default=[], metavar="NAME=DIR")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    models = dict(item.split("=", 1) for item in args.model)
    scanner = get_preset("preclinical-2d")
    grid = scanner_grid(scanner, (19, 19))
    sm = simulate_system_matrix(scanner, grid)
    rng = np.random.default_rng(0)
    clean = np.stack([sm.matrix @ stroke_phantom(grid, seed=i).data[0].ravel() for i in range(64)])
    u = np.concatenate([add_noise(clean, 30.0, rng)[0] for _ in range(args.frames // 64 + 1)])
    u = u[: args.frames].astype(np.complex64)
    results = {
        "frames": args.frames,
        "threads": args.threads,
        "machine": f"{platform.machine()}, {platform.processor() or 'cpu'}",
        "torch": torch.__version__,
        "scanner_frames_per_s": SCANNER_FRAMES_PER_S,
        "rows": {},
    }

    def record(label: str, seconds: float) -> None:
        fps = args.frames / seconds
        results["rows"][label] = {"seconds": seconds, "frames_per_s": fps}
        print(f"{label:<44} {seconds * 1e3:8.1f} ms  {fps:8.0f} frames/s  "
              f"{fps / SCANNER_FRAMES_PER_S:5.2f}x scanner", flush=True)  # fmt: skip

    fast, rows, card = load_dernet(sm)
    state, _ = load_checkpoint(default_dernet_path(), sm.select_rows(rows))
    a = card["architecture"]
    plain = DERnet(a["rows"], tuple(a["grid"]), **{k: a[k] for k in (
        "c1", "c2", "c3", "c4", "c5", "dropout0", "dropout1", "output_scale")})  # fmt: skip
    plain.load_state_dict(state)
    plain.eval()
    x = torch.from_numpy(normalise_signal(u[:, rows])[0])
    with torch.inference_mode():
        for _ in range(2):  # alternate, so both see the same machine state
            record("DERnet, plain network (eval)", best_of(lambda: plain(x), args.repeat))
            record("DERnet, inference form (what reconstruct runs)",
                   best_of(lambda: fast(x), args.repeat))  # fmt: skip
    ratio = results["rows"]["DERnet, plain network (eval)"]["seconds"] / results["rows"][
        "DERnet, inference form (what reconstruct runs)"]["seconds"]  # fmt: skip
    results["dernet_speedup"] = ratio
    print(f"inference form / plain: {ratio:.2f}x faster")
    record("dernet end to end (reconstruct)",
           best_of(lambda: reconstruct(sm, u, "dernet"), args.repeat))  # fmt: skip
    record("cascaded end to end (reconstruct)",
           best_of(lambda: reconstruct(sm, u, "cascaded"), args.repeat))  # fmt: skip
    if "admm-net" in models:
        model = models["admm-net"]
        seconds = best_of(lambda: reconstruct(sm, u, "admm-net", model=model), args.repeat)
        record("admm-net end to end (reconstruct)", seconds)
    results["card"] = {"dernet": read_card(default_dernet_path())["command"]}
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
