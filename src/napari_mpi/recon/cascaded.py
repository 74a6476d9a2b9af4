"""The cascaded network (Zhao et al., IJMPI 2026): reconstruction and training.

Two modules in series (:mod:`napari_mpi.nn.cascaded`): signal -> preliminary image -> refined
image. Training is ``"end-to-end"`` (both modules at once; the loss is on the final image plus
``preliminary_weight`` times the loss on the preliminary image, which keeps module 1's output an
image) or ``"stage-wise"`` (module 1 alone on the preliminary image for ``stage1_epochs``, then
module 1 frozen and module 2 trained on the final image). The loss is selectable so the paper's
comparison can be repeated: ``"mse"``, ``"l1"`` or the structure-aware ``"l1+ssim"``; the
checkpoint kept is the one with the lowest validation value of that loss on the final image.
A model is tied to the system matrix it was trained for, as DERnet's (see :mod:`.learned`).
"""

from __future__ import annotations

from collections.abc import Generator
from importlib import resources
from pathlib import Path

import numpy as np

from ..progress import Progress
from ..system_matrix import SystemMatrix
from .learned import DEVICE_PARAM, iter_infer_signal_model, load_signal_model
from .pinv import reconstruction_matrix
from .registry import Method, Param, register
from .training_config import STRATEGIES, CascadedConfig

__all__ = [
    "STRATEGIES",
    "CascadedConfig",
    "default_cascaded_path",
    "iter_cascaded",
    "iter_train_cascaded",
    "load_cascaded",
]


def default_cascaded_path() -> Path:
    """The cascaded network shipped for the ``preclinical-2d`` preset (19 x 19 calibration)."""
    return Path(str(resources.files("napari_mpi").joinpath("models", "cascaded_preclinical2d")))


def load_cascaded(sm: SystemMatrix, path: str | Path | None = None):
    """(network, row indices into ``sm``, card) for a cascaded-network folder."""
    from ..nn.cascaded import CascadedNet

    return load_signal_model(sm, path, "cascaded", CascadedNet, default_cascaded_path())


def iter_cascaded(
    sm: SystemMatrix,
    measurements: np.ndarray,
    model: str = "default",
    stage: str = "final",
    device: str = "auto",
) -> Generator[Progress, None, np.ndarray]:
    """Cascaded-network inference on ``device``: b_max Net(b / b_max); ``stage``
    "preliminary" returns module 1's image instead of the final one. Returns (frames, voxels)."""
    index = 0 if stage == "preliminary" else 1
    return (
        yield from iter_infer_signal_model(
            sm,
            measurements,
            "cascaded",
            lambda s: load_cascaded(s, model),
            lambda o: o[index],
            device=device,
        )
    )


