"""Benchmark: inference time per 32^3 volume of each 3D enhancement CNN at its default size.

Issue #16's target: under 0.5 s per 32^3 volume for every CNN on 2 CPU cores. Each network
(untrained: the time does not depend on the weights) enhances one random volume
``(1, 1, 32, 32, 32)`` under ``torch.no_grad()`` with ``torch.set_num_threads(threads)``; after
``--warmup`` calls, ``--repeats`` calls are timed and the median and the minimum are reported,
with the parameter count and the time per volume for a batch of 4 volumes (as tiles of a large
volume would be enhanced). ``--slow-convs`` times PyTorch's own Conv3d path (no oneDNN
shortcut, see ``napari_mpi.nn.enhance3d.FastConv3d``) for comparison.

    python benchmarks/bench_enhance_speed.py [--threads 2] [--repeats 10] [--size 32]
        [--json benchmarks/results/enhance_speed.json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

from napari_mpi.nn.enhance3d import NETWORKS, Teacher2D, count_parameters, make_network


def _time(net, x: torch.Tensor, warmup: int, repeats: int) -> list[float]:
    with torch.no_grad():
        for _ in range(warmup):
            net(x)
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            net(x)
            times.append(time.perf_counter() - t0)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--repeats", type=int, default=10, help="timed calls per network")
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls first")
    parser.add_argument("--size", type=int, default=32, help="volume side (voxels)")
    parser.add_argument("--slow-convs", action="store_true", help="PyTorch's own Conv3d path")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    s = args.size
    one, four = torch.rand(1, 1, s, s, s), torch.rand(4, 1, s, s, s)
    rows = {}
    for name in sorted(NETWORKS):
        net = make_network(name).eval()
        if args.slow_convs:
            for m in net.modules():
                if isinstance(m, torch.nn.Conv3d):
                    m.__class__ = torch.nn.Conv3d
        single = _time(net, one, args.warmup, args.repeats)
        batch = _time(net, four, 1, max(2, args.repeats // 3))
        rows[name] = {
            "parameters": count_parameters(net),
            "architecture": net.config,
            "median_s": statistics.median(single),
            "min_s": min(single),
            "batch4_per_volume_s": statistics.median(batch) / 4,
        }
    teacher = Teacher2D().eval()
    slices = torch.rand(s, 1, s, s)  # one volume's x-z slices
    t = _time(teacher, slices, args.warmup, args.repeats)
    rows["csdnet-teacher (2D, all slices of one volume)"] = {
        "parameters": count_parameters(teacher), "architecture": teacher.config,
        "median_s": statistics.median(t), "min_s": min(t), "batch4_per_volume_s": None,
    }  # fmt: skip
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result = {
        "command": "python benchmarks/bench_enhance_speed.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"platform": platform.platform(), "processor": platform.processor(),
                    "cpus": os.cpu_count(), "torch_threads": args.threads,
                    "load_average_1min": load, "torch": torch.__version__},
        "volume": [s, s, s],
        "fast_convs": not args.slow_convs,
        "networks": rows,
    }  # fmt: skip
    print(f"{'network':<48} {'params':>8} {'median s':>9} {'min s':>7} {'batch4 s/vol':>13}")
    for name, r in rows.items():
        b = r["batch4_per_volume_s"]
        print(f"{name:<48} {r['parameters']:>8} {r['median_s']:>9.3f} {r['min_s']:>7.3f} "
              f"{'-' if b is None else f'{b:.3f}':>13}")  # fmt: skip
    print(f"(torch threads {args.threads}, 1-min load average {load})")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
