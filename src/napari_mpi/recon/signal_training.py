"""Training a signal-to-image network (DERnet, the cascaded network) on the one loop.

:class:`SignalRecipe` is the :class:`~napari_mpi.nn.training.Recipe` of both networks: pairs
from :mod:`.training_data` on the rows the model reads (chosen by an SNR threshold on the
calibration), each signal normalised by its maximum amplitude b_max (DERnet eq. 9), Adam over
one or more :class:`Phase` (each with its own trainable parameters and loss), validation after
every epoch (the method's score, MSE and PSNR of the final image). :func:`iter_train_signal_model`
keeps the keyword interface the methods call.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..nn.training import LR_SCHEDULES, Recipe, Stage, cosine_schedule, iter_train
from ..progress import Progress
from ..system_matrix import SystemMatrix
from .learned import model_rows, normalise_signal, row_keys
from .selection import select_frequencies
from .training_config import SignalConfig
from .training_data import iter_training_set

__all__ = ["LR_SCHEDULES", "Phase", "SignalConfig", "SignalRecipe", "iter_train_signal_model"]


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


class SignalRecipe(Recipe):
    """The recipe of a signal-to-image network (see :func:`iter_train_signal_model`)."""

    score_key = "val_loss"

    def __init__(
        self,
        config: SignalConfig,
        system_matrix: SystemMatrix,
        source: str | Path | None,
        *,
        method: str,
        build: Callable,
        outputs: Callable,
        phases: list[Phase],
        select: Callable,
        initialise: Callable | None = None,
        init_from: str | Path | None = None,
        card_extra: dict | None = None,
    ) -> None:
        super().__init__(config)
        self.method = method
        config.check()
        if system_matrix.grid_shape[0] != 1:
            raise ValueError(f"{method}: only 2D grids (one voxel along z) are supported")
        if not phases or any(p.epochs < 0 for p in phases):
            raise ValueError(f"{method}: training needs phases with epochs >= 0")
        self.phases, self.build, self.outputs, self.select = phases, build, outputs, select
        self.source, self.initialise, self.init_from = source, initialise, init_from
        self.card_extra = card_extra or {}
        self.start = None
        threshold = config.snr_threshold
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
            self.start_state, self.start = load_checkpoint(folder, sm)  # refuses another matrix
            threshold = self.start.get("snr_threshold")
        elif threshold is None:
            sm = system_matrix
        else:
            sm = select_frequencies(system_matrix, threshold)
        if sm.num_rows == 0:
            raise ValueError(f"{method}: no rows with calibration SNR >= {threshold}")
        self.sm, self.snr_threshold = sm, threshold

    def _tensors(self, measurements: np.ndarray):
        import torch

        x, b = normalise_signal(measurements)
        return torch.from_numpy(x).to(self.device), torch.from_numpy(b).to(self.device)

    def _phantoms(self, train) -> Any:
        import torch

        return torch.from_numpy(train.phantoms[:, 0]).to(self.device)

    def prepare(self) -> Generator[Progress, None, None]:
        c, sm = self.config, self.sm
        yield Progress(0, 1, "making training data")
        self.data = {"snr_range": c.snr_range, "seed": c.seed, "mix": c.phantom_mix}
        train = yield from iter_training_set(sm, self.source, c.num_train, split="train",
                                             **self.data)  # fmt: skip
        val = yield from iter_training_set(sm, self.source, c.num_val, split="val", **self.data)
        _, bt = normalise_signal(train.measurements)
        ratio = train.phantoms.reshape(c.num_train, -1).max(axis=1) / bt
        if self.start is None:
            net = self.build(sm, float(np.median(ratio[np.isfinite(ratio)])))
        else:
            net = self.build(sm, float(self.start["architecture"].get("output_scale", 1.0)))
            try:
                net.load_state_dict(self.start_state)
            except RuntimeError as exc:
                raise ValueError(
                    f"{self.method}: init_from {self.init_from}: its weights do not fit the "
                    f"network to train (train with its architecture: "
                    f"{self.start['architecture']}; {exc})"
                ) from None
        self.init_info = None
        if self.start is not None:
            self.init_info = {
                "kind": "from",
                "model": str(self.init_from),
                "model_command": self.start.get("command"),
                "model_epochs_done": self.start.get("training", {}).get("epochs_done"),
                "model_val_psnr_db": self.start.get("metrics", {}).get("val_psnr_db"),
            }
        elif self.initialise is not None:
            yield Progress(0, 1, "initialising the network")
            self.init_info = self.initialise(net, train, val)
        self.modules["model"] = net.to(self.device)
        self.train_set = train
        self.xt, self.bt = self._tensors(train.measurements)
        self.yt = self._phantoms(train)
        self.xv, self.bv = self._tensors(val.measurements)
        self.yv = self._phantoms(val)
        self.rngs["order"] = np.random.default_rng(c.seed)
        self.rngs["noise"] = np.random.default_rng([c.seed, 3])
        self.steps_per_epoch = int(np.ceil(c.num_train / c.batch))

    def stages(self) -> list[Stage]:
        return [Stage.even(p.name, p.epochs, self.steps_per_epoch) for p in self.phases]

    def _phase(self, stage: Stage) -> Phase:
        return next(p for p in self.phases if p.name == stage.name)

    def optimisers(self, stage: Stage) -> dict:
        import torch

        net = self.modules["model"]
        trainable = list(self._phase(stage).parameters(net))
        for p in net.parameters():
            p.requires_grad_(False)
        for p in trainable:
            p.requires_grad_(True)
        return {"adam": torch.optim.Adam(trainable, lr=self.config.lr)}

    def schedulers(self, stage: Stage, optimisers: dict) -> list:
        c = self.config
        return cosine_schedule(optimisers["adam"], c.lr_schedule, sum(stage.epoch_steps), c.lr)

    def begin_epoch(self, stage: Stage, epoch: int) -> Generator[Progress, None, None]:
        c, sm = self.config, self.sm
        if c.fresh_phantoms and epoch > 1:
            self.train_set = yield from iter_training_set(
                sm, self.source, c.num_train, split="train", draw=epoch - 1, **self.data
            )
            self.xt, self.bt = self._tensors(self.train_set.measurements)
            self.yt = self._phantoms(self.train_set)
        elif c.fresh_noise and epoch > 1:
            redrawn = self.train_set.redraw_noise(self.rngs["noise"], c.snr_range)
            self.xt, self.bt = self._tensors(redrawn)
        net = self.modules["model"]
        net.train()
        phase = self._phase(stage)
        for module in phase.frozen(net) if phase.frozen else ():
            module.eval()
        self.order = self.rngs["order"].permutation(c.num_train)

    def _scaled(self, out: dict, b) -> dict:
        return {k: v * b[:, None, None] for k, v in out.items()}

    def step(self, stage: Stage, epoch: int, index: int, optimisers: dict) -> dict:
        import torch

        batch = self.config.batch
        idx = torch.from_numpy(self.order[index * batch : (index + 1) * batch]).to(self.device)
        net = self.modules["model"]
        out = self._scaled(self.outputs(net, self.xt[idx]), self.bt[idx])
        loss = self._phase(stage).loss(out, self.yt[idx])
        opt = optimisers["adam"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": float(loss.item())}

    def validate(self, epoch: int) -> dict:
        import torch

        out_v = self._scaled(self.outputs(self.modules["model"], self.xv), self.bv)
        yv = self.yv
        score = float(self.select(out_v, yv))
        mse = torch.mean((out_v["final"] - yv) ** 2, dim=(1, 2))
        psnr = 10 * torch.log10(yv.amax(dim=(1, 2)) ** 2 / mse.clamp_min(1e-20))
        return {"val_loss": score, "val_mse": float(mse.mean()), "val_psnr_db": float(psnr.mean())}

    def message(self, stage: Stage, epoch: int, total_epochs: int, losses: dict) -> str:
        return f"{stage.name}, epoch {epoch}/{total_epochs}, loss {losses['loss']:.3g}"

    def card(self, record: dict, history: list[dict], step: int, seconds: float) -> dict:
        c, sm, net = self.config, self.sm, self.modules["model"]
        card = {
            "method": self.method,
            "architecture": {"class": type(net).__name__, **net.config},
            "grid_shape": list(sm.grid_shape),
            "rows": sm.num_rows,
            "row_keys": row_keys(sm),
            "snr_threshold": self.snr_threshold,
            "fingerprint": sm.fingerprint(),
            "signature": sm.signature(),
            "command": shlex.join(sys.argv) if c.command is None else c.command,
            "data": {
                "source": str(self.source) if self.source else "procedural",
                "train": c.num_train,
                "val": c.num_val,
                "snr_db": list(c.snr_range),
                "fresh_noise": bool(c.fresh_noise),
                "fresh_phantoms": bool(c.fresh_phantoms),
                "phantom_mix": dict(c.phantom_mix),
            },
            "seed": c.seed,
        }
        if self.init_info is not None:
            card["initialisation"] = self.init_info
        keys = ("val_loss", "val_mse", "val_psnr_db")
        card["training"] = {
            "epochs_done": record["epoch"],
            "batch": c.batch,
            "lr": c.lr,
            "lr_schedule": c.lr_schedule,
            "phases": [[p.name, p.epochs] for p in self.phases],
            **self.card_extra,
        }
        card["metrics"] = {**{k: record[k] for k in keys}, "train_seconds": seconds}
        card["history"] = [{"epoch": h["epoch"], "phase": h["stage"], **{k: h[k] for k in keys}}
                           for h in history]  # fmt: skip
        return card

    def extra_state(self) -> dict:
        return {"init_info": self.init_info}


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
    config: SignalConfig | None = None,
    initialise: Callable[[Any, Any, Any], dict] | None = None,
    init_from: str | Path | None = None,
    card_extra: dict | None = None,
    **options,
) -> Generator[Progress, None, dict]:
    """Train a signal-to-image network for ``system_matrix`` on :func:`~napari_mpi.nn.
    training.iter_train`.

    ``build(sm, output_scale)`` makes the network for the selected rows ``sm``;
    ``outputs(net, x)`` runs it on normalised signals and returns its named images, "final"
    being the one reconstruction returns; ``select(outputs, target)`` is the validation score
    (lower is better) that picks the checkpoint kept. Hyperparameters: ``config`` (a
    :class:`SignalConfig`), or its fields as keyword ``options`` (``snr_threshold``, ``batch``,
    ``lr``, ``seed``, ``num_train``, ``num_val``, ``fresh_noise``, ``fresh_phantoms``,
    ``lr_schedule``, ``snr_range``, ``phantom_mix``, ``device``, ``resume``, ``command``;
    ``num_train`` / ``num_val`` None mean 8100 / 900). ``initialise(net, train, val)``, if
    given, sets the new network's starting weights from the training and validation
    :class:`~napari_mpi.recon.training_data.TrainingSet` and returns what the card records
    about it. ``init_from`` (a model folder of the same method) continues training that model
    instead: its rows (``snr_threshold`` is then ignored), output scale and weights; the
    network ``build`` makes must have its architecture. The epochs are those of ``phases``.
    """
    if config is None:
        options = {k: v for k, v in options.items() if v is not None or k == "snr_threshold"}
        config = SignalConfig(epochs=sum(max(p.epochs, 0) for p in phases), **options)
    recipe = SignalRecipe(
        config, system_matrix, source, method=method, build=build, outputs=outputs,
        phases=phases, select=select, initialise=initialise, init_from=init_from,
        card_extra=card_extra,
    )  # fmt: skip
    try:
        return (yield from iter_train(recipe, output))
    finally:
        net = recipe.modules.get("model")
        for p in net.parameters() if net is not None else ():
            p.requires_grad_(True)
