"""Training the PP-MPI denoiser: phantoms plus Gaussian noise, not tied to a system matrix.

Images are digit-like phantoms on random grids: MNIST-style digits (training split only) placed
as in the DERnet paper, procedural strokes, two points and two tubes, each normalised to a
maximum of 1, with Gaussian noise of a standard deviation drawn uniformly from
``noise_range`` (a blind denoiser: inside ADMM the error of the iterate is not known in
advance). MSE loss, Adam; the best checkpoint on a fixed validation set is kept.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Generator
from pathlib import Path

import numpy as np

from ..grid import Grid
from ..progress import Progress
from ..simulation.phantoms import (
    load_npz_images,
    place_digit,
    stroke_phantom,
    two_points,
    two_tubes,
)
from .training_data import split_indices


def _phantom_batch(rng: np.random.Generator, n: int, size: int, digits: np.ndarray | None):
    grid = Grid((1, size, size), fov=(0.0, 0.02, 0.02), center=(0.0, 0.0, 0.0))
    out = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        kind = rng.integers(4) if digits is not None else rng.integers(1, 4)
        if kind == 0:
            out[i] = place_digit(digits[rng.integers(digits.shape[0])], grid, rng)[0]
        elif kind == 1:
            out[i] = stroke_phantom(grid, seed=int(rng.integers(2**62))).data[0, 0]
        elif kind == 2:
            gap = rng.uniform(0.15, 0.6) * 0.02
            out[i] = two_points(grid, gap, diameter=rng.uniform(0.05, 0.15) * 0.02).data[0, 0]
        else:
            out[i] = two_tubes(
                grid, rng.uniform(0.05, 0.3) * 0.02, rng.uniform(0.04, 0.1) * 0.02
            ).data[0, 0]
    return out


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
    command: str | None = None,
) -> Generator[Progress, None, dict]:
    """Train the denoiser, yielding progress; returns the saved card.

    ``command`` is recorded in the card (default: this process's command line). Cancelling
    (closing the generator) keeps the best checkpoint saved so far.
    """
    import torch

    from ..nn.checkpoint import save_checkpoint
    from ..nn.denoiser import DenoiserRDN

    if steps < 1 or batch < 1 or size < 8:
        raise ValueError("steps and batch must be >= 1 and size >= 8")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    digits = None
    if source is not None:
        images = load_npz_images(source)
        if images.ndim != 3:
            raise ValueError(f"denoiser source {source}: needs (n, h, w) images")
        digits = images[split_indices(images.shape[0], "train")]
    model = DenoiserRDN(**(architecture or {}))
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    val_rng = np.random.default_rng(seed + 1)
    val_clean = torch.from_numpy(_phantom_batch(val_rng, 64, size, digits))[:, None]
    val_sigma = torch.from_numpy(
        val_rng.uniform(*noise_range, size=(64, 1, 1, 1)).astype(np.float32)
    )
    val_noisy = val_clean + val_sigma * torch.randn(
        val_clean.shape, generator=torch.Generator().manual_seed(seed)
    )
    best = float("inf")
    if command is None:
        command = shlex.join(sys.argv)
    card: dict = {}
    t0 = time.perf_counter()
    yield Progress(0, steps, "training denoiser")
    for step in range(1, steps + 1):
        clean = torch.from_numpy(_phantom_batch(rng, batch, size, digits))[:, None]
        sigma = torch.from_numpy(
            rng.uniform(*noise_range, size=(batch, 1, 1, 1)).astype(np.float32)
        )
        noisy = clean + sigma * torch.from_numpy(
            rng.standard_normal(clean.shape).astype(np.float32)
        )
        loss = torch.mean((model(noisy) - clean) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
        info = {"step": step, "loss": float(loss.item())}
        if step % validate_every == 0 or step == steps:
            model.eval()
            with torch.no_grad():
                val_mse = float(torch.mean((model(val_noisy) - val_clean) ** 2))
                noisy_mse = float(torch.mean((val_noisy - val_clean) ** 2))
            model.train()
            info.update(val_mse=val_mse, val_gain_db=float(10 * np.log10(noisy_mse / val_mse)))
            if val_mse < best:
                best = val_mse
                card = {
                    "method": "ppmpi-denoiser",
                    "architecture": {"class": "DenoiserRDN", **model.config},
                    "command": command,
                    "data": {
                        "source": str(source) if source else "procedural",
                        "image_size": size,
                        "noise_range": list(noise_range),
                    },
                    "seed": seed,
                    "training": {"steps": step, "batch": batch, "lr": lr},
                    "metrics": {
                        "val_mse": val_mse,
                        "val_mse_noisy_input": noisy_mse,
                        "val_gain_db": 10 * np.log10(noisy_mse / val_mse),
                        "train_seconds": time.perf_counter() - t0,
                    },
                    "fingerprint": None,
                }
                save_checkpoint(output, model.state_dict(), card)
        yield Progress(step, steps, f"training denoiser (loss {info['loss']:.2e})", info)
    return card
