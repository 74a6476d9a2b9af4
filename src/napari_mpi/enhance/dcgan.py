"""``dcgan``: DC_GAN's generator G (native -> deblurred x-space image) as a registered
enhancement method, on 2D images and, slice by slice along a chosen axis, on 3D volumes.

A model is a folder with ``model.pt`` (G) and ``card.json`` written by ``napari-mpi train
dcgan``; ``model="default"`` is the shipped one (MNIST digits, the default
:class:`~napari_mpi.simulation.psf_mismatch.XSpaceBlur`, 101 x 101 pixels of 0.198 mm).

Inference, per frame:

1. The image must be finite and hold a 2D image (one axis of one voxel: the other two are the
   slice) or a 3D volume with ``axis`` naming the slicing axis ("z", "y" or "x"; each slice
   is the plane of the other two). A 3D volume without an axis is refused with a message
   saying how to give one.
2. The model must fit: its card's pixel size (the training images') equals the slices'
   pixel size, and the image's ``metadata["xspace_blur"]`` (when it carries one) equals the
   model's training blur (the noise level aside); a difference is an error naming it, unless
   ``allow_mismatch``
   (then recorded in ``metadata["warnings"]``).
3. Every slice is divided by the frame's maximum (one factor per 2D image or 3D volume, so
   slices keep their relative brightness), mapped to [-1, 1], passed through G (fully
   convolutional: any size of at least :data:`MIN_SIDE` pixels), mapped back to [0, 1] and
   multiplied by the frame's maximum times the card's ``data.y_gain`` (how much brighter the
   deblurred training images were than their native images).

Torch is imported when the method runs.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

import numpy as np

from ..image import MPIImage
from ..progress import Progress
from ..recon.learned import DEVICE_PARAM
from ..recon.registry import Method, Param, register

__all__ = ["AXES", "DEFAULT_MODEL", "MIN_SIDE", "iter_dcgan", "load_dcgan", "slice_axis"]

MODELS_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_MODEL = "dcgan_mnist2d"
#: slicing axes of a 3D volume ("auto": the flat axis of a 2D image)
AXES = ("auto", "z", "y", "x")
#: smallest slice side (pixels): the generator downsamples twice and has a 7x7 stem
MIN_SIDE = 16
PIXEL_RTOL = 1e-3

_CACHE: dict[tuple, tuple] = {}


def load_dcgan(model: str | Path = "default", device: str = "auto"):
    """``(generator, card, folder)``; ValueError for a missing folder or another method's."""
    from ..nn.checkpoint import build_model, load_checkpoint, read_card
    from ..nn.dcgan import ResnetGenerator
    from ..nn.training import resolve_device

    if str(model).strip().lower() in ("", "default"):
        folder = MODELS_DIR / DEFAULT_MODEL
        if not (folder / "card.json").is_file():
            raise ValueError(
                f"dcgan: no shipped model in {folder}; train one with `napari-mpi train dcgan "
                "--phantoms FILE.npz -o DIR` and pass model=DIR (CLI --model DIR)"
            )
    else:
        folder = Path(model).expanduser()
        if not folder.is_dir():
            raise ValueError(f"dcgan: model folder {folder} does not exist")
    card = read_card(folder)
    if card.get("method") != "dcgan":
        raise ValueError(
            f"model {folder}: card says method {card.get('method')!r}, not 'dcgan'; pass a "
            "model folder trained with `napari-mpi train dcgan`"
        )
    dev = resolve_device(device)
    weights = folder / "model.pt"
    key = (str(folder.resolve()), weights.stat().st_mtime_ns if weights.exists() else 0, str(dev))
    if key not in _CACHE:
        state, card = load_checkpoint(folder)
        arch = {k: card["architecture"][k] for k in ("width", "blocks")}
        net = build_model(lambda **_: ResnetGenerator(**arch), state, card, folder)
        net = net.float().to(dev).eval()
        _CACHE.clear()
        _CACHE[key] = (net, card)
    net, card = _CACHE[key]
    return net, card, folder


def slice_axis(image: MPIImage, axis: str, method: str = "dcgan") -> int:
    """The grid axis (0 z, 1 y, 2 x) the image is sliced along; ValueError for a volume
    without an axis, an axis that leaves 1D slices, or a slice too small."""
    shape = tuple(int(n) for n in image.grid_shape)
    text = str(axis).strip().lower()
    if text not in AXES:
        raise ValueError(f"{method}: axis must be one of {list(AXES)}, got {axis!r}")
    flat = [a for a, n in enumerate(shape) if n == 1]
    if text == "auto":
        if len(flat) != 1:
            if not flat:
                raise ValueError(
                    f"{method}: a 2D model, and the image is a 3D volume {shape} (z, y, x); "
                    "choose the axis to enhance it slice by slice along: axis='z' (x-y "
                    "slices), 'y' or 'x' (CLI --axis z)"
                )
            raise ValueError(f"{method}: the image {shape} (z, y, x) is not 2D: it has more "
                             "than one axis of one voxel")  # fmt: skip
        index = flat[0]
    else:
        index = "zyx".index(text)
    sides = [n for a, n in enumerate(shape) if a != index]
    if min(sides) < MIN_SIDE:
        raise ValueError(
            f"{method}: slices across axis {'zyx'[index]} of the image {shape} (z, y, x) are "
            f"{sides[0]} x {sides[1]} pixels; the network needs at least {MIN_SIDE} x {MIN_SIDE}"
        )
    return index


