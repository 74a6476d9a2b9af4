"""Training recipes of the 3D enhancement CNNs on the one loop (:func:`~napari_mpi.nn.training.
iter_train`): the four baselines (``unet3d``, ``edsr3d``, ``rcan3d``, ``rrdb3d``), CSDNet, and
(:mod:`napari_mpi.enhance.esrgan_recipe`) ``esrgan3d``, rrdb3d's generator trained with a GAN.

A recipe takes volume pairs the caller made, ``(degraded, target)`` arrays of shape
``(N, Z, Y, X)`` float32 (the papers: 32^3; z = the blurred stepping axis), one tuple for
training and one for validation (model selection); the test split never comes here (a pair
set whose ``split`` is "test" is refused). By default (``scale="input-max"``) each pair is
divided by its degraded volume's maximum, the convention of ``napari_mpi.enhance.data`` (the
output is multiplied back at inference); ``scale="none"`` uses the intensities as given. How
the pairs were made (``data``, or a pair set's ``card()``) goes into the model card. The
default ``scale="input-max-gain"`` also divides the targets by the median max(target) /
max(degraded) of the training pairs (``target_gain`` in the card). The methods are registered
by :mod:`napari_mpi.enhance.learned`; :mod:`napari_mpi.enhance.training` makes the pairs and
runs a recipe for ``napari-mpi train``.

- Baselines (:class:`VolumeRecipe`): SmoothL1 (the paper's loss; PyTorch's ``beta``) or L1
  between the network's output and the target; every epoch is one shuffled pass over the
  training volumes (or ``steps_per_epoch`` batches), with x / y flips and x-y transposes as
  augmentation (they keep z the blurred axis); validation: the same loss (``val_loss``, picks
  the checkpoint) and the mean PSNR in dB (``val_psnr``, ``metrics.psnr``'s definition: peak =
  the target's maximum, per volume).
- CSDNet (:class:`CSDNetRecipe`): stage "teacher": the 2D U-Net on x-z slices of the pairs
  (SmoothL1), ``teacher_epochs`` epochs; stage "student": the 3D U-Net with SmoothL1 +
  ``alpha`` x InfoNCE (:func:`~napari_mpi.nn.contrastive.slice_infonce`) against the frozen
  teacher's output slices, ``epochs`` epochs. The model written is the student. During the
  teacher stage ``val_loss`` is the (still untrained) student's, so the checkpoint kept is
  always a student; the teacher's own validation loss is logged as ``val_teacher_loss``.

The configs live in :mod:`napari_mpi.enhance.recipe_configs` (re-exported here). Torch is
imported inside the methods, so importing this module (CLI, widget) stays light.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn.training import Recipe, Stage, cosine_schedule
from .recipe_configs import (
    CONFIGS,
    SCALE_EPS,
    CSDNetConfig,
    EDSR3DConfig,
    ESRGAN3DConfig,
    RCAN3DConfig,
    RRDB3DConfig,
    UNet3DConfig,
    VolumeConfig,
)

__all__ = [
    "CONFIGS",
    "CSDNetConfig",
    "CSDNetRecipe",
    "EDSR3DConfig",
    "ESRGAN3DConfig",
    "RCAN3DConfig",
    "RRDB3DConfig",
    "UNet3DConfig",
    "VolumeConfig",
    "VolumeRecipe",
    "check_pairs",
    "make_recipe",
]


def check_pairs(pairs, name: str) -> tuple[np.ndarray, np.ndarray]:
    """``(degraded, target)`` as float32 arrays of one shape (N, Z, Y, X), N >= 1, each side
    >= 4, finite; ValueError naming ``name`` otherwise. An object with ``inputs`` and
    ``targets`` arrays (e.g. ``napari_mpi.enhance.data.PairSet``) is accepted too, unless its
    ``split`` is "test"."""
    if getattr(pairs, "split", None) == "test":
        raise ValueError(f"{name}: got the test split; it is for the final evaluation only")
    if hasattr(pairs, "inputs") and hasattr(pairs, "targets"):
        pairs = (pairs.inputs, pairs.targets)
    try:
        degraded, target = pairs
    except (TypeError, ValueError):
        raise ValueError(f"{name}: expected a (degraded, target) pair of arrays") from None
    a = np.asarray(degraded, dtype=np.float32)
    b = np.asarray(target, dtype=np.float32)
    if a.ndim != 4 or a.shape != b.shape or a.shape[0] < 1 or min(a.shape[1:]) < 4:
        raise ValueError(
            f"{name}: degraded and target must be (N, Z, Y, X) arrays of one shape with N >= 1 "
            f"and sides >= 4, got {a.shape} and {b.shape}"
        )
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError(f"{name}: NaN or infinite voxels")
    return a, b


class VolumeRecipe(Recipe):
    """A 3D baseline trained on volume pairs (see the module docstring).

    Parameters
    ----------
    config : VolumeConfig
        One of :data:`CONFIGS` (its class names the network).
    train, val : tuple of ndarray, each shape (N, Z, Y, X), or PairSet
        ``(degraded, target)`` volume pairs for training and for validation.
    method : str or None
        The network (a key of :data:`~napari_mpi.nn.enhance3d.NETWORKS`); None: from the config.
    data : dict or None
        How the pairs were made (degradation, source, normalisation), copied into the card;
        None: ``{"train": train.card(), "val": val.card()}`` when the pairs have a ``card()``
        (``PairSet``), else {}.
    """

    score_key = "val_loss"

    def __init__(self, config: VolumeConfig, train, val, method: str | None = None,
                 data: dict | None = None) -> None:  # fmt: skip
        super().__init__(config)
        if method is None:
            names = [k for k, v in CONFIGS.items() if type(config) is v]
            if not names:
                raise ValueError(f"no 3D network for config {type(config).__name__}")
            method = names[0]
        self.method = method
        config.check()
        train_pairs = check_pairs(train, "train")
        #: targets are further divided by this (scale "input-max-gain"): the median over the
        #: training pairs of max(target) / max(degraded), so the network's targets are O(1)
        self.target_gain = _target_gain(train_pairs) if config.scale == "input-max-gain" else 1.0
        self.train_pairs = _scaled(train_pairs, config.scale, self.target_gain)
        val_pairs = check_pairs(val, "val")
        self.val_pairs = _scaled(val_pairs, config.scale, self.target_gain)
        x, y = val_pairs
        mse = ((x.astype(np.float64) - y) ** 2).mean(axis=(1, 2, 3))
        peak = y.max(axis=(1, 2, 3)).astype(np.float64)
        #: mean PSNR (dB) of the degraded validation volumes: the bar a model must clear
        self.val_input_psnr = float(np.mean(10 * np.log10(peak**2 / np.maximum(mse, 1e-12))))
        if data is None and all(callable(getattr(p, "card", None)) for p in (train, val)):
            data = {"train": train.card(), "val": val.card()}
        self.data = dict(data or {})

    # -- helpers -------------------------------------------------------------------------------
    def _tensor(self, array: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(array)).to(self.device)

    def pixel_loss(self, out, target):
        import torch.nn.functional as F

        if self.config.loss == "l1":
            return F.l1_loss(out, target)
        return F.smooth_l1_loss(out, target, beta=self.config.smooth_beta)

    def _steps(self, n: int, batch: int) -> int:
        return int(self.config.steps_per_epoch) or max(1, math.ceil(n / batch))

    def _batch(self, batch: int) -> tuple[np.ndarray, np.ndarray]:
        """``batch`` training pairs (N, 1, Z, Y, X), shuffled without replacement per pass and
        augmented."""
        rng = self.rngs["data"]
        picks = []
        while len(picks) < batch:
            if not len(self._order):
                self._order = list(rng.permutation(len(self.train_pairs[0])))
            picks.append(int(self._order.pop()))
        x, y = self.train_pairs[0][picks], self.train_pairs[1][picks]
        if self.config.augment:
            x, y = x.copy(), y.copy()
            for i in range(batch):
                flip = rng.integers(0, 2, size=3)
                for axis, on in ((2, flip[0]), (3, flip[1])):  # y, x of (n, z, y, x)
                    if on:
                        x[i], y[i] = np.flip(x[i], axis - 1), np.flip(y[i], axis - 1)
                if flip[2] and x.shape[2] == x.shape[3]:
                    x[i], y[i] = x[i].transpose(0, 2, 1), y[i].transpose(0, 2, 1)
        return x[:, None], y[:, None]

    # -- the recipe ----------------------------------------------------------------------------
    def prepare(self):
        from ..nn.enhance3d import make_network

        self.rngs["data"] = np.random.default_rng(self.config.seed)
        self._order: list[int] = []
        self.modules["model"] = make_network(self.method, **self.config.network_kwargs())
        self.modules["model"].to(self.device)
        yield from ()

    def stages(self) -> list[Stage]:
        steps = self._steps(len(self.train_pairs[0]), self.config.batch)
        return [Stage.even(self.method, self.config.epochs, steps)]

    def optimisers(self, stage: Stage) -> dict:
        import torch

        params = self.modules["model"].parameters()
        return {"model": torch.optim.Adam(params, lr=self.config.lr)}

    def schedulers(self, stage: Stage, optimisers: dict) -> list:
        steps = sum(stage.epoch_steps)
        return cosine_schedule(optimisers["model"], self.config.lr_schedule, steps, self.config.lr)

    def step(self, stage: Stage, epoch: int, index: int, optimisers: dict) -> dict:
        x, y = self._batch(self.config.batch)
        x, y = self._tensor(x), self._tensor(y)
        loss = self.pixel_loss(self.modules["model"](x), y)
        optimisers["model"].zero_grad()
        loss.backward()
        optimisers["model"].step()
        return {"loss": float(loss.item())}

    def _val_outputs(self, model):
        """Model outputs on the validation volumes, in batches: yields (out, target)."""
        degraded, target = self.val_pairs
        for i in range(0, len(degraded), self.config.batch):
            x = self._tensor(degraded[i : i + self.config.batch, None])
            yield model(x), self._tensor(target[i : i + self.config.batch, None])

    def validate(self, epoch: int) -> dict:
        loss, psnr, n = 0.0, 0.0, 0
        for out, y in self._val_outputs(self.modules["model"]):
            loss += float(self.pixel_loss(out, y)) * len(y)
            psnr += float(_psnr(out, y).sum())
            n += len(y)
        return {"val_loss": loss / n, "val_psnr": psnr / n}

    def card(self, record: dict, history: list[dict], step: int, seconds: float) -> dict:
        card = super().card(record, history, step, seconds)
        card["task"] = "enhance"
        card["metrics"]["val_input_psnr"] = self.val_input_psnr
        card["data"] = {**self.data, "network_scale": self.config.scale,
                        "target_gain": self.target_gain,
                        "train_volumes": len(self.train_pairs[0]),
                        "val_volumes": len(self.val_pairs[0]),
                        "volume_shape_zyx": list(self.train_pairs[0].shape[1:])}  # fmt: skip
        return card


def _target_gain(pairs: tuple[np.ndarray, np.ndarray]) -> float:
    """Median over the pairs of max(target) / max(degraded)."""
    top = np.maximum(pairs[0].max(axis=(1, 2, 3)), SCALE_EPS)
    return float(np.median(pairs[1].max(axis=(1, 2, 3)) / top))


def _scaled(pairs: tuple[np.ndarray, np.ndarray], scale: str, gain: float = 1.0):
    """Both volumes of each pair divided by max(degraded) (at least SCALE_EPS) for
    "input-max", the target further by ``gain`` for "input-max-gain"; unchanged for "none"."""
    if scale == "none":
        return pairs
    factor = np.maximum(pairs[0].max(axis=(1, 2, 3), keepdims=True), SCALE_EPS)
    target = pairs[1] / factor / (gain if scale == "input-max-gain" else 1.0)
    return (pairs[0] / factor).astype(np.float32), target.astype(np.float32)


def _psnr(out, target):
    """Per-volume PSNR in dB, peak = the target's maximum (``metrics.psnr``), shape (B,)."""
    import torch

    mse = ((out - target) ** 2).flatten(1).mean(dim=1)
    peak = target.flatten(1).amax(dim=1)
    return 10 * torch.log10(peak**2 / mse.clamp_min(1e-12))


