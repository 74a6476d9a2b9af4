"""Complex Gaussian noise at a requested SNR."""

from __future__ import annotations

import numpy as np


def rms(values: np.ndarray, axis=None) -> np.ndarray:
    """Root mean square of |values|."""
    return np.sqrt(np.mean(np.abs(values) ** 2, axis=axis))


def measured_snr_db(clean: np.ndarray, noisy: np.ndarray) -> float:
    """20 log10(rms(clean) / rms(noisy - clean)) over all given samples (dB)."""
    return float(20 * np.log10(rms(clean) / rms(np.asarray(noisy) - clean)))


def noise_std_for_snr(clean: np.ndarray, snr_db: float) -> float:
    """Noise RMS that gives ``snr_db`` = 20 log10(rms(clean) / rms(noise)) over ``clean``."""
    if not np.isfinite(snr_db):
        raise ValueError(f"snr must be a finite number of dB, got {snr_db}")
    return float(rms(clean) / 10 ** (snr_db / 20))


def complex_noise(shape, std: float, rng: np.random.Generator) -> np.ndarray:
    """Circular complex Gaussian noise with E|n|^2 = std^2, complex128."""
    return (rng.standard_normal(shape) + 1j * rng.standard_normal(shape)) * (std / np.sqrt(2))


def add_noise(
    clean: np.ndarray, snr_db: float, rng: np.random.Generator, frames: int | None = None
) -> tuple[np.ndarray, float]:
    """Add complex Gaussian noise at ``snr_db`` over the band given (the last axis).

    Returns the noisy signal (with a leading axis of ``frames`` when given) and the noise std.
    """
    std = noise_std_for_snr(clean, snr_db)
    shape = clean.shape if frames is None else (frames, *clean.shape)
    return clean + complex_noise(shape, std, rng), std
