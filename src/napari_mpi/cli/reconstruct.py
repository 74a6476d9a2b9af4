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


def selection_from_args(args: argparse.Namespace):
    """The :class:`~napari_mpi.FrequencySelection` of the CLI options (no option: "auto")."""
    from ..frequency_selection import FrequencySelection

    threshold = args.snr_threshold
    if threshold is None:
        threshold = "auto"
    return FrequencySelection.coerce(
        {
            "snr_threshold": threshold,
            "min_frequency": args.min_frequency,
            "max_frequency": args.max_frequency,
            "channels": args.channels,
        }
    )


def cmd_reconstruct(args: argparse.Namespace) -> int:
    from ..io import read_mdf, write_reconstruction
    from ..progress import run
    from ..recon import get_method, iter_reconstruct

    out = Path(args.output)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out}: exists; pass --overwrite to replace it")
    method = get_method(args.method, task="reconstruct")
    params = method.check_params(_method_params(args, method))
    selection = selection_from_args(args)
    with read_mdf(args.calibration) as cal:
        # a network reads every row and takes the ones its model needs, whatever the selection
        # says; the other methods read only the selected rows (the same filter as
        # nm.reconstruct's, applied while reading)
        sm = cal.system_matrix(
            selection=None if method.selects_rows else selection,
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
    image = run(
        iter_reconstruct(sm, u, args.method, selection, **params), ProgressBar(not args.quiet)
    )
    rows = image.metadata.get("rows_used", sm.num_rows)
    image.metadata.update(
        {
            "calibration": str(args.calibration),
            "measurement": str(args.measurement),
            "frames": args.frames,
            "rows": rows,
            "params": json.dumps(params),
        }
    )
    image.metadata.pop("rows_used", None)
    write_reconstruction(out, image, overwrite=args.overwrite, acquisition=sm.acquisition)
    print(
        f"wrote {out}: {args.method}, {image.num_frames} frame(s), grid (x, y, z) "
        f"{list(image.grid_shape[::-1])}, {rows} rows"
    )
    return 0


def method_json(m) -> dict:
    """One registry entry as JSON (``napari-mpi methods --json``)."""
    return {
        "name": m.name,
        "task": m.task,
        "title": m.title,
        "kind": m.kind,
        "description": m.description,
        "selects_rows": m.selects_rows,
        "params": [
            {
                "name": p.name,
                "type": p.kind if isinstance(p.kind, str) else p.kind.__name__,
                "default": p.default,
                "help": m.param_help(p),
                "choices": list(p.choices),
                "normalization": None if p.normalization is None else str(p.normalization),
            }
            for p in m.params
        ],
    }


def cmd_methods(args: argparse.Namespace) -> int:
    from ..recon import methods

    entries = methods(args.task)
    if args.json:
        print(json.dumps([method_json(m) for m in entries], indent=2))
        return 0
    for task in ("reconstruct", "enhance"):
        if args.task not in (None, task):
            continue
        group = [m for m in entries if m.task == task]
        print(f"{task} ({len(group)} method{'s' if len(group) != 1 else ''}):")
        if not group:
            print("    (none registered yet)")
        for m in group:
            print(f"  {m.name}: {m.title} [{m.kind}]")
            print(f"      {m.description}")
            for p in m.params:
                extra = f" one of {list(p.choices)}" if p.choices else ""
                print(
                    f"      --{p.name.replace('_', '-'):<18} default {p.default!r:<10} "
                    f"{m.param_help(p)}{extra}"
                )
    return 0


def option_help(name: str, owners: list) -> str:
    """Help of a method option shared by several methods: each method's own text and default
    (identical texts once), so the help is right for every method that takes it."""
    texts: dict[str, list[str]] = {}
    for m in owners:
        p = m.param(name)
        default = "" if p.default is None else f", default {p.default!r}"
        texts.setdefault(f"{m.param_help(p)}{default}", []).append(m.name)
    return "; ".join(f"{', '.join(names)}: {text}" for text, names in texts.items())


def add_parsers(sub: argparse._SubParsersAction) -> None:
    from ..frequency_selection import AUTO_SNR_THRESHOLD
    from ..recon import methods

    entries = methods("reconstruct")
    rp = sub.add_parser(
        "reconstruct",
        help="reconstruct a measurement with a calibration and write an MDF reconstruction",
        description="Reconstruct MPI images. Method options are listed by `napari-mpi methods`.",
    )
    rp.add_argument("--calibration", required=True, help="calibration MDF file")
    rp.add_argument("--measurement", required=True, help="measurement MDF file")
    rp.add_argument(
        "--method", default="kaczmarz", help=f"one of {', '.join(m.name for m in entries)}"
    )
    rp.add_argument(
        "--snr-threshold",
        type=finite_float,
        help=f"keep rows with calibration SNR >= T (default: automatic, SNR >= "
        f"{AUTO_SNR_THRESHOLD:g} where the file has an SNR; the networks dernet and cascaded "
        "read their own rows)",
    )
    rp.add_argument("--min-frequency", type=positive_float, metavar="HZ", help="band start (Hz)")
    rp.add_argument("--max-frequency", type=positive_float, metavar="HZ", help="band end (Hz)")
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
    owners: dict[str, list] = {}
    for m in entries:
        for p in m.params:
            owners.setdefault(p.name, []).append(m)
    for name, ms in owners.items():
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=f"p_{name}",
            metavar="VALUE",
            help=option_help(name, ms).replace("%", "%%"),
        )
    rp.set_defaults(func=cmd_reconstruct)

    mp = sub.add_parser(
        "methods", help="list the methods (reconstruction and enhancement) and their parameters"
    )
    mp.add_argument("--json", action="store_true", help="one JSON list")
    mp.add_argument(
        "--task", choices=("reconstruct", "enhance"), help="only the methods of this task"
    )
    mp.set_defaults(func=cmd_methods)
