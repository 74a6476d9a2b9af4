"""DERnet reconstruction and training, for any system matrix.

A DERnet model is tied to the system matrix it was trained for (see :mod:`.learned`): its card
records the rows it reads and the signature of the system matrix on those rows, and
reconstruction refuses a mismatch.
"""

from __future__ import annotations

from collections.abc import Generator
from importlib import resources
from pathlib import Path

import numpy as np

from ..progress import Progress
from ..system_matrix import SystemMatrix
from .learned import DEVICE_PARAM, iter_infer_signal_model, load_signal_model
from .registry import Method, Param, register
from .training_config import DERNET_KEYS, DERNET_SIZE_KEYS, INITIALISATIONS, DERnetConfig

__all__ = [
    "DERNET_KEYS",
    "DERNET_SIZE_KEYS",
    "INITIALISATIONS",
    "DERnetConfig",
    "default_dernet_path",
    "iter_dernet",
    "iter_train_dernet",
    "load_dernet",
    "ridge_initialise",
]


def default_dernet_path() -> Path:
    """The DERnet shipped for the ``preclinical-2d`` preset (19 x 19 calibration)."""
    return Path(str(resources.files("napari_mpi").joinpath("models", "dernet_preclinical2d")))


def load_dernet(sm: SystemMatrix, path: str | Path | None = None):
    """(network, row indices into ``sm``, card) for a DERnet folder; checks the fingerprint."""
    from ..nn.dernet import DERnet

    return load_signal_model(sm, path, "dernet", DERnet, default_dernet_path())


def _ridge_fit(x, y, xv, yv, scale: float, relative_lambdas) -> tuple[float, float, np.ndarray]:
    """Ridge regression of y / scale on the flattened x; the lambda with the best validation
    PSNR of the clipped estimate. Returns (PSNR dB, relative lambda, weights (2 rows, voxels))."""
    n = len(x)
    feats = x.reshape(n, -1).astype(np.float64)  # [Re of every row, Im of every row]
    evals, evecs = np.linalg.eigh(feats.T @ feats)
    projected = evecs.T @ (feats.T @ (y.reshape(n, -1).astype(np.float64) / scale))
    feats_v = xv.reshape(len(xv), -1).astype(np.float64)
    target_v = yv.reshape(len(yv), -1).astype(np.float64)
    peak_v = np.maximum(target_v.max(axis=1), 1e-30) ** 2
    best = None
    for rel in relative_lambdas:
        weights = evecs @ (projected / (evals + rel * evals.max())[:, None])
        estimate = np.maximum(feats_v @ weights * scale, 0.0)
        mse = np.mean((estimate - target_v) ** 2, axis=1)
        psnr = float(np.mean(10 * np.log10(peak_v / np.maximum(mse, 1e-30))))
        if best is None or psnr > best[0]:
            best = (psnr, float(rel), weights)
    return best


