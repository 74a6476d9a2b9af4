"""Training recipe of ``esrgan3d`` on the one loop: ESRGAN's GAN phase in 3D. The generator is
the RRDB network of ``rrdb3d`` (by default starting from the shipped ``rrdb3d`` model, ESRGAN's
pixel-loss phase); the discriminator, the relativistic losses and the feature-matching loss
that replaces VGG are in :mod:`napari_mpi.nn.esrgan3d`, the weights and their sources in
:class:`~napari_mpi.enhance.recipe_configs.ESRGAN3DConfig`.

One step, on a batch of the enhancement recipes' pairs (scaling and augmentation of
:class:`~napari_mpi.enhance.recipes.VolumeRecipe`):

1. discriminator: L_D = RaGAN(C(y), C(G(x)) detached), one Adam step ("discriminator");
2. generator: L_G = pixel_weight L1 + adv_weight RaGAN_G + feature_weight FM, one Adam step
   ("model").

Every term is logged (``loss`` = L_G, ``loss_pixel``, ``loss_adv``, ``loss_fm``, ``loss_d``).
Validation is the baselines' (``val_loss``: L1 of the generator on the validation pairs,
which picks the checkpoint; ``val_psnr``) plus the discriminator's accuracy on them
(``val_d_accuracy``: the fraction of patches where D_Ra ranks the target above the output).
``model.pt`` holds the generator only (an RRDB3D: :func:`napari_mpi.enhance.learned.
load_enhancer` builds it as for ``rrdb3d``).
"""

from __future__ import annotations

from pathlib import Path

from ..nn.training import Stage, cosine_schedule
from .recipe_configs import ESRGAN3DConfig
from .recipes import VolumeRecipe

__all__ = ["ESRGAN3DRecipe"]

#: the methods whose models can start an ``esrgan3d`` run (same generator)
INIT_METHODS = ("rrdb3d", "esrgan3d")


