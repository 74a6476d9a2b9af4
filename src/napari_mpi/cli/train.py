"""``napari-mpi train``: train learned methods (PP-MPI's denoiser, DERnet, the cascaded network)."""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ._common import ProgressBar, positive_float, positive_int

TRAINABLE = ("ppmpi", "dernet", "cascaded")


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
    if args.method in ("dernet", "cascaded"):
        return _train_signal_model(args, out, command)
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


def _architecture(args: argparse.Namespace) -> dict | None:
    """``--architecture KEY=VALUE ...`` as a dict; ValueError naming a bad entry."""
    from ..recon.dernet import DERNET_KEYS

    if not args.architecture:
        return None
    out = {}
    for item in args.architecture:
        key, sep, value = item.partition("=")
        if not sep or key not in DERNET_KEYS:
            raise ValueError(
                f"train: --architecture entries are KEY=VALUE with KEY one of "
                f"{', '.join(DERNET_KEYS)}; got {item!r}"
            )
        try:
            out[key] = DERNET_KEYS[key](value)
        except ValueError:
            raise ValueError(
                f"train: --architecture {key} must be {DERNET_KEYS[key].__name__}, got {value!r}"
            ) from None
        if (
            out[key] < 0
            or (key.startswith("c") and out[key] < 1)
            or (key.startswith("dropout") and out[key] >= 1)
        ):
            raise ValueError(f"train: --architecture {key}={value} is out of range")
    return out


def _train_signal_model(args: argparse.Namespace, out: Path, command: str) -> int:
    from ..io import read_mdf
    from ..progress import run
    from ..recon.cascaded import iter_train_cascaded
    from ..recon.dernet import iter_train_dernet

    if not args.calibration:
        raise ValueError(
            f"train {args.method}: --calibration CAL.mdf is required (a model fits one matrix)"
        )
    if args.method != "dernet" and (args.init != "random" or args.init_from or args.architecture):
        raise ValueError(
            f"train {args.method}: --init, --init-from and --architecture apply to dernet only"
        )
    with read_mdf(args.calibration) as f:
        sm = f.system_matrix()
    common = {
        "snr_threshold": args.snr_threshold,
        "epochs": args.epochs,
        "batch": args.batch,
        "seed": args.seed,
        "num_train": args.num_train,
        "num_val": args.num_val,
        "fresh_noise": not args.fixed_noise,
        "fresh_phantoms": args.fresh_phantoms,
        "lr_schedule": args.lr_schedule,
        "lr": args.lr,
        "snr_range": tuple(args.snr_range),
        "command": command,
    }
    if args.method == "dernet":
        work = iter_train_dernet(
            sm,
            args.phantoms,
            out,
            init=args.init,
            init_from=args.init_from,
            architecture=_architecture(args),
            **common,
        )
        name = "DERnet"
    else:
        work = iter_train_cascaded(
            sm,
            args.phantoms,
            out,
            loss=args.loss,
            strategy=args.strategy,
            stage1_epochs=args.stage1_epochs,
            preliminary_weight=args.preliminary_weight,
            **common,
        )
        name = f"cascaded network ({args.strategy}, {args.loss} loss)"
    card = run(work, ProgressBar(not args.quiet))
    m = card["metrics"]
    print(
        f"wrote {out}: {name} for {card['rows']} rows, best validation PSNR "
        f"{m['val_psnr_db']:.2f} dB after {card['training']['epochs_done']} epoch(s), "
        f"{m['train_seconds']:.0f} s"
    )
    return 0


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..nn.losses import LOSSES
    from ..recon.cascaded import STRATEGIES
    from ..recon.dernet import DERNET_KEYS, INITIALISATIONS
    from ..recon.learned import LR_SCHEDULES

    tp = sub.add_parser("train", help="train a learned method (ppmpi: its denoiser)")
    tp.add_argument("method", help=f"one of {', '.join(TRAINABLE)}")
    tp.add_argument(
        "--phantoms",
        help="MNIST-style .npz of training digits (its training split is used); "
        "procedural phantoms when omitted",
    )
    tp.add_argument(
        "--calibration",
        help="calibration MDF (dernet, cascaded: required; ppmpi: unused, not tied to one)",
    )
    tp.add_argument(
        "--epochs", type=positive_int, default=15, help="dernet, cascaded: training epochs"
    )
    tp.add_argument(
        "--snr-threshold",
        type=float,
        default=10.0,
        help="dernet, cascaded: rows with calibration SNR >= T",
    )
    tp.add_argument("--num-train", type=positive_int, help="dernet, cascaded: pairs (8100)")
    tp.add_argument("--num-val", type=positive_int, help="dernet, cascaded: validation (900)")
    tp.add_argument(
        "--fixed-noise",
        action="store_true",
        help="dernet, cascaded: keep each training pair's noise (default: new noise every epoch)",
    )
    tp.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        default="cosine",
        help="dernet, cascaded: learning rate constant, or cosine decay to 1/100",
    )
    tp.add_argument(
        "--lr",
        type=positive_float,
        default=1e-3,
        help="dernet, cascaded: Adam's (starting) learning rate (the papers' 1e-3)",
    )
    tp.add_argument(
        "--snr-range",
        type=float,
        nargs=2,
        metavar=("LOW", "HIGH"),
        default=(20.0, 40.0),
        help="dernet, cascaded: training SNRs, uniform in LOW-HIGH dB over the model's rows "
        "(20 40, as the DERnet paper)",
    )
    tp.add_argument(
        "--fresh-phantoms",
        action="store_true",
        help="dernet, cascaded: new placements of the training digits every epoch",
    )
    tp.add_argument(
        "--init",
        choices=INITIALISATIONS,
        default="random",
        help="dernet: start the domain transform at random or at the ridge linear reconstruction",
    )
    tp.add_argument(
        "--init-from",
        metavar="MODEL_DIR",
        help="dernet: continue training this model (its rows, architecture and weights; "
        "--architecture may then change only the dropout rates)",
    )
    tp.add_argument(
        "--architecture",
        nargs="+",
        metavar="KEY=VALUE",
        help=f"dernet: override the paper's hyperparameters ({', '.join(DERNET_KEYS)})",
    )
    tp.add_argument("--loss", choices=LOSSES, default="l1+ssim", help="cascaded: training loss")
    tp.add_argument(
        "--strategy", choices=STRATEGIES, default="end-to-end", help="cascaded: training order"
    )
    tp.add_argument(
        "--stage1-epochs",
        type=int,
        help="cascaded, stage-wise: epochs of module 1 alone (half of --epochs)",
    )
    tp.add_argument(
        "--preliminary-weight",
        type=float,
        default=0.5,
        help="cascaded, end-to-end: weight of the loss on the preliminary image",
    )
    tp.add_argument("--steps", type=positive_int, default=4000, help="optimiser steps")
    tp.add_argument("--batch", type=positive_int, default=32, help="samples per step")
    tp.add_argument("--size", type=positive_int, default=24, help="training image size (px)")
    tp.add_argument("--seed", type=int, default=0)
    tp.add_argument("-o", "--output", required=True, help="model folder (model.pt + card.json)")
    tp.add_argument("--overwrite", action="store_true")
    tp.add_argument("--quiet", action="store_true")
    tp.set_defaults(func=cmd_train)