def iter_train_cascaded(
    system_matrix: SystemMatrix,
    source: str | Path | None,
    output: str | Path,
    loss: str = "l1+ssim",
    strategy: str = "end-to-end",
    snr_threshold: float | None = 10.0,
    epochs: int = 20,
    stage1_epochs: int | None = None,
    preliminary_weight: float = 0.5,
    ssim_weight: float = 0.84,
    init_lam: float | None = 0.01,
    batch: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    num_train: int | None = None,
    num_val: int | None = None,
    fresh_noise: bool = True,
    fresh_phantoms: bool = False,
    lr_schedule: str = "cosine",
    snr_range: tuple[float, float] = (20.0, 40.0),
    architecture: dict | None = None,
    init_from: str | Path | None = None,
    phantom_mix: dict | None = None,
    command: str | None = None,
    device: str = "auto",
    resume: bool = False,
) -> Generator[Progress, None, dict]:
    """Train the cascaded network for ``system_matrix`` (see the module docstring).

    The parameters and their defaults are the fields of :class:`~napari_mpi.recon.
    training_config.CascadedConfig`; training runs on :func:`napari_mpi.nn.training.iter_train`.

    Parameters
    ----------
    loss : {"mse", "l1", "l1+ssim"}
        Training loss (images divided by each phantom's maximum; L1+SSIM mixes
        ``ssim_weight`` (1 - SSIM) and (1 - ``ssim_weight``) L1).
    strategy : {"end-to-end", "stage-wise"}
        Both modules at once, or module 1 then module 2 (module 1 frozen).
    epochs : int
        Epochs in all; stage-wise, ``stage1_epochs`` (half by default) of them train module 1.
    preliminary_weight : float
        End-to-end: weight of the loss on the preliminary image (0 supervises only the
        final image).
    init_lam : float or None
        Module 1's fully connected layer starts at the Tikhonov inverse with this relative
        weight (as ``pinv``'s ``lam``); None starts it at random.
    init_from : path or None
        Continue training this cascaded model folder: its rows, sizes, output scale and
        weights (``architecture``, ``init_lam`` and ``snr_threshold`` are then not used).
    phantom_mix : dict or None
        Kind -> weight of the training phantoms (None: the default mix).
    Other parameters are those of :func:`napari_mpi.recon.dernet.iter_train_dernet`.
    """
    import torch

    from ..nn.cascaded import CascadedNet
    from ..nn.losses import make_loss
    from .signal_training import Phase, iter_train_signal_model

    if strategy not in STRATEGIES:
        raise ValueError(f"cascaded: strategy must be one of {list(STRATEGIES)}, got {strategy!r}")
    if not (np.isfinite(preliminary_weight) and preliminary_weight >= 0):
        raise ValueError(
            f"cascaded: preliminary_weight must be a finite number >= 0, got {preliminary_weight}"
        )
    if not (np.isfinite(ssim_weight) and 0 <= ssim_weight <= 1):
        raise ValueError(f"cascaded: ssim_weight must be in [0, 1], got {ssim_weight}")
    fn = make_loss(loss, ssim_weight)

    if init_from is not None:
        from ..nn.checkpoint import read_card

        start = read_card(init_from).get("architecture", {})
        architecture = {k: start[k] for k in ("width", "widths", "dropout") if k in start}
        init_lam = None

    def build(sm: SystemMatrix, scale: float):
        net = CascadedNet(
            sm.num_rows, sm.grid_shape[1:], output_scale=scale, **(architecture or {})
        )
        if init_lam is not None:
            r = reconstruction_matrix(sm, "tikhonov", init_lam, 0.0)
            net.module1.init_tikhonov(torch.from_numpy(r), scale)
        return net

    if strategy == "end-to-end":
        phases = [
            Phase(
                "end-to-end",
                epochs,
                lambda net: net.parameters(),
                lambda out, y: fn(out["final"], y) + preliminary_weight * fn(out["preliminary"], y),
            )
        ]
    else:
        first = epochs // 2 if stage1_epochs is None else int(stage1_epochs)
        if not 0 <= first <= epochs:
            raise ValueError(f"cascaded: stage1_epochs must be in [0, {epochs}], got {first}")
        phases = [
            Phase("module 1", first, lambda net: net.module1.parameters(),
                  lambda out, y: fn(out["preliminary"], y)),
            Phase("module 2", epochs - first, lambda net: net.module2.parameters(),
                  lambda out, y: fn(out["final"], y), frozen=lambda net: [net.module1]),
        ]  # fmt: skip
    return (
        yield from iter_train_signal_model(
            system_matrix,
            source,
            output,
            method="cascaded",
            build=build,
            outputs=lambda net, x: dict(zip(("preliminary", "final"), net(x), strict=True)),
            phases=phases,
            select=lambda out, y: fn(out["final"], y),
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
            init_from=init_from,
            command=command,
            device=device,
            resume=resume,
            card_extra={
                "loss": loss,
                "strategy": strategy,
                "preliminary_weight": preliminary_weight if strategy == "end-to-end" else None,
                "ssim_weight": ssim_weight if loss == "l1+ssim" else None,
                "init_lam": init_lam,
            },
        )
    )


register(
    Method(
        name="cascaded",
        title="Cascaded network (two modules)",
        description="Signal -> preliminary image -> refined image (Zhao et al. 2026); a model "
        "is trained for one system matrix (napari-mpi train cascaded) and refuses others.",
        params=(
            Param("model", str, "default", "model folder or 'default' (preclinical-2d)"),
            Param(
                "stage",
                "choice",
                "final",
                "which module's image to return",
                choices=("final", "preliminary"),
            ),
            DEVICE_PARAM,
        ),
        solve=iter_cascaded,
        kind="learned",
        reference="Zhao et al., IJMPI 2026 (cascaded neural network)",
        order=55,
        selects_rows=True,
    )
)
