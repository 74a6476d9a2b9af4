"""The two conditional diffusion methods in the one registry: ``dccdm`` (DCCDM, the paper's
method) and ``ddpm3d`` (the 3D DDPM baseline: the same network and sampler without the two
physics losses).

Each takes a 3D :class:`~napari_mpi.image.MPIImage` (frames, z, y, x; z = the blurred stepping
axis) and returns one on the same grid: the mean of ``samples`` DDIM samples. Per frame:

1. The same checks as the CNN methods (:mod:`napari_mpi.enhance.learned`): a model of this
   method, the image's voxel size and degradation those of its training data (or
   ``allow_mismatch``), a finite volume of at least 8 voxels per axis.
2. One starting noise volume per sample is drawn for the whole frame from ``seed`` (frame f
   uses seed + f); the frame is cut into 32^3 tiles (:func:`~napari_mpi.enhance.tiling.
   iter_tiled`, linear blending over ``overlap`` voxels), each tile takes its crop of those
   noise volumes, so with ``eta`` = 0 two overlapping tiles start from the same noise where
   they overlap and their samples agree there up to what the different context changes.
3. Each tile is divided by its maximum, sampled (all samples of a tile as one batch), set to
   >= 0 and multiplied back (times the card's ``target_gain``); the per-voxel mean and second
   moment are blended, so the standard deviation over the samples is that of the blended
   samples.

The result's ``metadata``: ``uncertainty`` (an MPIImage of the per-voxel standard deviation
over the samples, same grid; None for one sample), ``dc_residual`` (per frame, the
degradation-consistency residual || k D(x_hat) + p mean(x_hat) - x_LR || / || x_LR || with
the model's scan model: D the scan's PSF on the image's voxels (the image's own degradation
when it carries one, else the model's) or the paper's surrogate, k and p fitted on the model's
training pairs; reported with every result as the issue asks), ``samples``, ``steps``,
``eta``, ``seed``, plus ``model``, ``model_card`` and ``warnings`` as the CNN methods.
Progress is reported per DDIM step, so a cancel stops within one network evaluation; a
cancelled run returns nothing.

Torch is imported when a method runs, not when this module is imported.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import numpy as np

from ..image import MPIImage
from ..progress import Progress
from ..recon.learned import DEVICE_PARAM
from ..recon.registry import Method, Param, register
from .deconvolution import check_volume
from .degradation import Degradation, degradation_in
from .learned import MIN_SIDE, _card_data, check_model_fits, model_folder

__all__ = [
    "DEFAULT_DIFFUSION_MODELS",
    "DIFFUSION_METHODS",
    "dc_residual",
    "iter_enhance_diffusion",
    "load_diffusion",
]

#: the shipped model folder of each method (under ``napari_mpi/models``)
DEFAULT_DIFFUSION_MODELS = {"dccdm": "dccdm_vesselmnist3d", "ddpm3d": "ddpm3d_vesselmnist3d"}
DIFFUSION_METHODS = tuple(DEFAULT_DIFFUSION_MODELS)
#: most samples one call may ask for (memory: a 32^3 tile batch of them)
MAX_SAMPLES = 64

_CACHE: dict[tuple, tuple] = {}


def _folder(method: str, model: str | Path) -> Path:
    """:func:`~napari_mpi.enhance.learned.model_folder` with the shipped diffusion models."""
    return model_folder(method, model, DEFAULT_DIFFUSION_MODELS)


def load_diffusion(method: str, model: str | Path = "default", device: str = "auto"):
    """``(network, card, folder)`` of a diffusion model folder, the network in eval mode.

    ValueError when the folder is missing, is another method's, or lacks the card's
    ``diffusion`` / ``physics`` sections, or its weights do not build the network.
    """
    from ..nn.checkpoint import build_model, load_checkpoint, read_card
    from ..nn.diffusion3d import DiffusionUNet3D
    from ..nn.training import resolve_device

    folder = _folder(method, model)
    card = read_card(folder)
    if card.get("method") != method:
        raise ValueError(
            f"model {folder}: card says method {card.get('method')!r}, not {method!r}; pass a "
            f"model folder trained with `napari-mpi train {method}`"
        )
    for key in ("diffusion", "physics"):
        if not isinstance(card.get(key), dict):
            raise ValueError(f"model {folder}: card.json has no '{key}' section")
    dev = resolve_device(device)
    weights = folder / "model.pt"
    key = (str(folder.resolve()), weights.stat().st_mtime_ns if weights.exists() else 0, str(dev))
    if key not in _CACHE:
        state, card = load_checkpoint(folder)
        net = build_model(DiffusionUNet3D, state, card, folder).to(dev)
        _CACHE.clear()
        _CACHE[key] = (net, card)
    net, card = _CACHE[key]
    return net, card, folder


def dc_operator(card: dict) -> str:
    """The blur D of a diffusion model's consistency term: "psf" or "surrogate" (older
    cards, written before the PSF operator, used the surrogate)."""
    s = card.get("physics", {}).get("surrogate", {})
    return str(s.get("operator", card.get("physics", {}).get("dc_operator", "surrogate")))


def residual_psf(card: dict, image: MPIImage) -> np.ndarray | None:
    """The PSF :func:`dc_residual` needs for ``image`` under ``card`` (None for a surrogate
    model): the scan the image carries (``metadata["degradation"]``), else the model's
    training scan, on the image's voxels."""
    if dc_operator(card) != "psf":
        return None
    scan = degradation_in(image.metadata.get("degradation"))
    if scan is None:
        scan = degradation_in(_card_data(card).get("degradation"))
    deg = Degradation() if scan is None else Degradation.from_dict(scan)
    return deg.psf(image.grid)


