"""What the signal-to-image networks (DERnet, the cascaded network) share.

A model is tied to the system matrix it was trained for: its card records the (period,
channel, frequency) rows it reads (chosen by an SNR threshold on the calibration) and the
fingerprint and signature of the system matrix restricted to those rows. Reconstruction picks
those rows from the given system matrix and measurements and refuses a mismatch; so a model
trained on a calibration read with default settings works with that calibration read the same
way, and with any selection that still contains its rows.

Training (:func:`iter_train_signal_model`, in :mod:`.signal_training`) runs on the one loop
:func:`napari_mpi.nn.training.iter_train`: it yields :class:`~napari_mpi.progress.Progress`
with ``info`` (phase "making samples" / "training" / "validating", stage, epoch, step, loss,
and after each epoch val_loss, val_mse, val_psnr_db), and closing it keeps the best
checkpoint written so far.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import numpy as np

from ..progress import Progress
from ..system_matrix import SystemMatrix
from .registry import Param

#: the ``device`` parameter of every method that runs a network (inference)
DEVICE_PARAM = Param(
    "device",
    str,
    "auto",
    "torch device for the network: auto (CUDA when available, else CPU), cpu, cuda, cuda:N, mps",
)

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
            f"system matrix (e.g. channel {missing[0][1]}, bin {missing[0][2]}). "
            + _missing_rows_hint(sm)
        )
    return np.array([lookup[r] for r in wanted])


def _missing_rows_hint(sm: SystemMatrix) -> str:
    """What to change when a model's rows are missing (the selection, or the model)."""
    chosen = sm.metadata.get("frequency_selection")
    if chosen:
        return (
            f"This system matrix was read with a frequency selection ({chosen}): pass the "
            "calibration read without one (MDFFile.system_matrix() with no snr_threshold, "
            "min/max_frequency or channels); the network picks its own rows"
        )
    return (
        "The calibration lacks those rows, so the model was trained for another calibration: "
        "choose a model trained for this one (the 'model' parameter, CLI --model) or train "
        "one (napari-mpi train ... --calibration THIS_FILE)"
    )


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
        if hasattr(net, "for_inference"):  # e.g. DERnet's faster inference form
            net = net.for_inference()
        _MODELS[key] = (net, card)
    net, card = _MODELS[key]
    return net, rows, card


def iter_infer_signal_model(
    sm: SystemMatrix,
    measurements: np.ndarray,
    method: str,
    load,
    pick=lambda out: out,
    device: str = "auto",
) -> Generator[Progress, None, np.ndarray]:
    """Inference of a signal-to-image network: b_max Net(b / b_max) (DERnet eq. 10).

    ``load(sm)`` returns (network, row indices, card); ``pick`` chooses the image from the
    network's output; ``device`` ("auto", "cpu", "cuda", ...) is where the network runs.
    Returns (frames, voxels), non-negative.
    """
    import torch

    from ..nn.training import resolve_device
    from .registry import check_inputs

    u = check_inputs(sm, measurements)
    if sm.grid_shape[0] != 1:
        raise ValueError(f"{method}: only 2D grids (one voxel along z) are supported")
    dev = resolve_device(device)
    net, rows, _ = load(sm)
    yield Progress(0, 1, method)
    x, b_max = normalise_signal(u[:, rows])
    with torch.no_grad():
        out = pick(net.to(dev)(torch.from_numpy(x).to(dev))).cpu().numpy()
    images = out.reshape(out.shape[0], -1) * b_max[:, None]
    yield Progress(1, 1, method)
    return np.maximum(images, 0.0)


#: names of :mod:`.signal_training` kept importable from here (loaded on first use, so that
#: reconstruction does not import the training data and the simulator)
_TRAINING_NAMES = ("LR_SCHEDULES", "Phase", "iter_train_signal_model")


def __getattr__(name: str):
    if name in _TRAINING_NAMES:
        from . import signal_training

        return getattr(signal_training, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
