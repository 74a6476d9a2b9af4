"""What the signal-to-image networks (DERnet, the cascaded network) share.

A model is tied to the system matrix it was trained for: its card records the (period,
channel, frequency) rows it reads (chosen by an SNR threshold on the calibration) and the
fingerprint and signature of the system matrix restricted to those rows. Reconstruction picks
those rows from the given system matrix and measurements and refuses a mismatch; so a model
trained on a calibration read with default settings works with that calibration read the same
way, and with any selection that still contains its rows.

Training (:func:`iter_train_signal_model`) makes pairs from :mod:`.training_data`, normalises
each signal by its maximum amplitude b_max (DERnet eq. 9), runs Adam over one or more phases
(each with its own trainable parameters and loss), validates after every epoch and keeps the
best validation model on disk. It is a generator: it yields :class:`~napari_mpi.progress.
Progress` with ``info`` (phase, epoch, step, loss, and after each epoch val_loss, val_mse,
val_psnr_db), and closing it keeps the best checkpoint written so far.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..progress import Progress, run
from ..system_matrix import SystemMatrix
from .selection import select_frequencies
from .training_data import iter_training_set

_MODELS: dict[tuple, tuple] = {}


def row_keys(sm: SystemMatrix) -> list[tuple[int, int, int]]:
    """(period, channel, frequency index) of every row of ``sm``."""
    return [
        (int(p), int(c), int(k))
        for p, c, k in zip(sm.periods, sm.channels, sm.frequency_indices, strict=True)
    ]


def model_rows(sm: SystemMatrix, card: dict, folder: Path) -> np.ndarray:
    """Indices of the model's rows in ``sm``; ValueError naming what is missing."""
    lookup = {key: i for i, key in enumerate(row_keys(sm))}
    wanted = [tuple(r) for r in card["row_keys"]]
    missing = [r for r in wanted if r not in lookup]
    if missing:
        raise ValueError(
            f"model {folder} reads {len(wanted)} rows; {len(missing)} of them are not in this "
            f"system matrix (e.g. channel {missing[0][1]}, bin {missing[0][2]}): read the "
            "calibration without a stricter frequency selection"
        )
    return np.array([lookup[r] for r in wanted])


