"""DERnet reconstruction and training, for any system matrix.

A DERnet model is tied to the system matrix it was trained for: its card records the
(channel, frequency) rows it reads (chosen by an SNR threshold on the calibration) and the
fingerprint of the system matrix restricted to those rows. Reconstruction picks those rows from
the given system matrix and measurements and refuses a mismatch; so a model trained on a
calibration read with default settings works with that calibration read the same way, and with
any selection that still contains its rows.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Generator
from importlib import resources
from pathlib import Path

import numpy as np

from ..progress import Progress
from ..system_matrix import SystemMatrix
from .registry import Method, Param, check_inputs, register
from .selection import select_frequencies
from .training_data import iter_training_set

_MODELS: dict[str, tuple] = {}


def default_dernet_path() -> Path:
    """The DERnet shipped for the ``preclinical-2d`` preset (19 x 19 calibration)."""
    return Path(str(resources.files("napari_mpi").joinpath("models", "dernet_preclinical2d")))


def _row_keys(sm: SystemMatrix) -> list[tuple[int, int, int]]:
    return [
        (int(p), int(c), int(k))
        for p, c, k in zip(sm.periods, sm.channels, sm.frequency_indices, strict=True)
    ]


def model_rows(sm: SystemMatrix, card: dict, folder: Path) -> np.ndarray:
    """Indices of the model's rows in ``sm``; ValueError naming what is missing."""
    lookup = {key: i for i, key in enumerate(_row_keys(sm))}
    wanted = [tuple(r) for r in card["row_keys"]]
    missing = [r for r in wanted if r not in lookup]
    if missing:
        raise ValueError(
            f"model {folder} reads {len(wanted)} rows; {len(missing)} of them are not in this "
            f"system matrix (e.g. channel {missing[0][1]}, bin {missing[0][2]}): read the "
            "calibration without a stricter frequency selection"
        )
    return np.array([lookup[r] for r in wanted])


def load_dernet(sm: SystemMatrix, path: str | Path | None = None):
    """(network, row indices into ``sm``, card) for a DERnet folder; checks the fingerprint."""
    from ..nn.checkpoint import CARD, build_model, load_checkpoint
    from ..nn.dernet import DERnet

    folder = default_dernet_path() if path in (None, "", "default") else Path(path)
    if not (folder / CARD).is_file():
        raise ValueError(f"model {folder}: missing {CARD}")
    card = json.loads((folder / CARD).read_text())
    if card.get("method") != "dernet":
        raise ValueError(f"model {folder}: card says method {card.get('method')!r}, not dernet")
    rows = model_rows(sm, card, folder)
    sub = sm.select_rows(rows)
    key = (str(folder.resolve()), id(sm), sub.fingerprint())
    if key not in _MODELS:
        state, card = load_checkpoint(folder, sub)
        net = build_model(DERnet, state, card, folder, grid=tuple(card["architecture"]["grid"]))
        _MODELS[key] = (net, card)
    net, card = _MODELS[key]
    return net, rows, card


def _normalise(u: np.ndarray):
    """[Re, Im] / b_max per frame (eq. 9): (F, 2, rows) float32, and b_max (F,)."""
    b_max = np.abs(u).max(axis=1)
    b_max = np.where(b_max > 0, b_max, 1.0)
    x = np.stack([u.real, u.imag], axis=1) / b_max[:, None, None]
    return x.astype(np.float32), b_max.astype(np.float32)


def iter_dernet(
    sm: SystemMatrix, measurements: np.ndarray, model: str = "default"
) -> Generator[Progress, None, np.ndarray]:
    """DERnet inference (eq. 10: b_max Net(b / b_max)); returns (frames, voxels)."""
    import torch

    u = check_inputs(sm, measurements)
    if sm.grid_shape[0] != 1:
        raise ValueError("dernet: only 2D grids (one voxel along z) are supported")
    net, rows, _ = load_dernet(sm, model)
    yield Progress(0, 1, "dernet")
    x, b_max = _normalise(u[:, rows])
    with torch.no_grad():
        out = net(torch.from_numpy(x)).numpy()
    images = out.reshape(out.shape[0], -1) * b_max[:, None]
    yield Progress(1, 1, "dernet")
    return np.maximum(images, 0.0)


