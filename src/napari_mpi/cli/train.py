"""``napari-mpi train``: train learned methods (the PP-MPI denoiser today)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ._common import ProgressBar, positive_int

TRAINABLE = ("ppmpi", "dernet")


def cmd_train(args: argparse.Namespace) -> int:
    from ..progress import run
    from ..recon.denoiser_training import iter_train_denoiser

    if args.method not in TRAINABLE:
        raise ValueError(f"train: '{args.method}' cannot be trained here; trainable: {TRAINABLE}")
    out = Path(args.output)
    holds_model = (out / "model.pt").exists() or (out / "card.json").exists()
    if holds_model and not args.overwrite:
        raise FileExistsError(f"{out}: holds a model already; pass --overwrite to replace it")
    command = "napari-mpi " + shlex.join(args.argv)
    if args.method == "dernet":
        return _train_dernet(args, out, command)
    card = run(
        iter_train_denoiser(
            out,
            args.phantoms,
            steps=args.steps,
            batch=args.batch,
            size=args.size,
            seed=args.seed,
            command=command,
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


def _train_dernet(args: argparse.Namespace, out: Path, command: str) -> int:
    from ..io import read_mdf
    from ..progress import run
    from ..recon.dernet import iter_train_dernet

    if not args.calibration:
        raise ValueError(
            "train dernet: --calibration CAL.mdf is required (a model fits one matrix)"
        )
    with read_mdf(args.calibration) as f:
        sm = f.system_matrix()
    card = run(
        iter_train_dernet(
            sm,
            args.phantoms,
            out,
            snr_threshold=args.snr_threshold,
            epochs=args.epochs,
            batch=args.batch,
            seed=args.seed,
            num_train=args.num_train,
            num_val=args.num_val,
            command=command,
        ),
        ProgressBar(not args.quiet),
    )
    m = card["metrics"]
    print(
        f"wrote {out}: DERnet for {card['rows']} rows, best validation PSNR "
        f"{m['val_psnr_db']:.2f} dB after {card['training']['epochs_done']} epoch(s), "
        f"{m['train_seconds']:.0f} s"
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
    tp.add_argument(
        "--calibration", help="calibration MDF (dernet: required; ppmpi: unused, not tied to one)"
    )
    tp.add_argument("--epochs", type=positive_int, default=15, help="dernet: training epochs")
    tp.add_argument(
        "--snr-threshold", type=float, default=10.0, help="dernet: rows with calibration SNR >= T"
    )
    tp.add_argument("--num-train", type=positive_int, help="dernet: training pairs (8100)")
    tp.add_argument("--num-val", type=positive_int, help="dernet: validation pairs (900)")
    tp.add_argument("--steps", type=positive_int, default=4000, help="optimiser steps")
    tp.add_argument("--batch", type=positive_int, default=32, help="samples per step")
    tp.add_argument("--size", type=positive_int, default=24, help="training image size (px)")
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument("-o", "--output", required=True, help="model folder (model.pt + card.json)")
    tp.add_argument("--overwrite", action="store_true")
    tp.add_argument("--quiet", action="store_true")
    tp.set_defaults(func=cmd_train)