def dc_residual(estimate: np.ndarray, degraded: np.ndarray, card: dict,
                psf: np.ndarray | None = None) -> float:  # fmt: skip
    """|| (k / g) D(x_hat) + (p / g) mean(x_hat) - x_LR || / || x_LR || of one (z, y, x)
    volume, with the card's scan model (D: the scan's PSF ``psf``, see :func:`residual_psf`,
    or the surrogate with its sigma; k, p fitted in network units) and target gain g: the
    scale-free form of the training's consistency term."""
    import torch

    from ..nn.diffusion3d import PSFBlur, degrade

    s = card["physics"]["surrogate"]
    g = float(_card_data(card).get("target_gain", card.get("data", {}).get("target_gain", 1.0)))
    blur = None
    if dc_operator(card) == "psf":
        if psf is None:
            raise ValueError("dc_residual: this model's consistency term uses the scan's PSF; "
                             "pass psf=residual_psf(card, image)")  # fmt: skip
        blur = PSFBlur(psf, tuple(np.shape(estimate)))
    with torch.no_grad():
        y = torch.from_numpy(np.ascontiguousarray(estimate, dtype=np.float32))[None, None]
        pred = degrade(y, s["gain"] / g, s["pedestal"] / g, tuple(s["sigma_zyx"]),
                       blur)[0, 0].numpy()  # fmt: skip
    x = np.asarray(degraded, dtype=np.float64)
    return float(np.linalg.norm(pred - x) / max(np.linalg.norm(x), 1e-30))


def iter_enhance_diffusion(
    image: MPIImage,
    method: str,
    model: str = "default",
    device: str = "auto",
    samples: int = 1,
    steps: int = 20,
    eta: float = 0.0,
    seed: int = 0,
    overlap: int = 8,
    allow_mismatch: bool = False,
) -> Generator[Progress, None, MPIImage]:
    """Enhance every frame of ``image`` by DDIM sampling of ``method`` (see the module
    docstring), yielding progress per sampling step.

    Parameters
    ----------
    image : MPIImage
        (frames, z, y, x), at least 8 voxels per axis, finite.
    method : {"dccdm", "ddpm3d"}
    model : str or path
        Model folder, or "default" (shipped).
    device : str
        Torch device ("auto": CUDA when available).
    samples : int
        Samples per voxel (1 .. 64): the result is their mean, ``metadata["uncertainty"]``
        their standard deviation.
    steps : int
        DDIM steps (>= 1, at most the model's T).
    eta : float
        DDIM eta in [0, 1].
    seed : int
        Seeds the starting noise (and eta's fresh noise): the same seed, the same result.
    overlap : int
        Voxels shared by neighbouring 32^3 tiles (5 .. 31).
    allow_mismatch : bool
        Proceed when the image's voxel size or degradation differs from the model's.

    Returns
    -------
    MPIImage
        The mean on the image's grid, float32, concentration units of the input.
    """
    import torch

    from ..nn.diffusion3d import NoiseSchedule, from_diffusion, iter_ddim_sample, to_diffusion
    from .tiling import iter_tiled

    check_volume(image, method)
    small = [f"{a} {n}" for a, n in zip("zyx", image.grid_shape, strict=True) if n < MIN_SIDE]
    if small:
        raise ValueError(
            f"{method}: the volume {tuple(image.grid_shape)} is smaller than the network's "
            f"receptive field allows (at least {MIN_SIDE} voxels per axis; {', '.join(small)})"
        )
    samples, steps = int(samples), int(steps)
    if not 1 <= samples <= MAX_SAMPLES:
        raise ValueError(f"{method}: samples must be 1 .. {MAX_SAMPLES}, got {samples}")
    if steps < 1:
        raise ValueError(f"{method}: steps must be >= 1, got {steps}")
    if not 0.0 <= float(eta) <= 1.0:
        raise ValueError(f"{method}: eta must be in [0, 1], got {eta}")
    net, card, folder = load_diffusion(method, model, device)
    warnings = check_model_fits(card, image, method, allow_mismatch, folder)
    d = card["diffusion"]
    schedule = NoiseSchedule(int(d["timesteps"]), d["schedule"])
    if steps > schedule.steps:
        raise ValueError(f"{method}: steps must be <= the model's {schedule.steps}, got {steps}")
    clip_max = float(d.get("clip_max", 2.5))
    data = card.get("data", {})
    gain = float(data.get("target_gain", 1.0)) if data.get("network_scale") == (
        "input-max-gain") else 1.0  # fmt: skip
    tile = [int(s) for s in (data.get("volume_shape_zyx") or [32, 32, 32])]
    overlaps = [min(int(overlap), t - 1) for t in tile]
    if any(o < 5 for o in overlaps):
        raise ValueError(f"{method}: overlap must be at least 5 voxels, got {overlap}")
    dev = next(net.parameters()).device
    frames = image.data.shape[0]
    mean = np.empty(image.data.shape, dtype=np.float32)
    std = np.zeros(image.data.shape, dtype=np.float32) if samples > 1 else None
    residuals = []
    psf = residual_psf(card, image)
    for f in range(frames):
        gen = torch.Generator().manual_seed(int(seed) + f)
        noise = torch.randn((samples, 1, *image.grid_shape), generator=gen)

        def sample_tile(t: np.ndarray, index: tuple, noise=noise, gen=gen):
            scale = max(float(t.max()), 1e-12)
            cond = torch.from_numpy(np.ascontiguousarray(t / scale, dtype=np.float32))
            cond = to_diffusion(cond[None, None].expand(samples, 1, *t.shape).to(dev))
            start = noise[(slice(None), slice(None), *index)].to(dev)
            x0 = yield from iter_ddim_sample(net, cond, schedule, steps, float(eta), gen,
                                             (-clip_max, clip_max), start,
                                             d.get("prediction", "eps"))  # fmt: skip
            y = from_diffusion(x0)[:, 0].clamp(min=0).double().cpu().numpy() * (scale * gain)
            return np.stack([y.mean(axis=0), (y**2).mean(axis=0)])

        def relabel(p: Progress, f=f) -> Progress:
            return Progress(f * p.total + p.done, frames * p.total,
                            f"{method}: frame {f + 1}/{frames}, {p.message}", p.info)  # fmt: skip

        work = iter_tiled(image.data[f], sample_tile, tile, overlaps, 2, pass_index=True)
        while True:
            try:
                p = next(work)
            except StopIteration as stop:
                moments = stop.value
                break
            yield relabel(p)
        mean[f] = moments[0]
        if std is not None:
            std[f] = np.sqrt(np.maximum(moments[1] - moments[0].astype(np.float64) ** 2, 0))
        residuals.append(dc_residual(mean[f], image.data[f], card, psf))
    meta = {
        **dict(image.metadata or {}),
        "model": str(folder),
        "model_card": {
            **{k: card.get(k) for k in ("method", "command", "seed")},
            "data": _card_data(card),
            "target_gain": gain,
            "diffusion": d,
        },
        "warnings": warnings,
        "samples": samples,
        "steps": steps,
        "eta": float(eta),
        "seed": int(seed),
        "dc_residual": residuals,
    }
    uncertainty = None
    if std is not None:
        uncertainty = MPIImage(std, image.fov, image.center,
                               metadata={"kind": "uncertainty", "method": method,
                                         "samples": samples})  # fmt: skip
    meta["uncertainty"] = uncertainty
    return MPIImage(mean, image.fov, image.center, metadata=meta)


