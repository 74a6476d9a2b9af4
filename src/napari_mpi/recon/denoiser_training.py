"""Training the PP-MPI denoiser: phantoms plus Gaussian noise, not tied to a system matrix.

Images are phantoms of a phantom mix (:mod:`napari_mpi.simulation.phantom_mix`: MNIST-style
digits of the training split only, placed as in the DERnet paper, strokes, points, tubes,
cones, vessel slices, concentration steps) on a 24 x 24 grid, each normalised to a maximum
of 1, with Gaussian noise of a standard deviation drawn uniformly from
``noise_range`` (a blind denoiser: inside ADMM the error of the iterate is not known in
advance). MSE loss, Adam; the best checkpoint on a fixed validation set is kept. Training runs on
the one loop (:func:`napari_mpi.nn.training.iter_train`, recipe :class:`DenoiserRecipe`): an
"epoch" there is ``validate_every`` steps.
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Generator
from pathlib import Path

import numpy as np

from ..datasets import load_npz_images, split_indices
from ..grid import Grid
from ..nn.training import Recipe, Stage, iter_train
from ..progress import Progress
from ..simulation.phantom_mix import PhantomMix
from .training_config import DenoiserConfig


def _phantom_batch(
    rng: np.random.Generator, n: int, size: int, digits: np.ndarray | None, sampler: PhantomMix
) -> np.ndarray:
    """``n`` clean (size, size) images drawn by ``sampler`` (digits from ``digits``)."""
    grid = Grid((1, size, size), fov=(0.0, 0.02, 0.02), center=(0.0, 0.0, 0.0))
    out = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        values, _ = sampler.draw(grid, rng, lambda: digits[rng.integers(digits.shape[0])])
        out[i] = values[0]
    return out


class DenoiserRecipe(Recipe):
    """The PP-MPI denoiser on the one loop: fresh phantoms and noise every step."""

    method = "ppmpi-denoiser"
    score_key = "val_mse"

    def __init__(self, config: DenoiserConfig, source: str | Path | None = None) -> None:
        super().__init__(config)
        config.check()
        self.source = source

    def prepare(self) -> Generator[Progress, None, None]:
        import torch

        from ..nn.denoiser import DenoiserRDN

        c, dev = self.config, self.device
        self.rngs["data"] = np.random.default_rng(c.seed)
        self.digits = None
        if self.source is not None:
            images = load_npz_images(self.source)
            if images.ndim != 3:
                raise ValueError(f"denoiser source {self.source}: needs (n, h, w) images")
            self.digits = images[split_indices(images.shape[0], "train")]
        self.sampler = PhantomMix(c.phantom_mix, has_digits=self.digits is not None)
        self.modules["model"] = DenoiserRDN(**(c.architecture or {})).to(dev)
        val_rng = np.random.default_rng(c.seed + 1)
        yield Progress(0, 1, "validation images")
        images = _phantom_batch(val_rng, 64, c.size, self.digits, self.sampler)
        clean = torch.from_numpy(images)[:, None]
        sigma = torch.from_numpy(
            val_rng.uniform(*c.noise_range, size=(64, 1, 1, 1)).astype(np.float32)
        )
        noisy = clean + sigma * torch.randn(
            clean.shape, generator=torch.Generator().manual_seed(c.seed)
        )
        self.val_clean, self.val_noisy = clean.to(dev), noisy.to(dev)
        yield Progress(1, 1, "validation images")

    def stages(self) -> list[Stage]:
        return [Stage.steps("training denoiser", self.config.steps, self.config.validate_every)]

    def optimisers(self, stage: Stage) -> dict:
        import torch

        return {"adam": torch.optim.Adam(self.modules["model"].parameters(), lr=self.config.lr)}

    def step(self, stage: Stage, epoch: int, index: int, optimisers: dict) -> dict:
        import torch

        c, rng, dev = self.config, self.rngs["data"], self.device
        images = _phantom_batch(rng, c.batch, c.size, self.digits, self.sampler)
        clean = torch.from_numpy(images)[:, None]
        sigma = torch.from_numpy(
            rng.uniform(*c.noise_range, size=(c.batch, 1, 1, 1)).astype(np.float32)
        )
        noisy = clean + sigma * torch.from_numpy(
            rng.standard_normal(clean.shape).astype(np.float32)
        )
        clean, noisy = clean.to(dev), noisy.to(dev)
        loss = torch.mean((self.modules["model"](noisy) - clean) ** 2)
        opt = optimisers["adam"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        return {"loss": float(loss.item())}

    def message(self, stage: Stage, epoch: int, total_epochs: int, losses: dict) -> str:
        return f"training denoiser (loss {losses['loss']:.2e})"

    def validate(self, epoch: int) -> dict:
        import torch

        val_mse = float(torch.mean((self.modules["model"](self.val_noisy) - self.val_clean) ** 2))
        noisy_mse = float(torch.mean((self.val_noisy - self.val_clean) ** 2))
        return {
            "val_mse": val_mse,
            "val_mse_noisy_input": noisy_mse,
            "val_gain_db": float(10 * np.log10(noisy_mse / val_mse)),
        }

    def card(self, record: dict, history: list[dict], step: int, seconds: float) -> dict:
        c, model = self.config, self.modules["model"]
        keys = ("val_mse", "val_mse_noisy_input", "val_gain_db")
        return {
            "method": "ppmpi-denoiser",
            "architecture": {"class": "DenoiserRDN", **model.config},
            "command": shlex.join(sys.argv) if c.command is None else c.command,
            "data": {
                "source": str(self.source) if self.source else "procedural",
                "image_size": c.size,
                "noise_range": list(c.noise_range),
                "phantom_mix": dict(c.phantom_mix),
            },
            "seed": c.seed,
            "training": {"steps": step, "batch": c.batch, "lr": c.lr},
            "metrics": {**{k: record[k] for k in keys}, "train_seconds": seconds},
            "fingerprint": None,
        }


def iter_train_denoiser(
    output: str | Path,
    source: str | Path | None = None,
    steps: int = 4000,
    batch: int = 32,
    size: int = 24,
    noise_range: tuple[float, float] = (0.005, 0.15),
    lr: float = 1e-3,
    seed: int = 0,
    architecture: dict | None = None,
    validate_every: int = 200,
    phantom_mix: dict | None = None,
    command: str | None = None,
    device: str = "auto",
    resume: bool = False,
) -> Generator[Progress, None, dict]:
    """Train the denoiser, yielding progress; returns the saved card.

    ``command`` is recorded in the card (default: this process's command line). Cancelling
    (closing the generator) keeps the best checkpoint saved so far. The parameters are the
    fields of :class:`DenoiserConfig` (``phantom_mix`` None: the default mix).
    """
    mix = {} if phantom_mix is None else {"phantom_mix": phantom_mix}
    config = DenoiserConfig(
        steps=steps, batch=batch, size=size, noise_range=tuple(noise_range), lr=lr, seed=seed,
        architecture=architecture, validate_every=validate_every, command=command,
        device=device, resume=resume, **mix,
    )  # fmt: skip
    return (yield from iter_train(DenoiserRecipe(config, source), output))