def ridge_initialise(
    net,
    train,
    val,
    bands: int = 1,
    snr_range: tuple[float, float] = (20.0, 40.0),
    relative_lambdas: tuple[float, ...] = (1e-8, 1e-7, 1e-6, 1e-5),
) -> dict:
    """Start DERnet's domain transform at linear reconstructions fitted to the training pairs.

    With ``bands`` = 1 the fully connected layer's first output channel is set to the ridge
    regression of the normalised phantoms (p / b_max) on the normalised (Re, Im) signals of
    the training pairs; with ``bands`` = k > 1 its first k channels are set to k such
    regressions, each on the clean training signals with new noise at SNRs in one of k equal
    parts of ``snr_range`` (dB), so the convolutions after it start with images regularised for
    low and for high SNR to choose from. Each lambda is ``relative_lambdas`` x the largest
    eigenvalue of the Gram matrix, the one with the best validation PSNR kept. The first two
    channels of the 1D convolutions pass Re and Im through unchanged (|b / b_max| <= 1, so a
    bias of 2 keeps the ReLU between them in its linear part). Everything else keeps PyTorch's
    initialisation, and all weights are trained as usual.

    ``train`` and ``val`` are :class:`~napari_mpi.recon.training_data.TrainingSet`. Returns what
    the card records: the kind, and per fitted channel its SNR band, relative lambda and
    validation PSNR (dB) of the linear start (scalars when ``bands`` = 1).
    """
    import torch

    from .learned import normalise_signal

    c1, c2 = net.signal[1].out_channels, net.c2
    if c1 < 2:
        raise ValueError(f"ridge initialisation needs c1 >= 2 1D channels, got {c1}")
    if not 1 <= bands <= c2:
        raise ValueError(f"ridge initialisation: bands must be in 1..c2 = {c2}, got {bands}")
    scale = float(net.output_scale)
    rows = train.measurements.shape[1]
    edges = np.linspace(*snr_range, bands + 1)
    fits = []
    for k in range(bands):
        if bands == 1:
            u, uv = train.measurements, val.measurements
        else:
            rng = np.random.default_rng([k, 7])
            band = (float(edges[k]), float(edges[k + 1]))
            u, uv = train.redraw_noise(rng, band), val.redraw_noise(rng, band)
        (x, b), (xv, bv) = normalise_signal(u), normalise_signal(uv)
        y = train.phantoms[:, 0] / b[:, None, None]
        yv = val.phantoms[:, 0] / bv[:, None, None]
        fits.append(_ridge_fit(x, y, xv, yv, scale, relative_lambdas))
    voxels = fits[0][2].shape[1]
    with torch.no_grad():
        first, second, fc = net.signal[1], net.signal[3], net.fc[1]
        for conv, bias in ((first, 2.0), (second, -2.0)):
            conv.weight[:2].zero_()
            conv.bias[:2] = bias
            centre = conv.kernel_size[0] // 2
            conv.weight[0, 0, centre] = 1.0
            conv.weight[1, 1, centre] = 1.0
        for k, (_, _, weights) in enumerate(fits):
            part = slice(k * voxels, (k + 1) * voxels)
            fc.weight[part].zero_()
            fc.weight[part, : 2 * rows] = torch.from_numpy(weights.T.astype(np.float32))
            fc.bias[part].zero_()
    if bands == 1:
        return {"kind": "ridge", "relative_lambda": fits[0][1], "val_psnr_db": fits[0][0]}
    return {
        "kind": "ridge-bands",
        "snr_bands_db": [[float(edges[k]), float(edges[k + 1])] for k in range(bands)],
        "relative_lambda": [f[1] for f in fits],
        "val_psnr_db": [f[0] for f in fits],
    }