class ESRGAN3DRecipe(VolumeRecipe):
    """``esrgan3d`` on volume pairs (see the module docstring).

    Parameters
    ----------
    config : ESRGAN3DConfig
    train, val : tuple of ndarray, each shape (N, Z, Y, X), or PairSet
        ``(degraded, target)`` volume pairs.
    data : dict or None
        Copied into the card (see :class:`VolumeRecipe`).
    """

    half = True

    def __init__(self, config: ESRGAN3DConfig, train, val, data: dict | None = None) -> None:
        if not isinstance(config, ESRGAN3DConfig):
            raise ValueError(f"esrgan3d: needs an ESRGAN3DConfig, got {type(config).__name__}")
        super().__init__(config, train, val, method="esrgan3d", data=data)
        self.initial_model: str | None = None

    def init_folder(self) -> Path | None:
        """The model folder the generator starts from (None: random weights)."""
        text = str(self.config.init_from or "").strip()
        if not text:
            return None
        if text.lower() == "default":
            from .learned import DEFAULT_MODELS, MODELS_DIR

            return MODELS_DIR / DEFAULT_MODELS["rrdb3d"]
        return Path(text).expanduser()

    def _initial_weights(self, folder: Path, net) -> dict:
        from ..nn.checkpoint import starting_weights

        sizes = "--features, --growth, --blocks, --layers and --shuffle"
        state, card = starting_weights(folder, INIT_METHODS, net.config, "esrgan3d", sizes)
        self.initial_model = str(folder)
        self.initial_card = {k: card.get(k) for k in ("method", "command")}
        self.initial_card["val_psnr"] = card.get("metrics", {}).get("val_psnr")
        return state

    # -- the recipe ----------------------------------------------------------------------------
    def prepare(self):
        from ..nn.esrgan3d import Discriminator3D

        yield from super().prepare()  # the generator, as rrdb3d builds it
        folder = self.init_folder()
        if folder is not None:
            net = self.modules["model"]
            net.load_state_dict(self._initial_weights(folder, net))
        disc = Discriminator3D(**self.config.discriminator_kwargs())
        self.modules["discriminator"] = disc.to(self.device)

    def stages(self) -> list[Stage]:
        steps = self._steps(len(self.train_pairs[0]), self.config.batch)
        return [Stage.even("esrgan3d", self.config.epochs, steps)]

    def optimisers(self, stage: Stage) -> dict:
        import torch

        c, m = self.config, self.modules
        return {
            "model": torch.optim.Adam(m["model"].parameters(), lr=c.lr, betas=(0.9, 0.999)),
            "discriminator": torch.optim.Adam(
                m["discriminator"].parameters(), lr=c.d_lr, betas=(0.9, 0.999)
            ),
        }

    def schedulers(self, stage: Stage, optimisers: dict) -> list:
        steps = sum(stage.epoch_steps)
        c = self.config
        return cosine_schedule(optimisers["model"], c.lr_schedule, steps, c.lr) + (
            cosine_schedule(optimisers["discriminator"], c.lr_schedule, steps, c.d_lr)
        )

    def step(self, stage: Stage, epoch: int, index: int, optimisers: dict) -> dict:
        import torch

        from ..nn.esrgan3d import feature_matching, relativistic_losses

        c, m = self.config, self.modules
        x, y = self._batch(c.batch)
        x, y = self._tensor(x), self._tensor(y)
        G, D = m["model"], m["discriminator"]
        fake = G(x)

        D.requires_grad_(True)
        d_loss, _ = relativistic_losses(D(y), D(fake.detach()))
        optimisers["discriminator"].zero_grad()
        d_loss.backward()
        optimisers["discriminator"].step()

        D.requires_grad_(False)
        with torch.no_grad():
            real_logits, real_feats = D(y, features=True)
        fake_logits, fake_feats = D(fake, features=True)
        _, adv = relativistic_losses(real_logits, fake_logits)
        fm = feature_matching(real_feats, fake_feats)
        pixel = self.pixel_loss(fake, y)
        loss = c.pixel_weight * pixel + c.adv_weight * adv + c.feature_weight * fm
        optimisers["model"].zero_grad()
        loss.backward()
        optimisers["model"].step()
        return {"loss": float(loss.item()), "loss_pixel": float(pixel.item()),
                "loss_adv": float(adv.item()), "loss_fm": float(fm.item()),
                "loss_d": float(d_loss.item())}  # fmt: skip

    def message(self, stage: Stage, epoch: int, total_epochs: int, losses: dict) -> str:
        return (f"esrgan3d, epoch {epoch}/{total_epochs}, G {losses['loss']:.3g} "
                f"(L1 {losses['loss_pixel']:.3g}), D {losses['loss_d']:.3g}")  # fmt: skip

    def validate(self, epoch: int) -> dict:
        metrics = super().validate(epoch)
        D = self.modules["discriminator"]
        right, total = 0.0, 0
        for out, y in self._val_outputs(self.modules["model"]):
            real, fake = D(y), D(out)
            right += float((real - fake.mean(0, keepdim=True) > 0).float().sum())
            right += float((fake - real.mean(0, keepdim=True) < 0).float().sum())
            total += 2 * real.numel()
        return {**metrics, "val_d_accuracy": right / max(total, 1)}

    def state_dict(self) -> dict:
        return self.modules["model"].state_dict()

    def card(self, record: dict, history: list[dict], step: int, seconds: float) -> dict:
        card = super().card(record, history, step, seconds)
        c = self.config
        card["adversarial"] = {
            "discriminator": dict(self.modules["discriminator"].config),
            "gan": "relativistic average (ESRGAN)",
            "perceptual": "feature matching in the discriminator's stages (no VGG here)",
            "weights": {"pixel": c.pixel_weight, "adv": c.adv_weight, "fm": c.feature_weight},
            "initial_model": self.initial_model,
            "initial_card": getattr(self, "initial_card", None),
        }
        return card
