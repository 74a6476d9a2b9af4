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
from .learned import (
    Phase,
    iter_infer_signal_model,
    iter_train_signal_model,
    load_signal_model,
)
from .registry import Method, Param, register


def default_dernet_path() -> Path:
    """The DERnet shipped for the ``preclinical-2d`` preset (19 x 19 calibration)."""
    return Path(str(resources.files("napari_mpi").joinpath("models", "dernet_preclinical2d")))


def load_dernet(sm: SystemMatrix, path: str | Path | None = None):
    """(network, row indices into ``sm``, card) for a DERnet folder; checks the fingerprint."""
    from ..nn.dernet import DERnet

    return load_signal_model(sm, path, "dernet", DERnet, default_dernet_path())


def iter_dernet(
    sm: SystemMatrix, measurements: np.ndarray, model: str = "default"
) -> Generator[Progress, None, np.ndarray]:
    """DERnet inference (eq. 10: b_max Net(b / b_max)); returns (frames, voxels)."""
    return (
        yield from iter_infer_signal_model(
            sm, measurements, "dernet", lambda s: load_dernet(s, model)
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
    lr_schedule: str = "cosine",
    architecture: dict | None = None,
    command: str | None = None,
) -> Generator[Progress, None, dict]:
    """Train DERnet for ``system_matrix``; yields progress, keeps the best validation model.

    Rows: those with calibration SNR >= ``snr_threshold`` (all when None). Data: pairs from
    :mod:`napari_mpi.recon.training_data` (digits of the training / validation splits, SNR
    uniform in 20-40 dB). MSE loss on b_max Net(b / b_max) (eq. 11; phantoms have maximum 1),
    Adam at ``lr`` (``lr_schedule`` "cosine": decaying to lr / 100; ``fresh_noise``: new noise
    on the training pairs every epoch); the epoch with the lowest validation MSE is kept.
    Closing the generator keeps the best checkpoint written so far.
    """
    from ..nn.dernet import DERnet
    from ..nn.losses import make_loss

    mse = make_loss("mse")
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
            lr_schedule=lr_schedule,
            command=command,
            card_extra={"loss": "mse"},
        )
    )


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