def iter_dernet(
    sm: SystemMatrix, measurements: np.ndarray, model: str = "default", device: str = "auto"
) -> Generator[Progress, None, np.ndarray]:
    """DERnet inference (eq. 10: b_max Net(b / b_max)) on ``device``; returns (frames, voxels)."""
    return (
        yield from iter_infer_signal_model(
            sm, measurements, "dernet", lambda s: load_dernet(s, model), device=device
        )
    )


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
    fresh_noise: bool = True,
    fresh_phantoms: bool = False,
    lr_schedule: str = "cosine",
    snr_range: tuple[float, float] = (20.0, 40.0),
    init: str = "random",
    init_from: str | Path | None = None,
    architecture: dict | None = None,
    phantom_mix: dict | None = None,
    command: str | None = None,
    device: str = "auto",
    resume: bool = False,
) -> Generator[Progress, None, dict]:
    """Train DERnet for ``system_matrix``; yields progress, keeps the best validation model.

    The parameters and their defaults are the fields of :class:`~napari_mpi.recon.
    training_config.DERnetConfig` (``device``: "auto", "cpu", "cuda", ...; ``resume``:
    continue the run saved in ``output``); training runs on :func:`napari_mpi.nn.training.
    iter_train`.

    Rows: those with calibration SNR >= ``snr_threshold`` (all when None). Data: pairs from
    :mod:`napari_mpi.recon.training_data` (phantoms of ``phantom_mix``, None: the default mix
    of :mod:`napari_mpi.simulation.phantom_mix`, its digits from the training / validation
    splits; SNR
    uniform in ``snr_range``, dB over the selected rows, 20-40 by default). MSE loss on
    b_max Net(b / b_max) (eq. 11; phantoms have maximum 1), Adam at ``lr`` (``lr_schedule``
    "cosine": decaying to lr / 100; ``fresh_noise``: new noise on the training pairs every
    epoch; ``fresh_phantoms``: new placements too); the epoch with the lowest validation MSE
    is kept. ``init`` "ridge" starts the domain transform at the
    linear reconstruction fitted to the training pairs, "ridge-bands" at one such fit per SNR
    band in its first C2 channels (:func:`ridge_initialise`), "random" at PyTorch's defaults.
    ``init_from``: continue training a DERnet folder (its rows, architecture and weights;
    ``init`` and ``snr_threshold`` are then taken from it, and ``architecture`` may only change
    the dropout rates). Closing the generator keeps the best checkpoint written so far.
    """
    from ..nn.dernet import DERnet
    from ..nn.losses import make_loss
    from .signal_training import Phase, iter_train_signal_model

    if init not in INITIALISATIONS:
        raise ValueError(f"dernet: init must be one of {INITIALISATIONS}, got {init!r}")
    mse = make_loss("mse")
    if init_from is not None:
        from ..nn.checkpoint import read_card

        card = read_card(init_from)
        start = {k: v for k, v in card.get("architecture", {}).items() if k in DERNET_KEYS}
        sizes = {
            k: v
            for k, v in (architecture or {}).items()
            if k in DERNET_SIZE_KEYS and start.get(k) != v
        }
        if sizes:
            raise ValueError(
                f"dernet: init_from {init_from} has layer sizes "
                f"{ {k: start.get(k) for k in sizes} }; a continued model keeps them (got {sizes}; "
                "only the dropout rates may change)"
            )
        architecture = {**start, **(architecture or {})}
    return (
        yield from iter_train_signal_model(
            system_matrix,
            source,
            output,
            method="dernet",
            build=lambda sm, scale: DERnet(
                sm.num_rows, sm.grid_shape[1:], **{"output_scale": scale, **(architecture or {})}
            ),
            outputs=lambda net, x: {"final": net(x)},
            phases=[
                Phase(
                    "dernet",
                    epochs,
                    lambda net: net.parameters(),
                    lambda out, y: mse(out["final"], y),
                )
            ],
            select=lambda out, y: mse(out["final"], y),
            snr_threshold=snr_threshold,
            batch=batch,
            lr=lr,
            seed=seed,
            num_train=num_train,
            num_val=num_val,
            fresh_noise=fresh_noise,
            fresh_phantoms=fresh_phantoms,
            lr_schedule=lr_schedule,
            snr_range=snr_range,
            phantom_mix=phantom_mix,
            initialise=None if init_from is not None else _initialiser(init, snr_range),
            init_from=init_from,
            command=command,
            device=device,
            resume=resume,
            card_extra={"loss": "mse", "init": "from" if init_from is not None else init},
        )
    )


def _initialiser(init: str, snr_range: tuple[float, float]):
    """The ``initialise`` hook of :func:`~napari_mpi.recon.learned.iter_train_signal_model`;
    ridge bands split the training ``snr_range``."""
    if init == "ridge":
        return ridge_initialise
    if init == "ridge-bands":
        return lambda net, train, val: ridge_initialise(
            net, train, val, bands=net.c2, snr_range=snr_range
        )
    return None


register(
    Method(
        name="dernet",
        title="DERnet (end-to-end network)",
        description="Signal-to-image network of the DERnet paper; a model is trained for one "
        "system matrix (napari-mpi train dernet) and refuses others.",
        params=(
            Param("model", str, "default", "model folder or 'default' (preclinical-2d)"),
            DEVICE_PARAM,
        ),
        solve=iter_dernet,
        kind="learned",
        reference="DERnet, Phys. Med. Biol. 2024",
        order=50,
        selects_rows=True,
    )
)
