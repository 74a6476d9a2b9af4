"""ADMM-Net reconstruction and training (the DERnet paper's baseline (e); the network is in
:mod:`napari_mpi.nn.admmnet`).

A model is tied to the system matrix it was trained for, as DERnet's (see :mod:`.learned`):
its card records the rows it reads and the signature of the system matrix on them. The matrix
itself is not stored: loading a model for a system matrix computes the eigendecomposition of
A^T A on the model's rows (N x N; the 19 x 19 preset: a few milliseconds).

Training runs on the one loop (:func:`napari_mpi.nn.training.iter_train`, through
:func:`~napari_mpi.recon.signal_training.iter_train_signal_model`), with DERnet's data: the
phantom mix (:mod:`napari_mpi.simulation.phantom_mix`), SNR uniform in 20-40 dB, new noise
every epoch, MSE on the final image, the epoch with the lowest validation MSE kept.
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

__all__ = ["default_admmnet_path", "iter_admmnet", "iter_train_admmnet", "load_admmnet"]


def default_admmnet_path() -> Path:
    """The ADMM-Net shipped for the ``preclinical-2d`` preset (19 x 19 calibration)."""
    return Path(str(resources.files("napari_mpi").joinpath("models", "admmnet_preclinical2d")))


def load_admmnet(sm: SystemMatrix, path: str | Path | None = None):
    """(network with its operator set, row indices into ``sm``, card) for a model folder
    (None, "" or "default": the shipped one)."""
    from ..nn.admmnet import ADMMNet

    net, rows, card = load_signal_model(sm, path, "admm-net", ADMMNet, default_admmnet_path())
    sub = sm.select_rows(rows)
    fingerprint = sub.fingerprint()
    if net.operator_fingerprint != fingerprint:
        net.set_operator(sub.matrix, fingerprint)
    return net, rows, card


def iter_admmnet(
    sm: SystemMatrix, measurements: np.ndarray, model: str = "default", device: str = "auto"
) -> Generator[Progress, None, np.ndarray]:
    """ADMM-Net inference on ``device``: b_max Net(b / b_max). Returns (frames, voxels)."""
    return (
        yield from iter_infer_signal_model(
            sm, measurements, "admm-net", lambda s: load_admmnet(s, model), device=device
        )
    )


def iter_train_admmnet(
    system_matrix: SystemMatrix,
    source: str | Path | None,
    output: str | Path,
    config=None,
    **options,
) -> Generator[Progress, None, dict]:
    """Train ADMM-Net for ``system_matrix`` (see the module docstring); ``config`` an
    :class:`~napari_mpi.recon.training_config.ADMMNetConfig`, or its fields as ``options``.
    Closing the generator keeps the best checkpoint written so far."""
    from ..nn.admmnet import ADMMNet
    from ..nn.losses import make_loss
    from .signal_training import Phase, iter_train_signal_model
    from .training_config import ADMMNetConfig

    if config is None:
        config = ADMMNetConfig(**{k: v for k, v in options.items() if v is not None})
    arch = {"stages": config.stages, "features": config.features, "rho0": config.rho0}
    if config.init_from is not None:  # a continued model keeps its sizes
        from ..nn.checkpoint import read_card

        start = read_card(config.init_from).get("architecture", {})
        arch = {k: start.get(k, v) for k, v in arch.items()}
    mse = make_loss("mse")

    def build(sm: SystemMatrix, _output_scale: float) -> ADMMNet:
        net = ADMMNet(sm.num_rows, sm.grid_shape[1:], **arch)
        net.set_operator(sm.matrix, sm.fingerprint())
        return net

    return (
        yield from iter_train_signal_model(
            system_matrix,
            source,
            output,
            method="admm-net",
            build=build,
            outputs=lambda net, x: {"final": net(x)},
            phases=[Phase("admm-net", config.epochs, lambda net: net.parameters(),
                          lambda out, y: mse(out["final"], y))],
            select=lambda out, y: mse(out["final"], y),
            config=config,
            init_from=config.init_from,
            card_extra={"loss": "mse"},
        )
    )  # fmt: skip


register(
    Method(
        name="admm-net",
        title="ADMM-Net (unrolled ADMM, learned stages)",
        description="ADMM unrolled into a few stages with learned penalties, multiplier "
        "steps and a small CNN regulariser per stage; a model is trained for one system "
        "matrix (napari-mpi train admm-net; one is shipped for the preclinical-2d preset) "
        "and refuses others.",
        params=(
            Param(
                "model",
                str,
                "default",
                "model folder (default: the one shipped for the preclinical-2d preset; "
                "napari-mpi train admm-net -o MODEL_DIR for another calibration)",
            ),
            DEVICE_PARAM,
        ),
        solve=iter_admmnet,
        kind="learned",
        reference="Yang et al. 2018 (Generic-ADMM-Net); DERnet paper baseline (e)",
        order=47,
        selects_rows=True,
    )
)
