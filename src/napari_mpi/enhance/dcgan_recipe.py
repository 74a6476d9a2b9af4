"""DC_GAN's training recipe on the one loop (:func:`~napari_mpi.nn.training.iter_train`), and
``iter_train_dcgan`` that makes the unpaired domains and runs it (``napari-mpi train dcgan``,
the Training widget).

Modules: ``model`` = G (X -> Y, native -> deblurred: the model written), ``inverse`` = F
(Y -> X), ``d_x`` / ``d_y`` the PatchGAN discriminators of each domain, ``heads_x`` /
``heads_y`` the projection heads of features of X-domain images (encoded by G) and of
Y-domain images (encoded by F). Two optimisers, "discriminators" and "generators" (G, F and
both heads), each Adam(lr, (beta1, 0.999)).

One step (``batch`` crops of each domain; images [0, 1] mapped to [-1, 1]):

1. fake_y = G(x), fake_x = F(y);
2. discriminators: 0.5 [LSGAN(D_Y(y), real) + LSGAN(D_Y(fake_y), fake)] + the same for D_X;
3. generators: lambda_gan (LSGAN(D_Y(fake_y), real) + LSGAN(D_X(fake_x), real)) / 2
   + lambda_con (NCE(x -> fake_y) + NCE(y -> fake_x)) / 2
   + lambda_idt idt,
   where NCE(x -> fake_y) takes keys from G's encoder on x through ``heads_x`` and queries
   from F's encoder on fake_y through ``heads_y`` (the dual form of DCLGAN: each output is
   encoded by the generator of its own domain), at the same ``patches`` random locations;
   idt is, for ``identity="nce"`` (default, the paper's "features from G(y) similar with
   features from y"), (NCE(y -> G(y)) + NCE(x -> F(x))) / 2 with both sides encoded by the
   generator of their domain (CUT's identity), or for ``"l1"`` (|G(y) - y| + |F(x) - x|) / 2
   (DCLGAN's).

With ``ema`` > 0 a moving average of G (module ``ema``) is validated and written.

Logged: ``loss`` (generators' total), ``loss_d``, ``loss_gan``, ``loss_con``, ``loss_idt``.
Validation: G on the validation native images (whole 101 x 101 images), PSNR / SSIM / NRMSE
against their phantoms after a least-squares gain (:func:`~napari_mpi.enhance.unpaired.scores`);
the checkpoint kept has the lowest ``val_nrmse``. Torch is imported in the methods.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import numpy as np

from ..nn.training import MovingAverageMixin, Recipe, Stage, cosine_schedule
from ..progress import Progress, remap
from .dcgan_config import DCGANConfig, parse_layers

__all__ = ["DCGANRecipe", "iter_train_dcgan", "summary"]


class DCGANRecipe(MovingAverageMixin, Recipe):
    """DC_GAN on unpaired domains (module docstring).

    Parameters
    ----------
    config : DCGANConfig
    domains : UnpairedDomains
        Domain X and Y images (n, H, W) in [0, 1].
    val : tuple of ndarray
        (native, phantom) validation pairs, each (n, H, W).
    data : dict or None
        How the data were made (copied into the card).
    val_snr : ndarray or None
        The SNR (dB) of each validation pair, shape (n,); with two or more values validation
        also records ``val_psnr_<snr>dB`` and ``val_ssim_<snr>dB`` (the checkpoint is still
        chosen on the mean ``val_nrmse`` over every pair).
    """

    method = "dcgan"
    score_key = "val_nrmse"

    def __init__(
        self,
        config: DCGANConfig,
        domains,
        val,
        data: dict | None = None,
        val_snr: np.ndarray | None = None,
    ) -> None:
        super().__init__(config)
        config.check()
        self.domains = domains
        x, y = domains.x, domains.y
        if x.ndim != 3 or y.ndim != 3 or len(x) < 1 or len(y) < 1:
            raise ValueError(f"dcgan: domains must be (n, H, W) stacks, got {x.shape}, {y.shape}")
        if min(x.shape[1:]) < config.crop or min(y.shape[1:]) < config.crop:
            raise ValueError(f"dcgan: crop {config.crop} exceeds the images {x.shape[1:]}")
        natives, phantoms = (np.asarray(a, dtype=np.float32) for a in val)
        if natives.shape != phantoms.shape or natives.ndim != 3:
            raise ValueError("dcgan: validation needs (native, phantom) stacks of one shape")
        self.val_native = natives
        self.val_phantom = phantoms
        if val_snr is not None and len(val_snr) != len(natives):
            raise ValueError(f"dcgan: val_snr has {len(val_snr)} entries for {len(natives)} "
                             f"validation pairs")  # fmt: skip
        self.val_snr = None if val_snr is None else np.asarray(val_snr, dtype=np.float64)
        self.data = dict(data or {})

    # -- helpers -----------------------------------------------------------------------------
    def _tensor(self, array: np.ndarray):
        import torch

        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

    def _crops(self, images: np.ndarray) -> np.ndarray:
        """``batch`` random crops (B, 1, c, c) of ``images``, augmented (y flips; with
        ``augment_turns`` also x flips and 90-degree turns), mapped to [-1, 1]."""
        rng = self.rngs["data"]
        c = int(self.config.crop)
        out = np.empty((int(self.config.batch), 1, c, c), dtype=np.float32)
        n, h, w = images.shape
        for b in range(len(out)):
            i = int(rng.integers(n))
            top, left = int(rng.integers(h - c + 1)), int(rng.integers(w - c + 1))
            patch = images[i, top : top + c, left : left + c]
            if self.config.augment:
                if self.config.augment_turns:
                    patch = np.rot90(patch, int(rng.integers(4)))
                    if rng.integers(2):
                        patch = patch[:, ::-1]
                if rng.integers(2):  # across the scan direction: keeps the PSF
                    patch = patch[::-1]
            out[b, 0] = patch
        return out * 2 - 1

    # -- the recipe --------------------------------------------------------------------------
    def prepare(self):
        from ..nn.dcgan import PatchDiscriminator, ProjectionHeads, ResnetGenerator

        c = self.config
        self.rngs["data"] = np.random.default_rng(c.seed)
        g = ResnetGenerator(c.width, c.blocks)
        layers = parse_layers(c.nce_layers) or g.default_nce_layers()
        self.layers = tuple(layers)
        channels = [g.feature_channels[i] for i in self.layers]
        self.modules["model"] = g
        self.modules["inverse"] = ResnetGenerator(c.width, c.blocks)
        self.modules["d_x"] = PatchDiscriminator(c.d_width, c.d_layers)
        self.modules["d_y"] = PatchDiscriminator(c.d_width, c.d_layers)
        self.modules["heads_x"] = ProjectionHeads(channels, c.head_width)
        self.modules["heads_y"] = ProjectionHeads(channels, c.head_width)
        for m in self.modules.values():
            m.to(self.device)
        self.start_moving_average(c.ema)
        yield from ()

    def stages(self) -> list[Stage]:
        return [Stage.even("dcgan", self.config.epochs, self.config.steps_per_epoch)]

    def optimisers(self, stage: Stage) -> dict:
        import torch

        c, m = self.config, self.modules
        betas = (float(c.beta1), 0.999)
        gen = [p for k in ("model", "inverse", "heads_x", "heads_y") for p in m[k].parameters()]
        disc = [p for k in ("d_x", "d_y") for p in m[k].parameters()]
        return {
            "generators": torch.optim.Adam(gen, lr=c.lr, betas=betas),
            "discriminators": torch.optim.Adam(disc, lr=c.lr, betas=betas),
        }

    def schedulers(self, stage: Stage, optimisers: dict) -> list:
        steps = sum(stage.epoch_steps)
        c = self.config
        return [s for opt in optimisers.values()
                for s in cosine_schedule(opt, c.lr_schedule, steps, c.lr)]  # fmt: skip

    def _nce(self, source, output, enc_source, enc_output, heads_source, heads_output):
        import torch

        from ..nn.dcgan import patch_nce, sample_patches

        gen = torch.Generator().manual_seed(int(self.rngs["data"].integers(2**62)))
        keys, ids = sample_patches(enc_source.encode(source, self.layers), self.config.patches,
                                   generator=gen)  # fmt: skip
        queries, _ = sample_patches(enc_output.encode(output, self.layers), 0, ids)
        return patch_nce(heads_output(queries), heads_source(keys), self.config.tau)

    def step(self, stage: Stage, epoch: int, index: int, optimisers: dict) -> dict:
        from ..nn.dcgan import lsgan

        c, m = self.config, self.modules
        x = self._tensor(self._crops(self.domains.x))
        y = self._tensor(self._crops(self.domains.y))
        G, Fi = m["model"], m["inverse"]
        fake_y, fake_x = G(x), Fi(y)

        # discriminators
        for d in (m["d_x"], m["d_y"]):
            d.requires_grad_(True)
        loss_d = 0.5 * (lsgan(m["d_y"](y), True) + lsgan(m["d_y"](fake_y.detach()), False)) + (
            0.5 * (lsgan(m["d_x"](x), True) + lsgan(m["d_x"](fake_x.detach()), False))
        )
        optimisers["discriminators"].zero_grad()
        loss_d.backward()
        optimisers["discriminators"].step()

        # generators and heads
        for d in (m["d_x"], m["d_y"]):
            d.requires_grad_(False)
        gan = 0.5 * (lsgan(m["d_y"](fake_y), True) + lsgan(m["d_x"](fake_x), True))
        con = x.new_zeros(())
        if c.lambda_con > 0:
            con = 0.5 * (
                self._nce(x, fake_y, G, Fi, m["heads_x"], m["heads_y"])
                + self._nce(y, fake_x, Fi, G, m["heads_y"], m["heads_x"])
            )
        idt = x.new_zeros(())
        if c.lambda_idt > 0:
            same_y, same_x = G(y), Fi(x)
            if c.identity == "nce":  # the paper: features of G(y) like those of y
                idt = 0.5 * (
                    self._nce(y, same_y, Fi, Fi, m["heads_y"], m["heads_y"])
                    + self._nce(x, same_x, G, G, m["heads_x"], m["heads_x"])
                )
            else:  # DCLGAN / CycleGAN: G(y) = y pixel by pixel
                idt = 0.5 * ((same_y - y).abs().mean() + (same_x - x).abs().mean())
        loss = c.lambda_gan * gan + c.lambda_con * con + c.lambda_idt * idt
        optimisers["generators"].zero_grad()
        loss.backward()
        optimisers["generators"].step()
        self.step_moving_average(c.ema)
        return {"loss": loss.item(), "loss_d": loss_d.item(), "loss_gan": gan.item(),
                "loss_con": con.item(), "loss_idt": idt.item()}  # fmt: skip

    def message(self, stage: Stage, epoch: int, total_epochs: int, losses: dict) -> str:
        return (f"dcgan, epoch {epoch}/{total_epochs}, G {losses['loss']:.3g}, "
                f"D {losses['loss_d']:.3g}")  # fmt: skip

    def validate(self, epoch: int) -> dict:
        from .unpaired import scores

        out = apply_generator(self.network(), self.val_native, self.device)
        rows = [scores(o, p) for o, p in zip(out, self.val_phantom, strict=True)]
        metrics = {f"val_{k}": float(np.mean([r[k] for r in rows])) for k in rows[0]}
        snrs = np.unique(self.val_snr) if self.val_snr is not None else ()
        if len(snrs) > 1:  # the mean over every pair scores; each SNR's own means recorded
            for snr in snrs:
                mine = [r for r, s in zip(rows, self.val_snr, strict=True) if s == snr]
                for k in ("psnr", "ssim"):
                    metrics[f"val_{k}_{snr:g}dB"] = float(np.mean([r[k] for r in mine]))
        return metrics

    def card(self, record: dict, history: list[dict], step: int, seconds: float) -> dict:
        card = super().card(record, history, step, seconds)
        card["task"] = "enhance"
        card["dimensions"] = 2
        d = self.modules["d_x"].config
        card["architecture"] = {**self.modules["model"].config, "nce_layers": list(self.layers),
                                "d_width": d["width"], "d_layers": d["layers"]}  # fmt: skip
        card["data"] = {**self.data, "y_gain": float(self.domains.y_gain),
                        "train_x": len(self.domains.x), "train_y": len(self.domains.y),
                        "val_images": len(self.val_native)}  # fmt: skip
        return card


def apply_generator(net, images: np.ndarray, device=None, batch: int = 16) -> np.ndarray:
    """G on (n, H, W) images, each divided by its maximum first; outputs in [0, 1] (n, H, W)
    (float32). Runs in eval mode without gradients and puts the network back in the mode it
    was in."""
    import torch

    dev = device if device is not None else next(net.parameters()).device
    images = np.asarray(images, dtype=np.float32)
    top = np.maximum(images.reshape(len(images), -1).max(axis=1), 1e-12)[:, None, None]
    scaled = images / top * 2 - 1
    out = np.empty(images.shape, dtype=np.float32)
    was_training = net.training
    net.eval()
    try:
        with torch.no_grad():
            for i in range(0, len(images), batch):
                x = torch.from_numpy(np.ascontiguousarray(scaled[i : i + batch, None])).to(dev)
                y = net(x)[:, 0].float().cpu().numpy()
                out[i : i + batch] = np.clip((y + 1) / 2, 0, 1)
    finally:
        net.train(was_training)
    return out


def iter_train_dcgan(
    config: DCGANConfig, output: str | Path, phantoms: str | Path | None = None
) -> Generator[Progress, None, dict]:
    """Make the unpaired domains and validation pairs, then train DC_GAN into ``output``.

    Parameters
    ----------
    config : DCGANConfig
    output : path
        Model folder (``model.pt`` = G, ``card.json``, ``last.pt`` with every module).
    phantoms : path or None
        MNIST-style ``.npz`` of digits (training split 0-8099: the first ``train_images`` make
        the domains; validation split 8100-8999: the first ``val_images`` pick the checkpoint);
        None: procedural shapes.

    Returns
    -------
    dict
        The card of the best checkpoint.
    """
    from ..nn.training import iter_train
    from ..simulation.psf_mismatch import XSpaceBlur
    from .unpaired import iter_make_domains, make_paired

    config.check()
    if phantoms is not None:
        path = Path(phantoms)
        if not path.is_file():
            raise ValueError(f"train dcgan: --phantoms {path}: no such file")
        if path.suffix.lower() != ".npz":
            raise ValueError(f"train dcgan: --phantoms {path}: expected an .npz of digits")
    blur = XSpaceBlur.parse(config.blur)
    work = iter_make_domains(
        phantoms, blur, config.train_images, config.seed, tuple(config.snr_range),
        config.y_snr_db, config.y_iterations, scale_range=tuple(config.phantom_scale),
        shift=config.phantom_shift, shift_axes=config.phantom_shift_axes,
    )  # fmt: skip
    domains = yield from remap(work, lambda p: Progress(p.done, p.total, p.message,
                                                        {"phase": "making samples"}))  # fmt: skip
    snrs = [float(config.val_snr_db)] + ([float(config.val_snr2_db)] if config.val_snr2_db else [])
    pairs = [make_paired(phantoms, "val", XSpaceBlur(**{**blur.to_dict(), "snr_db": snr}),
                         config.val_images, config.seed) for snr in snrs]  # fmt: skip
    val = tuple(np.concatenate([p[k] for p in pairs]) for k in (0, 1))
    val_snr = np.repeat(snrs, config.val_images)
    data = {**domains.card, "val": f"validation split images 0..{config.val_images - 1} at "
            f"{' and '.join(f'{s:g}' for s in snrs)} dB"}  # fmt: skip
    recipe = DCGANRecipe(config, domains, val, data, val_snr)
    return (yield from iter_train(recipe, output, half=True))


def summary(card: dict) -> str:
    """One line about a finished DC_GAN card (``napari-mpi train dcgan`` prints it)."""
    m = card["metrics"]
    return (
        f"dcgan, best validation PSNR {m.get('val_psnr', float('nan')):.2f} dB, SSIM "
        f"{m.get('val_ssim', float('nan')):.3f} after {card['training'].get('steps', '?')} "
        f"steps, {m.get('train_seconds', 0):.0f} s"
    )
