"""``napari-mpi train``: train learned methods (the PP-MPI denoiser today)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ._common import ProgressBar, positive_int

TRAINABLE = ("ppmpi",)


def cmd_train(args: argparse.Namespace) -> int:
    from ..progress import run
    from ..recon.denoiser_training import iter_train_denoiser

    if args.method not in TRAINABLE:
        raise ValueError(f"train: '{args.method}' cannot be trained here; trainable: {TRAINABLE}")
    out = Path(args.output)
    if out.exists() and any(out.iterdir()) and not args.overwrite:
        raise FileExistsError(f"{out}: holds a model already; pass --overwrite to replace it")
    card = run(
        iter_train_denoiser(
            out,
            args.phantoms,
            steps=args.steps,
            batch=args.batch,
            size=args.size,
            seed=args.seed,
            command="napari-mpi " + shlex.join(args.argv),
        ),
        ProgressBar(not args.quiet),
    )
    m = card["metrics"]
    print(
        f"wrote {out}: PP-MPI denoiser, best validation MSE {m['val_mse']:.3g} "
        f"({m['val_gain_db']:.1f} dB better than the noisy input) after "
        f"{card['training']['steps']} steps, {m['train_seconds']:.0f} s"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    tp = sub.add_parser("train", help="train a learned method (ppmpi: its denoiser)")
    tp.add_argument("method", help=f"one of {', '.join(TRAINABLE)}")
    tp.add_argument(
        "--phantoms",
        help="MNIST-style .npz of training digits (its training split is used); "
        "procedural phantoms when omitted",
    )
    tp.add_argument("--calibration", help="calibration MDF (unused by ppmpi: not tied to one)")
    tp.add_argument("--steps", type=positive_int, default=4000, help="optimiser steps")
    tp.add_argument("--batch", type=positive_int, default=32, help="images per step")
    tp.add_argument("--size", type=positive_int, default=24, help="training image size (px)")
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument("-o", "--output", required=True, help="model folder (model.pt + card.json)")
    tp.add_argument("--overwrite", action="store_true")
    tp.add_argument("--quiet", action="store_true")
    tp.set_defaults(func=cmd_train)
