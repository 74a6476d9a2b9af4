"""Training recipe of the two conditional diffusion models on the one loop: ``ddpm3d`` (the
diffusion loss only) and ``dccdm`` (plus the degradation-consistency and frequency-alignment
losses on the predicted clean volume). The configs and the choices behind the defaults are in
:mod:`napari_mpi.enhance.diffusion_config`, the networks and losses in
:mod:`napari_mpi.nn.diffusion3d`.

One step: a batch of training pairs (the enhancement recipes' pairs, scaling and
augmentation: :class:`~napari_mpi.enhance.recipes.VolumeRecipe`), a timestep per volume drawn
uniformly from 0 .. T - 1 with torch's seeded generator, x_t = q_sample(y, t, eps), the
U-Net's output (noise, v or x0: the config's ``prediction``), and

    loss = ||out - target||^2 + lambda_dc w_t L_dc(y_hat) + lambda_freq w_t L_freq(y_hat)

with y_hat = x0_hat from x_t and eps_hat, w_t = a_t (or 1). Every term is
logged (``loss``, ``loss_diffusion``, ``loss_dc``, ``loss_freq``; the two physics terms are
also computed, without gradient, for ``ddpm3d``, so both trainings show how well their
x0_hat fits the scan). The weights' exponential moving average (``ema``) is what validation
samples and what is written.

Validation after every epoch: DDIM samples (the config's ``sample_steps`` and ``eta``, a
fixed seed) of the first ``val_sample_volumes`` validation volumes; ``val_loss`` = their
mean L1 against the target (picks the checkpoint), ``val_psnr`` (dB, peak = the target's
maximum), ``val_dc_residual`` (|| degrade(y_hat) - x_LR || / || x_LR ||, the scan's surrogate
fitted on the training pairs) and ``val_diffusion_mse`` (the diffusion loss at fixed timesteps).
"""

from __future__ import annotations

import numpy as np

from ..nn.training import MovingAverageMixin, Stage
from .diffusion_config import DEFAULT_SIGMA, DCCDMConfig, DDPM3DConfig
from .recipes import VolumeRecipe, _psnr

__all__ = ["SURROGATE_PAIRS", "DiffusionRecipe"]


#: training pairs the scan's surrogate (gain, pedestal) is fitted on
SURROGATE_PAIRS = 64