def normalise_signal(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[Re, Im] / b_max per frame (DERnet eq. 9): (F, 2, rows) float32, and b_max (F,)."""
    b_max = np.abs(u).max(axis=1)
    b_max = np.where(b_max > 0, b_max, 1.0)
    x = np.stack([u.real, u.imag], axis=1) / b_max[:, None, None]
    return x.astype(np.float32), b_max.astype(np.float32)


def load_signal_model(sm: SystemMatrix, path, method: str, model_class, default: Path):
    """(network, row indices into ``sm``, card) for a model folder; checks the method, the
    rows and the signature of the system matrix on those rows. Networks are cached."""
    from ..nn.checkpoint import CARD, WEIGHTS, build_model, load_checkpoint, read_card

    folder = default if path in (None, "", "default") else Path(path)
    card = read_card(folder)
    if card.get("method") != method:
        raise ValueError(f"model {folder}: card says method {card.get('method')!r}, not {method}")
    if "row_keys" not in card:
        raise ValueError(f"model {folder}: {CARD} lacks 'row_keys' (the rows the model reads)")
    if not (folder / WEIGHTS).is_file():
        raise ValueError(f"model {folder}: missing {WEIGHTS}")
    rows = model_rows(sm, card, folder)
    sub = sm.select_rows(rows)
    key = (
        method,
        str(folder.resolve()),
        (folder / WEIGHTS).stat().st_mtime_ns,
        sub.fingerprint(),
    )
    if key not in _MODELS:
        state, card = load_checkpoint(folder, sub)
        net = build_model(
            model_class, state, card, folder, grid=tuple(card["architecture"]["grid"])
        )
        _MODELS[key] = (net, card)
    net, card = _MODELS[key]
    return net, rows, card


def iter_infer_signal_model(
    sm: SystemMatrix, measurements: np.ndarray, method: str, load, pick=lambda out: out
) -> Generator[Progress, None, np.ndarray]:
    """Inference of a signal-to-image network: b_max Net(b / b_max) (DERnet eq. 10).

    ``load(sm)`` returns (network, row indices, card); ``pick`` chooses the image from the
    network's output. Returns (frames, voxels), non-negative.
    """
    import torch

    from .registry import check_inputs

    u = check_inputs(sm, measurements)
    if sm.grid_shape[0] != 1:
        raise ValueError(f"{method}: only 2D grids (one voxel along z) are supported")
    net, rows, _ = load(sm)
    yield Progress(0, 1, method)
    x, b_max = normalise_signal(u[:, rows])
    with torch.no_grad():
        out = pick(net(torch.from_numpy(x))).numpy()
    images = out.reshape(out.shape[0], -1) * b_max[:, None]
    yield Progress(1, 1, method)
    return np.maximum(images, 0.0)


#: learning-rate schedules of :func:`iter_train_signal_model`
LR_SCHEDULES = ("cosine", "constant")


@dataclass
class Phase:
    """One stretch of training.

    Attributes
    ----------
    name : str
        Shown in progress messages ("end-to-end", "module 1", ...).
    epochs : int
        Passes over the training pairs.
    parameters : Callable[[nn.Module], iterable]
        The trainable parameters of this phase (the rest are frozen).
    loss : Callable[[dict, Tensor], Tensor]
        Loss of the network's named outputs (each (batch, N1, N2), physical units) against the
        phantoms.
    frozen : Callable[[nn.Module], list of nn.Module], optional
        Sub-modules kept in evaluation mode during this phase (frozen batch-norm statistics,
        no dropout), e.g. module 1 while module 2 of the cascaded network trains.
    """

    name: str
    epochs: int
    parameters: Callable[[Any], Any]
    loss: Callable[[dict, Any], Any]
    frozen: Callable[[Any], list] | None = None


def iter_train_signal_model(
    system_matrix: SystemMatrix,
    source: str | Path | None,
    output: str | Path,
    *,
    method: str,
    build: Callable[[SystemMatrix, float], Any],
    outputs: Callable[[Any, Any], dict],
    phases: list[Phase],
    select: Callable[[dict, Any], Any],
    snr_threshold: float | None = 10.0,
    batch: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    num_train: int | None = None,
    num_val: int | None = None,
    fresh_noise: bool = True,
    fresh_phantoms: bool = False,
    lr_schedule: str = "cosine",
    snr_range: tuple[float, float] = (20.0, 40.0),
    initialise: Callable[[Any, Any, Any], dict] | None = None,
    init_from: str | Path | None = None,
    command: str | None = None,
    card_extra: dict | None = None,
) -> Generator[Progress, None, dict]:
    """Train a signal-to-image network for ``system_matrix`` (see the module docstring).

    ``build(sm, output_scale)`` makes the network for the selected rows ``sm``;
    ``outputs(net, x)`` runs it on normalised signals and returns its named images, "final"
    being the one reconstruction returns; ``select(outputs, target)`` is the validation score
    (lower is better) that picks the checkpoint kept. Rows: those with calibration
    SNR >= ``snr_threshold`` (all when None). Data: ``num_train`` (8100) and ``num_val`` (900)
    pairs from the training and validation splits, SNR uniform in ``snr_range`` (dB, over the
    selected rows; 20-40 by default, as the DERnet paper); with
    ``fresh_noise`` the training pairs get new noise (and new SNRs) every epoch, the
    validation pairs keep theirs; with ``fresh_phantoms`` every epoch gets a new draw of
    training pairs altogether (new placements of the same training digits, new noise).
    ``lr_schedule`` "cosine" decays the learning rate from ``lr`` to lr / 100 over each phase
    (cosine), "constant" keeps it. ``initialise(net, train, val)``, if given, sets the new
    network's starting weights from the training and validation
    :class:`~napari_mpi.recon.training_data.TrainingSet` and returns what the card records
    about it. ``init_from`` (a model folder of the same method) continues training that model
    instead: its rows (``snr_threshold`` is then ignored), output scale and weights; the
    network ``build`` makes must have its architecture.
    """
    import torch

    from ..nn.checkpoint import save_checkpoint

    if system_matrix.grid_shape[0] != 1:
        raise ValueError(f"{method}: only 2D grids (one voxel along z) are supported")
    if not phases or any(p.epochs < 0 for p in phases):
        raise ValueError(f"{method}: training needs phases with epochs >= 0")
    start = None
    if init_from is not None:
        from ..nn.checkpoint import load_checkpoint, read_card

        folder = Path(init_from)
        start = read_card(folder)
        if start.get("method") != method or "row_keys" not in start:
            raise ValueError(
                f"{method}: init_from {folder} is not a {method} model "
                f"(its card says method {start.get('method')!r})"
            )
        sm = system_matrix.select_rows(model_rows(system_matrix, start, folder))
        state, start = load_checkpoint(folder, sm)  # refuses another system matrix
        snr_threshold = start.get("snr_threshold")
    elif snr_threshold is None:
        sm = system_matrix
    else:
        sm = select_frequencies(system_matrix, snr_threshold)
    if sm.num_rows == 0:
        raise ValueError(f"{method}: no rows with calibration SNR >= {snr_threshold}")
    snr_range = (float(snr_range[0]), float(snr_range[1]))  # checked by iter_training_set
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(
            f"{method}: lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}"
        )
    n_train = num_train or 8100
    n_val = num_val or 900
    torch.manual_seed(seed)
    yield Progress(0, 1, "making training data")
    data = {"snr_range": snr_range, "seed": seed}
    train = yield from iter_training_set(sm, source, n_train, split="train", **data)
    val = yield from iter_training_set(sm, source, n_val, split="val", **data)
    xt, bt = normalise_signal(train.measurements)
    ratio = train.phantoms.reshape(n_train, -1).max(axis=1) / bt
    if start is None:
        net = build(sm, float(np.median(ratio[np.isfinite(ratio)])))
    else:
        net = build(sm, float(start["architecture"]["output_scale"]))
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise ValueError(
                f"{method}: init_from {init_from}: its weights do not fit the network to train "
                f"(train with its architecture: {start['architecture']}; {exc})"
            ) from None
    xv, bv = normalise_signal(val.measurements)
    init_info = None
    if start is not None:
        init_info = {
            "kind": "from",
            "model": str(init_from),
            "model_command": start.get("command"),
            "model_epochs_done": start.get("training", {}).get("epochs_done"),
            "model_val_psnr_db": start.get("metrics", {}).get("val_psnr_db"),
        }
    elif initialise is not None:
        yield Progress(0, 1, "initialising the network")
        init_info = initialise(net, train, val)
    yt, yv = torch.from_numpy(train.phantoms[:, 0]), torch.from_numpy(val.phantoms[:, 0])
    xt, bt = torch.from_numpy(xt), torch.from_numpy(bt)
    xv, bv = torch.from_numpy(xv), torch.from_numpy(bv)
    rng = np.random.default_rng(seed)
    noise_rng = np.random.default_rng([seed, 3])
    steps_per_epoch = int(np.ceil(n_train / batch))
    total_epochs = sum(p.epochs for p in phases)
    total = total_epochs * steps_per_epoch
    command = shlex.join(sys.argv) if command is None else command
    # what the card says about the system matrix and the run does not change between epochs
    card_base = {
        "method": method,
        "architecture": {"class": type(net).__name__, **net.config},
        "grid_shape": list(sm.grid_shape),
        "rows": sm.num_rows,
        "row_keys": row_keys(sm),
        "snr_threshold": snr_threshold,
        "fingerprint": sm.fingerprint(),
        "signature": sm.signature(),
        "command": command,
        "data": {
            "source": str(source) if source else "procedural",
            "train": n_train,
            "val": n_val,
            "snr_db": list(snr_range),
            "fresh_noise": bool(fresh_noise),
            "fresh_phantoms": bool(fresh_phantoms),
        },
        "seed": seed,
    }
    if init_info is not None:
        card_base["initialisation"] = init_info
    best, card, history = float("inf"), {}, []
    t0 = time.perf_counter()
    step = epoch_count = 0

    def scaled(out: dict, b: torch.Tensor) -> dict:
        return {k: v * b[:, None, None] for k, v in out.items()}

    for phase in phases:
        trainable = list(phase.parameters(net))
        for p in net.parameters():
            p.requires_grad_(False)
        for p in trainable:
            p.requires_grad_(True)
        opt = torch.optim.Adam(trainable, lr=lr)
        sched = None
        if lr_schedule == "cosine" and phase.epochs > 0:
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(
                opt, T_max=phase.epochs * steps_per_epoch, eta_min=lr / 100
            )
        for _ in range(phase.epochs):
            epoch_count += 1
            if fresh_phantoms and epoch_count > 1:
                train = run(
                    iter_training_set(
                        sm, source, n_train, split="train", draw=epoch_count - 1, **data
                    )
                )
                xe, be = normalise_signal(train.measurements)
                xt, bt = torch.from_numpy(xe), torch.from_numpy(be)
                yt = torch.from_numpy(train.phantoms[:, 0])
            elif fresh_noise and epoch_count > 1:
                xe, be = normalise_signal(train.redraw_noise(noise_rng, snr_range))
                xt, bt = torch.from_numpy(xe), torch.from_numpy(be)
            net.train()
            for module in phase.frozen(net) if phase.frozen else ():
                module.eval()
            order = rng.permutation(n_train)
            label = f"{phase.name}, epoch {epoch_count}/{total_epochs}"
            for i in range(steps_per_epoch):
                idx = torch.from_numpy(order[i * batch : (i + 1) * batch])
                loss = phase.loss(scaled(outputs(net, xt[idx]), bt[idx]), yt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                step += 1
                info = {
                    "phase": phase.name,
                    "epoch": epoch_count,
                    "step": step,
                    "loss": float(loss.item()),
                }
                yield Progress(step, total, f"{label}, loss {info['loss']:.3g}", info)
            net.eval()
            with torch.no_grad():
                out_v = scaled(outputs(net, xv), bv)
                score = float(select(out_v, yv))
                mse = torch.mean((out_v["final"] - yv) ** 2, dim=(1, 2))
                psnr = 10 * torch.log10(yv.amax(dim=(1, 2)) ** 2 / mse.clamp_min(1e-20))
            record = {
                "epoch": epoch_count,
                "phase": phase.name,
                "val_loss": score,
                "val_mse": float(mse.mean()),
                "val_psnr_db": float(psnr.mean()),
            }
            history.append(record)
            if score < best:
                best = score
                card = {
                    **card_base,
                    "training": {
                        "epochs_done": epoch_count,
                        "batch": batch,
                        "lr": lr,
                        "lr_schedule": lr_schedule,
                        "phases": [[p.name, p.epochs] for p in phases],
                        **(card_extra or {}),
                    },
                    "metrics": {
                        "val_loss": score,
                        "val_mse": record["val_mse"],
                        "val_psnr_db": record["val_psnr_db"],
                        "train_seconds": time.perf_counter() - t0,
                    },
                    "history": list(history),
                }
                save_checkpoint(output, net.state_dict(), card)
            yield Progress(
                step,
                total,
                f"{label}, validation PSNR {record['val_psnr_db']:.2f} dB",
                {**record, "step": step, "best": score == best},
            )
    for p in net.parameters():
        p.requires_grad_(True)
    return card