def _solver(method: str):
    def solve(image, model, device, samples, steps, eta, seed, overlap, allow_mismatch):
        return (yield from iter_enhance_diffusion(image, method, model, device, samples, steps,
                                                  eta, seed, overlap, allow_mismatch))  # fmt: skip

    return solve


_TITLES = {
    "dccdm": ("DCCDM", "DCCDM: conditional 3D diffusion with degradation-consistency and "
              "frequency-alignment losses; samples > 1 adds an uncertainty (std) output",
              "DCCDM (the seeded paper)", 360),
    "ddpm3d": ("3D DDPM", "3D conditional DDPM baseline (DCCDM without its physics losses); "
               "samples > 1 adds an uncertainty (std) output", "Yu et al. 2024 (3D DDPM)", 365),
}  # fmt: skip

for _name in DIFFUSION_METHODS:
    _title, _description, _reference, _order = _TITLES[_name]
    register(
        Method(
            name=_name,
            task="enhance",
            kind="learned",
            title=_title,
            description=_description,
            solve=_solver(_name),
            params=(
                Param(
                    "model",
                    str,
                    "default",
                    "model folder, or 'default' (shipped: "
                    "VesselMNIST3D, the papers' scan, 1 mm voxels)",
                ),
                DEVICE_PARAM,
                Param(
                    "samples",
                    int,
                    1,
                    "DDIM samples: the result is their mean; more than "
                    "one also gives their per-voxel standard deviation",
                    1,
                    MAX_SAMPLES,
                ),
                Param("steps", int, 20, "DDIM steps (more: slower, closer to the model)", 1, 1000),
                Param("eta", float, 0.0, "DDIM eta: 0 deterministic, 1 DDPM-like", 0.0, 1.0),
                Param(
                    "seed",
                    int,
                    0,
                    "seed of the starting noise (same seed, same result)",
                    0,
                    2**31 - 1,
                ),
                Param("overlap", int, 8, "voxels shared by neighbouring 32^3 tiles", 5, 31),
                Param(
                    "allow_mismatch",
                    bool,
                    False,
                    "proceed when the image's voxel size or degradation differs from the model's",
                ),
            ),
            reference=_reference,
            order=_order,
        )
    )