def _check_fits(card: dict, image: MPIImage, axis: int, allow_mismatch: bool, folder) -> list:
    from ..simulation.psf_mismatch import XSpaceBlur

    data = card.get("data", {})
    problems = []
    pixel = data.get("pixel_size_m")
    have = [float(image.grid.voxel_size[a]) for a in range(3) if a != axis]
    if pixel is not None and not np.allclose(have, pixel, rtol=PIXEL_RTOL, atol=0):
        problems.append(
            "pixel size: image " + " x ".join(f"{v * 1e3:.3g}" for v in have)
            + f" mm, model {pixel * 1e3:.3g} mm"
        )  # fmt: skip
    blur = image.metadata.get("xspace_blur")
    if isinstance(blur, dict) and isinstance(data.get("blur"), dict):
        # the noise level is not the scan: the model was trained over a range of SNRs
        image_scan = XSpaceBlur.from_dict({**blur, "snr_db": None})
        diffs = image_scan.differences(XSpaceBlur.from_dict({**data["blur"], "snr_db": None}))
        if diffs:
            problems.append("scan (image vs model): " + "; ".join(diffs))
    if problems and not allow_mismatch:
        raise ValueError(
            f"dcgan: model {folder} was trained for other images: " + "; ".join(problems)
            + ". Train a model for these images (napari-mpi train dcgan --blur ...), or pass "
            "allow_mismatch=True (CLI --allow-mismatch) to proceed anyway"
        )  # fmt: skip
    return problems


def iter_dcgan(
    image: MPIImage,
    model: str = "default",
    device: str = "auto",
    axis: str = "auto",
    allow_mismatch: bool = False,
) -> Generator[Progress, None, MPIImage]:
    """Deblur every frame of ``image`` with DC_GAN's generator (module docstring), yielding
    progress per slice.

    Parameters
    ----------
    image : MPIImage
        A 2D image (one axis of one voxel) or a 3D volume (frames, z, y, x), finite.
    model : str or path
        Model folder, or "default" (shipped).
    device : str
        Torch device ("auto": CUDA when available).
    axis : {"auto", "z", "y", "x"}
        Slicing axis of a 3D volume; "auto" for a 2D image.
    allow_mismatch : bool
        Proceed when the pixel size or the scan differs from the model's.

    Returns
    -------
    MPIImage
        On the image's grid; ``metadata`` with the method, model, axis and warnings.
    """
    method = "dcgan"
    if not isinstance(image, MPIImage):
        raise ValueError(f"{method}: expects an MPIImage, got {type(image).__name__}")
    if image.data.size == 0:
        raise ValueError(f"{method}: the image is empty (data shape {image.data.shape})")
    bad = int(np.count_nonzero(~np.isfinite(image.data)))
    if bad:
        raise ValueError(f"{method}: the image has {bad} NaN or infinite voxel(s); replace "
                         "them first")  # fmt: skip
    index = slice_axis(image, axis, method)
    net, card, folder = load_dcgan(model, device)
    warnings = _check_fits(card, image, index, allow_mismatch, folder)
    gain = float(card.get("data", {}).get("y_gain", 1.0))
    dev = next(net.parameters()).device
    data = np.asarray(image.data, dtype=np.float32)
    out = np.zeros(data.shape, dtype=np.float32)
    n_slices = data.shape[1 + index]
    total = data.shape[0] * n_slices
    for f in range(data.shape[0]):
        top = float(np.max(data[f]))
        frame = np.moveaxis(data[f], index, 0)  # (slices, P, Q)
        result = np.zeros(frame.shape, dtype=np.float32)
        if top > 0:
            for s in range(n_slices):
                # one factor per frame: every slice is scaled by the frame's maximum
                x = frame[s][None] / top
                if np.any(x > 0):
                    result[s] = _generate(net, x, dev)[0] * top * gain
                done = f * n_slices + s + 1
                yield Progress(done, total, f"{method}: slice {done}/{total}")
        out[f] = np.moveaxis(result, 0, index)
    meta = {
        **dict(image.metadata or {}),
        "method": method,
        "model": str(folder),
        "model_card": {**{k: card.get(k) for k in ("method", "command", "seed")},
                       "data": card.get("data", {}), "y_gain": gain},
        "axis": "zyx"[index],
        "warnings": warnings,
    }  # fmt: skip
    return MPIImage(out, image.fov, image.center, metadata=meta)


def _generate(net, x: np.ndarray, dev) -> np.ndarray:
    """G on images ``x`` (n, P, Q) already divided by the frame maximum: [0, 1] in, mapped to
    [-1, 1], output back in [0, 1]."""
    import torch

    with torch.no_grad():
        t = torch.from_numpy(np.ascontiguousarray(np.clip(x, 0, None) * 2 - 1,
                                                  dtype=np.float32)).to(dev)  # fmt: skip
        y = net(t[:, None])[:, 0].float().cpu().numpy()
    return np.clip((y + 1) / 2, 0, 1)


def _solve(image, model, device, axis, allow_mismatch):
    return (yield from iter_dcgan(image, model, device, axis, allow_mismatch))


register(
    Method(
        name="dcgan",
        task="enhance",
        kind="learned",
        title="DC_GAN",
        description="DC_GAN: unpaired deblurring of 2D x-space images (dual contrastive GAN); "
        "3D volumes slice by slice along an axis",
        solve=_solve,
        params=(
            Param("model", str, "default", "model folder, or 'default' (shipped: MNIST "
                  "digits, 2 T/m scan with relaxation, 0.198 mm pixels)"),
            DEVICE_PARAM,
            Param("axis", "choice", "auto", "slicing axis of a 3D volume (auto: a 2D image)",
                  choices=AXES),
            Param("allow_mismatch", bool, False,
                  "proceed when the pixel size or scan differs from the model's"),
        ),
        reference="Zhang et al., IJMPI 2023 (DC_GAN)",
        order=350,
        extra={"accepts_2d": True},
    )
)  # fmt: skip
