"""``napari-mpi reconstruct`` and ``napari-mpi methods``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ._common import ProgressBar, finite_float, positive_float


def parse_frames(text: str, total: int) -> tuple[np.ndarray | None, bool]:
    """'all', 'mean', 'I' or 'I..J' (0-based, inclusive) -> (indices or None, average)."""
    text = text.strip().lower()
    if text == "all":
        return None, False
    if text == "mean":
        return None, True
    try:
        if ".." in text:
            lo, hi = (int(v) for v in text.split(".."))
        else:
            lo = hi = int(text)
    except ValueError:
        raise ValueError(f"--frames: expected all, mean, I or I..J, got '{text}'") from None
    if lo < 0 or hi < lo or hi >= total:
        raise ValueError(f"--frames: {text} is outside 0..{total - 1} (0-based, inclusive)")
    return np.arange(lo, hi + 1), False


def _method_params(args: argparse.Namespace, method) -> dict:
    given = {
        name: value
        for name, value in vars(args).items()
        if name.startswith("p_") and value is not None
    }
    known = {p.name for p in method.params}
    params = {}
    for key, value in given.items():
        name = key[2:]
        if name not in known:
            raise ValueError(
                f"--{name.replace('_', '-')} is not a parameter of '{method.name}' "
                f"(it takes {', '.join('--' + k.replace('_', '-') for k in sorted(known))})"
            )
        params[name] = value
    return params


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from ..io import read_mdf, write_reconstruction
    from ..progress import run
    from ..recon import get_method, iter_reconstruct

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out}: exists; pass --overwrite to replace it")
    method = get_method(args.method)
    params = method.check_params(_method_params(args, method))
    with read_mdf(args.calibration) as cal:
        sm = cal.system_matrix(
            snr_threshold=args.snr_threshold,
            min_frequency=args.min_frequency,
            max_frequency=args.max_frequency,
            channels=args.channels,
            background_correction=not args.no_background_correction,
        )
    with read_mdf(args.measurement) as meas:
        total = meas.num_frames - meas.num_background_frames
        frames, average = parse_frames(args.frames, total)
        u = meas.measurements(
            sm,
            frames=frames,
            background_correction=not args.no_background_correction,
            average=average,
        )
    image = run(iter_reconstruct(sm, u, args.method, **params), ProgressBar(not args.quiet))
    image.metadata.update(
        {
            "calibration": str(args.calibration),
            "measurement": str(args.measurement),
            "frames": args.frames,
            "rows": sm.num_rows,
            "params": json.dumps(params),
        }
    )
    write_reconstruction(out, image, overwrite=args.overwrite, acquisition=sm.acquisition)
    print(
        f"wrote {out}: {args.method}, {image.num_frames} frame(s), grid (x, y, z) "
        f"{list(image.grid_shape[::-1])}, {sm.num_rows} rows"
    )
    return 0


def cmd_methods(args: argparse.Namespace) -> int:
    from ..recon import methods

    entries = methods()
    if args.json:
        print(
            json.dumps(
                [
                    {
                        "name": m.name,
                        "title": m.title,
                        "kind": m.kind,
                        "description": m.description,
                        "params": [
                            {
                                "name": p.name,
                                "type": p.kind if isinstance(p.kind, str) else p.kind.__name__,
                                "default": p.default,
                                "help": p.help,
                                "choices": list(p.choices),
                            }
                            for p in m.params
                        ],
                    }
                    for m in entries
                ],
                indent=2,
            )
        )
        return 0
    for m in entries:
        print(f"{m.name}: {m.title} [{m.kind}]")
        print(f"    {m.description}")
        for p in m.params:
            extra = f" one of {list(p.choices)}" if p.choices else ""
            print(f"    --{p.name.replace('_', '-'):<18} default {p.default!r:<10} {p.help}{extra}")
    return 0


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..recon import methods

    rp = sub.add_parser(
        "reconstruct",
        help="reconstruct a measurement with a calibration and write an MDF reconstruction",
        description="Reconstruct MPI images. Method options are listed by `napari-mpi methods`.",
    )
    rp.add_argument("--calibration", required=True, help="calibration MDF file")
    rp.add_argument("--measurement", required=True, help="measurement MDF file")
    rp.add_argument(
        "--method", default="kaczmarz", help=f"one of {', '.join(m.name for m in methods())}"
    )
    rp.add_argument("--snr-threshold", type=finite_float, help="keep rows with SNR >= T")
    rp.add_argument("--min-frequency", type=positive_float, metavar="HZ")
    rp.add_argument("--max-frequency", type=positive_float, metavar="HZ")
    rp.add_argument("--channels", nargs="+", type=int, help="receive channels (0-based)")
    rp.add_argument(
        "--frames", default="all", help="all, mean, I or I..J (0-based, inclusive; default all)"
    )
    rp.add_argument(
        "--no-background-correction", action="store_true", help="keep background in the data"
    )
    rp.add_argument("-o", "--output", required=True, help="output MDF reconstruction")
    rp.add_argument("--overwrite", action="store_true", help="replace an existing output")
    rp.add_argument("--quiet", action="store_true", help="no progress display")
    group = rp.add_argument_group("method options (see `napari-mpi methods`)")
    seen: dict[str, list[str]] = {}
    helps: dict[str, str] = {}
    for m in methods():
        for p in m.params:
            seen.setdefault(p.name, []).append(m.name)
            helps.setdefault(p.name, p.help)
    for name, owners in seen.items():
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"p_{name}",
            metavar="VALUE",
            help=f"{helps[name]} ({', '.join(owners)})",
        )
    rp.set_defaults(func=cmd_reconstruct)

    mp = sub.add_parser("methods", help="list the reconstruction methods and their parameters")
    mp.add_argument("--json", action="store_true", help="one JSON list")
    mp.set_defaults(func=cmd_methods)