def iter_train_dernet(
    system_matrix: SystemMatrix,
    source: str | Path | None,
    output: str | Path,
    snr_threshold: float | None = 10.0,
    epochs: int = 15,
    batch: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    num_train: int | None = None,
    num_val: int | None = None,
    architecture: dict | None = None,
    command: str | None = None,
) -> Generator[Progress, None, dict]:
    """Train DERnet for ``system_matrix``; yields progress, keeps the best validation model.

    Rows: those with calibration SNR >= ``snr_threshold`` (all when None). Data: pairs from
    :mod:`napari_mpi.recon.training_data` (digits of the training / validation splits, SNR
    uniform in 20-40 dB). MSE loss on b_max Net(b / b_max) (eq. 11), Adam at ``lr``.
    Closing the generator keeps the best checkpoint written so far.
    """
    import torch

    from ..nn.checkpoint import save_checkpoint
    from ..nn.dernet import DERnet

    if system_matrix.grid_shape[0] != 1:
        raise ValueError("dernet: only 2D grids (one voxel along z) are supported")
    sm = (
        system_matrix if snr_threshold is None else select_frequencies(system_matrix, snr_threshold)
    )
    n_train = num_train or 8100
    n_val = num_val or 900
    torch.manual_seed(seed)
    yield Progress(0, 1, "making training data")
    train = yield from iter_training_set(sm, source, n_train, split="train", seed=seed)
    val = yield from iter_training_set(sm, source, n_val, split="val", seed=seed)
    grid = sm.grid_shape[1:]
    xt, bt = _normalise(train.measurements)
    ratio = train.phantoms.reshape(n_train, -1).max(axis=1) / bt
    arch = {"output_scale": float(np.median(ratio[np.isfinite(ratio)])), **(architecture or {})}
    net = DERnet(sm.num_rows, grid, **arch)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    yt = train.phantoms[:, 0]
    xv, bv = _normalise(val.measurements)
    yv = torch.from_numpy(val.phantoms[:, 0])
    xt, bt, yt = torch.from_numpy(xt), torch.from_numpy(bt), torch.from_numpy(yt)
    xv, bv = torch.from_numpy(xv), torch.from_numpy(bv)
    rng = np.random.default_rng(seed)
    steps_per_epoch = int(np.ceil(n_train / batch))
    total = epochs * steps_per_epoch
    best = float("inf")
    card: dict = {}
    if command is None:
        command = shlex.join(sys.argv)
    t0 = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        net.train()
        order = rng.permutation(n_train)
        for i in range(steps_per_epoch):
            idx = torch.from_numpy(order[i * batch : (i + 1) * batch])
            pred = net(xt[idx]) * bt[idx, None, None]
            loss = torch.mean((pred - yt[idx]) ** 2)
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            yield Progress(step, total, f"epoch {epoch + 1}/{epochs}, loss {loss.item():.2e}")
        net.eval()
        with torch.no_grad():
            pv = net(xv) * bv[:, None, None]
            mse = torch.mean((pv - yv) ** 2, dim=(1, 2))
            psnr = 10 * torch.log10(yv.amax(dim=(1, 2)) ** 2 / mse)
        val_mse, val_psnr = float(mse.mean()), float(psnr.mean())
        if val_mse < best:
            best = val_mse
            card = {
                "method": "dernet",
                "architecture": {"class": "DERnet", **net.config},
                "grid_shape": list(sm.grid_shape),
                "rows": sm.num_rows,
                "row_keys": _row_keys(sm),
                "snr_threshold": snr_threshold,
                "fingerprint": sm.fingerprint(),
                "signature": sm.signature(),
                "command": command,
                "data": {
                    "source": str(source) if source else "procedural",
                    "train": n_train,
                    "val": n_val,
                    "snr_db": [20, 40],
                },
                "seed": seed,
                "training": {"epochs_done": epoch + 1, "batch": batch, "lr": lr},
                "metrics": {
                    "val_mse": val_mse,
                    "val_psnr_db": val_psnr,
                    "train_seconds": time.perf_counter() - t0,
                },
            }
            save_checkpoint(output, net.state_dict(), card)
    return card


register(
    Method(
        name="dernet",
        title="DERnet (end-to-end network)",
        description="Signal-to-image network of the DERnet paper; a model is trained for one "
        "system matrix (napari-mpi train dernet) and refuses others.",
        params=(Param("model", str, "default", "model folder or 'default' (preclinical-2d)"),),
        solve=iter_dernet,
        kind="learned",
        reference="DERnet, Phys. Med. Biol. 2024",
        order=50,
    )
)
