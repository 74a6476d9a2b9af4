"""The learned enhancement methods in the one registry: ``csdnet``, the four CNN baselines
``unet3d``, ``edsr3d``, ``rcan3d`` and ``rrdb3d`` (CSDNet's Table 1) and ``esrgan3d`` (rrdb3d's
generator trained adversarially; DCCDM's Table 1).

Each takes a 3D :class:`~napari_mpi.image.MPIImage` (frames, z, y, x; z = the blurred stepping
axis) and returns one on the same grid. A model is a folder with ``model.pt`` and ``card.json``
(written by ``napari-mpi train METHOD``); ``model="default"`` is the shipped one, trained on
VesselMNIST3D with the default :class:`~napari_mpi.enhance.Degradation` (the papers' scan,
32^3 volumes of 1 mm).

Inference, per frame:

1. The model must fit the image: its card's method is this method; the image's voxel size and
   degradation (``metadata["degradation"]``, when the image carries one) are those the model
   was trained for. A difference is an error naming it, unless ``allow_mismatch`` (then it is
   recorded in the result's ``metadata["warnings"]``). The image must be a 3D volume with at
   least :data:`MIN_SIDE` voxels along every axis, without NaN or infinite voxels.
2. The volume is cut into overlapping tiles of the training size (32^3;
   :func:`~napari_mpi.enhance.tiling.iter_tiled`, linear blending over ``overlap`` voxels),
   so memory stays bounded for any size (a 128^3 volume needs about 60 MB besides the input).
3. Each tile is divided by its own maximum (the training conventions ``scale="input-max"`` and
   ``"input-max-gain"``, recorded in the card as ``data.network_scale``; the network saw 32^3
   volumes each scaled this way), enhanced, and multiplied back (times the card's
   ``data.target_gain`` for "input-max-gain"); negative outputs are set to 0
   (concentrations).

Torch is imported when a method runs, not when this module is imported.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import numpy as np

from ..image import MPIImage
from ..progress import Progress, remap
from ..recon.learned import DEVICE_PARAM
from ..recon.registry import Method, Param, register
from .deconvolution import check_volume
from .degradation import Degradation, degradation_in

__all__ = [
    "DEFAULT_MODELS",
    "LEARNED_METHODS",
    "MIN_SIDE",
    "check_model_fits",
    "iter_enhance_learned",
    "load_enhancer",
    "model_folder",
]

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
#: the shipped model folder of each method (under ``napari_mpi/models``)
DEFAULT_MODELS = {
    "csdnet": "csdnet_vesselmnist3d",
    "unet3d": "unet3d_vesselmnist3d",
    "edsr3d": "edsr3d_vesselmnist3d",
    "rcan3d": "rcan3d_vesselmnist3d",
    "rrdb3d": "rrdb3d_vesselmnist3d",
    "esrgan3d": "esrgan3d_vesselmnist3d",
}
LEARNED_METHODS = tuple(DEFAULT_MODELS)
#: smallest side (voxels) of a volume a network is applied to: below it the network's
#: receptive field (tens of voxels) would see mostly padding
MIN_SIDE = 8
#: voxel sizes closer than this (relative) count as equal
VOXEL_RTOL = 1e-3

_CACHE: dict[tuple, tuple] = {}


def model_folder(method: str, model: str | Path = "default", defaults: dict | None = None) -> Path:
    """The folder of ``model`` ("default": the shipped one, ``defaults[method]`` under the
    models folder, :data:`DEFAULT_MODELS` when None); ValueError when it is missing."""
    if str(model).strip().lower() in ("", "default"):
        folder = MODELS_DIR / (DEFAULT_MODELS if defaults is None else defaults)[method]
        if not (folder / "card.json").is_file():
            raise ValueError(
                f"{method}: no shipped model in {folder}; train one with "
                f"`napari-mpi train {method} --volumes FILE.npz -o DIR` and pass model=DIR "
                "(CLI --model DIR)"
            )
        return folder
    folder = Path(model).expanduser()
    if not folder.is_dir():
        raise ValueError(f"{method}: model folder {folder} does not exist")
    return folder


def load_enhancer(method: str, model: str | Path = "default", device: str = "auto"):
    """``(network, card, folder)`` of a model folder, the network in eval mode on ``device``.

    ValueError when the folder is missing, is not a model of ``method`` (another method, or a
    reconstruction model), or its weights do not build the card's network.
    """
    from ..nn.checkpoint import build_model, load_checkpoint, read_card
    from ..nn.enhance3d import NETWORKS
    from ..nn.training import resolve_device

    folder = model_folder(method, model)
    card = read_card(folder)
    if card.get("method") != method:
        raise ValueError(
            f"model {folder}: card says method {card.get('method')!r}, not {method!r}; pass a "
            f"model folder trained with `napari-mpi train {method}`"
        )
    if card.get("task", "enhance") != "enhance":
        raise ValueError(f"model {folder}: a {card.get('task')} model, not an enhancement model")
    dev = resolve_device(device)
    weights = folder / "model.pt"
    key = (str(folder.resolve()), weights.stat().st_mtime_ns if weights.exists() else 0, str(dev))
    if key not in _CACHE:
        state, card = load_checkpoint(folder)
        net = build_model(NETWORKS[method], state, card, folder).to(dev)
        _CACHE.clear()  # one model at a time: a 3D network is small, a stale one is not useful
        _CACHE[key] = (net, card)
    net, card = _CACHE[key]
    return net, card, folder


def _card_data(card: dict) -> dict:
    data = card.get("data", {})
    return data.get("train", data) if isinstance(data, dict) else {}


def check_model_fits(
    card: dict, image: MPIImage, method: str, allow_mismatch: bool = False, folder=None
) -> list[str]:
    """Compare the model's training data with ``image``: voxel size and degradation.

    Returns the differences found (empty when it fits; with ``allow_mismatch`` they are
    returned instead of raised). ValueError names each difference and how to proceed.
    """
    data = _card_data(card)
    problems = []
    voxel = data.get("voxel_size_m_zyx")
    if voxel is not None:
        have = np.asarray(image.grid.voxel_size, dtype=float)
        want = np.asarray(voxel, dtype=float)
        if want.shape == have.shape and not np.allclose(have, want, rtol=VOXEL_RTOL, atol=0):
            problems.append(
                "voxel size (z, y, x): image "
                + " x ".join(f"{v * 1e3:.3g}" for v in have)
                + " mm, model "
                + " x ".join(f"{v * 1e3:.3g}" for v in want)
                + " mm"
            )
    image_card = degradation_in(image.metadata.get("degradation"))
    model_card = degradation_in(data.get("degradation"))
    if image_card is not None and model_card is not None:
        diffs = Degradation.from_dict(image_card).differences(Degradation.from_dict(model_card))
        if diffs:
            problems.append("degradation (image vs model): " + "; ".join(diffs))
    if problems and not allow_mismatch:
        where = f"model {folder}" if folder is not None else "the model"
        raise ValueError(
            f"{method}: {where} was trained for other data: "
            + "; ".join(problems)
            + ". Train a model for this scan (napari-mpi train "
            + f"{method} --degradation ...), or pass allow_mismatch=True (CLI "
            + "--allow-mismatch) to proceed anyway"
        )
    return problems


def _check_size(image: MPIImage, method: str) -> None:
    small = [f"{a} {n}" for a, n in zip("zyx", image.grid_shape, strict=True) if n < MIN_SIDE]
    if small:
        raise ValueError(
            f"{method}: the volume {tuple(image.grid_shape)} is smaller than the network's "
            f"receptive field allows (at least {MIN_SIDE} voxels per axis; {', '.join(small)})"
        )


def iter_enhance_learned(
    image: MPIImage,
    method: str,
    model: str = "default",
    device: str = "auto",
    overlap: int = 8,
    allow_mismatch: bool = False,
) -> Generator[Progress, None, MPIImage]:
    """Enhance every frame of ``image`` with a trained ``method`` network (see the module
    docstring), yielding progress per tile.

    Parameters
    ----------
    image : MPIImage
        (frames, z, y, x), at least :data:`MIN_SIDE` voxels per axis, finite.
    method : str
        One of :data:`LEARNED_METHODS`.
    model : str or path
        Model folder, or "default" (shipped).
    device : str
        Torch device ("auto": CUDA when available).
    overlap : int
        Voxels shared by neighbouring tiles (5 .. tile - 1) where the volume exceeds a tile.
    allow_mismatch : bool
        Proceed when the image's voxel size or degradation differs from the model's.

    Returns
    -------
    MPIImage
        On the image's grid; ``metadata["model"]`` (folder), ``metadata["model_card"]``
        (method, command, training data) and ``metadata["warnings"]`` (mismatches allowed).
    """
    import torch

    check_volume(image, method)
    _check_size(image, method)
    net, card, folder = load_enhancer(method, model, device)
    warnings = check_model_fits(card, image, method, allow_mismatch, folder)
    dev = next(net.parameters()).device
    shape = card.get("data", {}).get("volume_shape_zyx") or [32, 32, 32]
    tile = [int(s) for s in shape]
    overlaps = [min(int(overlap), t - 1) for t in tile]
    if any(o < 5 for o, t in zip(overlaps, tile, strict=True)):
        raise ValueError(f"{method}: overlap must be at least 5 voxels, got {overlap}")
    halo = 2

    data = card.get("data", {})
    scaling = data.get("network_scale", "input-max")
    gain = float(data.get("target_gain", 1.0)) if scaling == "input-max-gain" else 1.0

    def enhance_tile(t: np.ndarray) -> np.ndarray:
        scale = max(float(t.max()), 1e-12) if scaling != "none" else 1.0
        with torch.no_grad():
            x = torch.from_numpy(np.ascontiguousarray(t / scale, dtype=np.float32)).to(dev)
            y = net(x[None, None])[0, 0].float().cpu().numpy()
        return np.maximum(y, 0.0) * (scale * gain)

    from .tiling import iter_tiled, tile_starts

    frames = image.data.shape[0]
    per_frame = int(
        np.prod(
            [
                len(tile_starts(n, t, o))
                for n, t, o in zip(image.grid_shape, tile, overlaps, strict=True)
            ]
        )
    )
    out = np.empty(image.data.shape, dtype=np.float32)
    total = frames * per_frame

    def step(p: Progress, first: int) -> Progress:
        return Progress(first + p.done, total, f"{method}: tile {first + p.done}/{total}")

    for f in range(frames):
        tiles = iter_tiled(image.data[f], enhance_tile, tile, overlaps, halo)
        out[f] = yield from remap(tiles, lambda p, first=f * per_frame: step(p, first))
    meta = {
        **dict(image.metadata or {}),
        "model": str(folder),
        "model_card": {
            **{k: card.get(k) for k in ("method", "command", "seed")},
            "data": _card_data(card),
            "network_scale": scaling,
            "target_gain": gain,
        },
        "warnings": warnings,
    }
    return MPIImage(out, image.fov, image.center, metadata=meta)


def _solver(method: str):
    def solve(image, model, device, overlap, allow_mismatch):
        return (yield from iter_enhance_learned(image, method, model, device, overlap,
                                                allow_mismatch))  # fmt: skip

    return solve


_TITLES = {
    "csdnet": ("CSDNet", "CSDNet: a 3D student U-Net distilled from a 2D x-z teacher with "
               "InfoNCE (the paper's method)", "CSDNet (the seeded paper)", 300),
    "unet3d": ("3D U-Net", "3D U-Net baseline", "Ronneberger et al. 2015 (3D)", 310),
    "edsr3d": ("3D EDSR", "3D EDSR baseline", "Lim et al. 2017 (3D)", 320),
    "rcan3d": ("3D RCAN", "3D RCAN baseline (channel attention)", "Zhang et al. 2018 (3D)", 330),
    "rrdb3d": ("3D RRDB", "3D RRDB baseline (ESRGAN's generator without the GAN)",
               "Wang et al. 2018 (3D)", 340),
    "esrgan3d": ("3D ESRGAN", "3D ESRGAN baseline: the RRDB generator fine-tuned with a "
                 "relativistic GAN and discriminator feature matching", "Wang et al. 2018 (3D)",
                 345),
}  # fmt: skip

for _name in LEARNED_METHODS:
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