class CSDNetRecipe(VolumeRecipe):
    """CSDNet: the 2D teacher on x-z slices, then the 3D student with SmoothL1 + alpha x
    InfoNCE against the frozen teacher (see the module docstring).

    Parameters
    ----------
    config : CSDNetConfig
    train, val : tuple of ndarray, each shape (N, Z, Y, X)
        ``(degraded, target)`` volume pairs.
    data : dict or None
        Copied into the card.
    """

    def __init__(self, config: CSDNetConfig, train, val, data: dict | None = None) -> None:
        super().__init__(config, train, val, method="csdnet", data=data)

    def prepare(self):
        from ..nn.enhance3d import Teacher2D

        yield from super().prepare()
        widths = self.config.network_kwargs()["widths"]
        self.modules["teacher"] = Teacher2D(widths).to(self.device)
        self._slices = [self._slice_array(a) for a in self.train_pairs]

    def _slice_array(self, volumes: np.ndarray) -> np.ndarray:
        """(N, Z, Y, X) -> (N * S, P, Q) slices along ``slice_axis`` (3 = y: x-z slices)."""
        moved = np.moveaxis(volumes, self.config.slice_axis - 1, 1)
        return np.ascontiguousarray(moved.reshape(-1, *moved.shape[2:]))

    def stages(self) -> list[Stage]:
        c = self.config
        slices = len(self._slices[0])
        return [
            Stage.even("teacher", c.teacher_epochs, self._steps(slices, c.teacher_batch)),
            Stage.even("student", c.epochs, self._steps(len(self.train_pairs[0]), c.batch)),
        ]

    def optimisers(self, stage: Stage) -> dict:
        import torch

        teacher = self.modules["teacher"]
        if stage.name == "teacher":
            teacher.requires_grad_(True)
            return {"teacher": torch.optim.Adam(teacher.parameters(), lr=self.config.lr)}
        teacher.requires_grad_(False)
        params = self.modules["model"].parameters()
        return {"model": torch.optim.Adam(params, lr=self.config.lr)}

    def schedulers(self, stage: Stage, optimisers: dict) -> list:
        (opt,) = optimisers.values()
        steps = sum(stage.epoch_steps)
        return cosine_schedule(opt, self.config.lr_schedule, steps, self.config.lr)

    def begin_epoch(self, stage: Stage, epoch: int):
        self.modules["model"].train(stage.name == "student")
        self.modules["teacher"].train(stage.name == "teacher")

    def teacher_volume(self, x):
        """The teacher's output on every slice of ``x`` (B, 1, Z, Y, X), stacked back."""
        from ..nn.contrastive import from_slices, to_slices

        axis = self.config.slice_axis
        return from_slices(self.modules["teacher"](to_slices(x, axis)), len(x), axis)

    def step(self, stage: Stage, epoch: int, index: int, optimisers: dict) -> dict:
        import torch

        from ..nn.contrastive import slice_infonce

        c = self.config
        if stage.name == "teacher":
            rng = self.rngs["data"]
            picks = rng.integers(0, len(self._slices[0]), size=c.teacher_batch)
            x = self._tensor(self._slices[0][picks][:, None])
            y = self._tensor(self._slices[1][picks][:, None])
            loss = self.pixel_loss(self.modules["teacher"](x), y)
            optimisers["teacher"].zero_grad()
            loss.backward()
            optimisers["teacher"].step()
            return {"loss": float(loss.item())}
        x, y = self._batch(c.batch)
        x, y = self._tensor(x), self._tensor(y)
        with torch.no_grad():
            query = self.teacher_volume(x)
        out = self.modules["model"](x)
        pixel = self.pixel_loss(out, y)
        contrast = slice_infonce(query, out, c.slice_axis, c.temperature,
                                 c.num_negatives or None, c.centre)  # fmt: skip
        loss = pixel + c.alpha * contrast
        optimisers["model"].zero_grad()
        loss.backward()
        optimisers["model"].step()
        return {"loss": float(loss.item()), "pixel": float(pixel.item()),
                "infonce": float(contrast.item())}  # fmt: skip

    def validate(self, epoch: int) -> dict:
        metrics = super().validate(epoch)  # the student's val_loss / val_psnr
        loss, n = 0.0, 0
        for x, y in zip(*self.val_pairs, strict=True):
            xs = self._tensor(self._slice_array(x[None])[:, None])
            ys = self._tensor(self._slice_array(y[None])[:, None])
            loss += float(self.pixel_loss(self.modules["teacher"](xs), ys))
            n += 1
        return {**metrics, "val_teacher_loss": loss / n}

    def card(self, record: dict, history: list[dict], step: int, seconds: float) -> dict:
        card = super().card(record, history, step, seconds)
        card["teacher_architecture"] = dict(self.modules["teacher"].config)
        return card


def make_recipe(method: str, config: VolumeConfig | None = None, *, train, val,
                data: dict | None = None) -> VolumeRecipe:  # fmt: skip
    """The recipe of ``method`` (a key of :data:`CONFIGS`), with its default config if none."""
    if method not in CONFIGS:
        raise ValueError(f"method must be one of {sorted(CONFIGS)}, got {method!r}")
    config = CONFIGS[method]() if config is None else config
    if not isinstance(config, CONFIGS[method]):
        raise ValueError(f"{method}: needs a {CONFIGS[method].__name__}, got {type(config)}")
    if method == "csdnet":
        return CSDNetRecipe(config, train, val, data=data)
    if method == "esrgan3d":
        from .esrgan_recipe import ESRGAN3DRecipe

        return ESRGAN3DRecipe(config, train, val, data=data)
    return VolumeRecipe(config, train, val, method=method, data=data)