class DiffusionRecipe(MovingAverageMixin, VolumeRecipe):
    """``ddpm3d`` or ``dccdm`` (by the config's class) on volume pairs.

    Parameters
    ----------
    config : DDPM3DConfig or DCCDMConfig
    train, val : tuple of ndarray, each shape (N, Z, Y, X), or PairSet
        ``(degraded, target)`` volume pairs.
    data : dict or None
        Copied into the card (see :class:`VolumeRecipe`).
    """

    score_key = "val_loss"
    #: the model is written in float16 (half the file; loading returns float32)
    half = True

    def __init__(self, config: DDPM3DConfig, train, val, data: dict | None = None) -> None:
        if not isinstance(config, DDPM3DConfig):
            raise ValueError(f"diffusion: needs a DDPM3DConfig or DCCDMConfig, got {config!r}")
        method = "dccdm" if isinstance(config, DCCDMConfig) else "ddpm3d"
        super().__init__(config, train, val, method=method, data=data)
        self.physics = config.physics()
        self.sigma = tuple(self.physics.get("dc_sigma", DEFAULT_SIGMA))

    # -- set-up --------------------------------------------------------------------------------
    def prepare(self):
        import torch

        from ..nn.diffusion3d import DiffusionUNet3D, NoiseSchedule, fit_surrogate

        c = self.config
        self.rngs["data"] = np.random.default_rng(c.seed)
        self._order: list[int] = []
        net = DiffusionUNet3D(**c.network_kwargs()).to(self.device)
        if str(c.init_from or "").strip():
            net.load_state_dict(self._initial_weights(str(c.init_from).strip(), net))
        self.modules["model"] = net
        self.start_moving_average(c.ema)
        self.schedule = NoiseSchedule(c.timesteps, c.schedule)
        x, y = self.train_pairs
        n = min(SURROGATE_PAIRS, len(x))
        self.operator = self.physics.get("dc_operator", "surrogate")
        self.blur = self._psf_blur(x.shape[1:]) if self.operator == "psf" else None
        gain, pedestal, residual = fit_surrogate(
            torch.from_numpy(y[:n, None]).to(self.device),
            torch.from_numpy(x[:n, None]).to(self.device), self.sigma, self.blur,
        )  # fmt: skip
        #: the scan's model in network units: x_LR ~ gain D(y) + pedestal mean(y)
        self.surrogate = {"operator": self.operator, "sigma_zyx": list(self.sigma),
                          "gain": gain, "pedestal": pedestal, "fit_residual": residual,
                          "fit_pairs": n}  # fmt: skip
        yield from ()

    def _psf_blur(self, shape):
        """The training scan's PSF on the pairs' voxels as a :class:`PSFBlur`."""
        from ..grid import Grid
        from ..nn.diffusion3d import PSFBlur
        from .data import PAIR_VOXEL
        from .degradation import Degradation
        from .learned import _card_data

        voxel = np.asarray(_card_data({"data": self.data}).get("voxel_size_m_zyx")
                           or [PAIR_VOXEL] * 3)  # fmt: skip
        shape = tuple(int(s) for s in shape)
        grid = Grid(shape, tuple(float(v) * s for v, s in zip(voxel, shape, strict=True)),
                    (0.0, 0.0, 0.0))  # fmt: skip
        psf = Degradation.parse(self.config.degradation).psf(grid)
        return PSFBlur(psf, shape, self.device)

    def _initial_weights(self, folder: str, net) -> dict:
        """The weights of model folder ``folder`` for ``net`` (a model of this method and
        architecture; ValueError naming the folder otherwise)."""
        from ..nn.checkpoint import starting_weights

        state, _ = starting_weights(folder, (self.method,), net.config, self.method,
                                    "--widths, --blocks and --time-dim")  # fmt: skip
        self.initial_model = str(folder)
        return state

    def stages(self) -> list[Stage]:
        steps = self._steps(len(self.train_pairs[0]), self.config.batch)
        return [Stage.even(self.method, self.config.epochs, steps)]

    @property
    def clip(self) -> tuple[float, float]:
        """The sampler's clip range of x0: [-clip_max, clip_max] (symmetric: clipping the
        early steps' noisy estimates to [0, clip_max] would bias them upwards)."""
        return (-float(self.config.clip_max), float(self.config.clip_max))

    # -- training ------------------------------------------------------------------------------
    def terms(self, x, y, t, noise, model, with_physics_grad: bool):
        """The loss terms of one batch: (diffusion, dc, freq) per-batch means, dc and freq
        weighted per volume by w_t (see the module docstring); the diffusion loss is the
        mean squared error of the network's output (noise, v or x0: ``prediction``)."""
        import torch

        from ..nn.diffusion3d import (
            _norm,
            degrade,
            frequency_loss,
            from_diffusion,
            to_diffusion,
        )

        s = self.schedule
        x0, cond = to_diffusion(y), to_diffusion(x)
        x_t = s.q_sample(x0, t, noise)
        out = model(x_t, cond, t)
        prediction = self.config.prediction
        diffusion = ((out - s.target(x0, t, noise, prediction)) ** 2).mean()
        p = self.physics
        weighting = p.get("physics_weighting", "alpha-bar")
        with torch.set_grad_enabled(with_physics_grad and torch.is_grad_enabled()):
            a = s.a(t, x_t)
            y_hat = from_diffusion(s.split(x_t, t, out, prediction)[0])
            w = a.flatten() if weighting == "alpha-bar" else torch.ones_like(a.flatten())
            g, ped = self.surrogate["gain"], self.surrogate["pedestal"]
            seen = degrade(y_hat, g, ped, self.sigma, self.blur)
            dc = _norm(seen - x, p.get("dc_norm", "l1"))
            if p.get("freq_low_target", "lr") == "degraded":
                low_hat, y_low = seen / g, x / g
            else:  # the paper's: the prediction against the rescaled scan
                low_hat, y_low = None, (x - ped * y.mean(dim=(2, 3, 4), keepdim=True)) / g
            freq = frequency_loss(y_hat, y_low, y, p.get("freq_low", 0.05),
                                  p.get("freq_high", 0.05), p.get("gamma", 0.3),
                                  y_hat_low=low_hat)  # fmt: skip
            dc, freq = (w * dc).mean(), (w * freq).mean()
        return diffusion, dc, freq

    def step(self, stage: Stage, epoch: int, index: int, optimisers: dict) -> dict:
        import torch

        x, y = self._batch(self.config.batch)
        x, y = self._tensor(x), self._tensor(y)
        t = torch.randint(0, self.schedule.steps, (len(x),)).to(self.device)
        noise = torch.randn(x.shape).to(self.device)
        lam_dc, lam_freq = self.physics["lambda_dc"], self.physics["lambda_freq"]
        physics = bool(lam_dc or lam_freq)
        diffusion, dc, freq = self.terms(x, y, t, noise, self.modules["model"], physics)
        loss = diffusion + lam_dc * dc + lam_freq * freq if physics else diffusion
        optimisers["model"].zero_grad()
        loss.backward()
        optimisers["model"].step()
        self.step_moving_average(self.config.ema)
        return {"loss": float(loss.item()), "loss_diffusion": float(diffusion.item()),
                "loss_dc": float(dc.item()), "loss_freq": float(freq.item())}  # fmt: skip

    # -- validation ----------------------------------------------------------------------------
    def sample(self, x, seed: int):
        """DDIM samples y_hat (network units) for conditions ``x`` (B, 1, Z, Y, X)."""
        import torch

        from ..nn.diffusion3d import ddim_sample, from_diffusion, to_diffusion

        c = self.config
        gen = torch.Generator().manual_seed(int(seed))
        x0 = ddim_sample(self.network(), to_diffusion(x), self.schedule, c.sample_steps, c.eta,
                         gen, self.clip, prediction=c.prediction)  # fmt: skip
        return from_diffusion(x0)

    def validate(self, epoch: int) -> dict:
        import torch

        from ..nn.diffusion3d import degrade

        c = self.config
        net = self.network()
        net.eval()
        degraded, target = self.val_pairs
        n = min(int(c.val_sample_volumes), len(degraded))
        gen = torch.Generator().manual_seed(c.seed + 1)
        l1, psnr, resid, eps_mse = [], [], [], []
        g, ped = self.surrogate["gain"], self.surrogate["pedestal"]
        for i in range(0, n, c.batch):
            x = self._tensor(degraded[i : min(i + c.batch, n), None])
            y = self._tensor(target[i : min(i + c.batch, n), None])
            y_hat = self.sample(x, c.seed + 1000 + i)
            l1 += (y_hat - y).abs().flatten(1).mean(1).tolist()
            psnr += _psnr(y_hat, y).tolist()
            r = degrade(y_hat, g, ped, self.sigma, self.blur) - x
            resid += (r.flatten(1).norm(dim=1) / x.flatten(1).norm(dim=1)).tolist()
            t = torch.randint(0, self.schedule.steps, (len(x),), generator=gen).to(self.device)
            noise = torch.randn(x.shape, generator=gen).to(self.device)
            with torch.no_grad():
                diffusion, _, _ = self.terms(x, y, t, noise, net, False)
            eps_mse.append(float(diffusion) * len(x))
        net.train()
        return {"val_loss": float(np.mean(l1)), "val_psnr": float(np.mean(psnr)),
                "val_dc_residual": float(np.mean(resid)),
                "val_diffusion_mse": float(np.sum(eps_mse) / n)}  # fmt: skip

    def card(self, record: dict, history: list[dict], step: int, seconds: float) -> dict:
        card = super().card(record, history, step, seconds)
        c = self.config
        card["diffusion"] = {"prediction": c.prediction, "timesteps": int(c.timesteps),
                             "schedule": c.schedule, "sample_steps": int(c.sample_steps),
                             "eta": float(c.eta), "clip_max": float(c.clip_max),
                             "ema": float(c.ema), "range": "y", "spacing": "leading"}  # fmt: skip
        card["physics"] = {**self.physics, "surrogate": dict(self.surrogate)}
        if getattr(self, "initial_model", None):
            card["diffusion"]["initial_model"] = self.initial_model
        return card
