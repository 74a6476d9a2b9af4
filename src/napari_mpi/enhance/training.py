"""Training a 3D enhancement network end to end: pairs from a volume file (or procedural
vessel trees), degraded with the config's scan, then the method's recipe on the one loop.

``napari-mpi train METHOD --volumes FILE.npz [--degradation ...] -o MODEL_DIR`` (METHOD:
unet3d, edsr3d, rcan3d, rrdb3d, csdnet, dccdm or ddpm3d) and the Training widget call
:func:`iter_train_enhancer`. The pairs of the file's stored ``train`` split train the
network and those of its ``val`` split pick the checkpoint; the ``test`` split is never
read (:func:`napari_mpi.enhance.data.load_split` reads one split's array only). Torch is
imported by the recipe, not here.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path

from ..progress import Progress, remap
from .data import (
    PROCEDURAL_COUNTS,
    PairSet,
    check_training_split,
    iter_pairs,
    load_split,
    pair_set,
)
from .degradation import Degradation
from .diffusion_config import DIFFUSION_CONFIGS
from .recipe_configs import CONFIGS, VolumeConfig

__all__ = ["iter_make_pairs", "iter_train_enhancer", "summary"]


def iter_make_pairs(
    source: str | Path | None,
    split: str,
    degradation: Degradation,
    seed: int = 0,
    count: int | None = None,
) -> Generator[Progress, None, PairSet]:
    """:func:`~napari_mpi.enhance.data.make_pairs` (32^3 at 1 mm) of a training or validation
    split, yielding progress every 16 pairs; the test split is refused."""
    check_training_split(split)
    available = PROCEDURAL_COUNTS[split] if source is None else len(load_split(source, split))
    total = available if count is None else int(count)
    if not 1 <= total <= available:
        raise ValueError(
            f"{split}: asked for {total} pairs, the {split} split of "
            f"{source or 'procedural phantoms'} has {available}"
        )
    items = []
    for k, item in enumerate(iter_pairs(source, split, degradation, seed, total), start=1):
        items.append(item)
        if k == 1 or k % 16 == 0 or k == total:
            yield Progress(k, total, f"making {split} pairs: {k}/{total}", {"split": split})
    return pair_set(items, source, split, degradation, seed)


def iter_train_enhancer(
    method: str, config: VolumeConfig, output: str | Path, volumes: str | Path | None = None
) -> Generator[Progress, None, dict]:
    """Make the training and validation pairs, then train ``method`` into ``output``.

    Parameters
    ----------
    method : str
        ``unet3d``, ``edsr3d``, ``rcan3d``, ``rrdb3d``, ``csdnet``, ``ddpm3d`` or ``dccdm``
        (or another key of ``CONFIGS``).
    config : VolumeConfig
        The method's config (:data:`~napari_mpi.enhance.recipe_configs.CONFIGS`); its
        ``degradation``, ``train_volumes``, ``val_volumes`` and ``seed`` choose the pairs.
    output : path
        Model folder (``model.pt``, ``card.json``, ``last.pt``).
    volumes : path or None
        A MedMNIST-style ``.npz`` of phantoms (VesselMNIST3D: ``train_images`` and
        ``val_images``); None: procedural vessel trees.

    Returns
    -------
    dict
        The card of the best checkpoint (lowest validation loss).
    """
    from ..nn.training import iter_train
    from .recipes import make_recipe

    known = {**CONFIGS, **DIFFUSION_CONFIGS}
    if method not in known:
        raise ValueError(f"train: enhancement method must be one of {sorted(known)}")
    config.check()
    if volumes is not None:
        path = Path(volumes)
        if not path.is_file():
            raise ValueError(f"train {method}: --volumes {path}: no such file")
        if path.suffix.lower() != ".npz":
            raise ValueError(f"train {method}: --volumes {path}: expected an .npz of volumes")
    degradation = Degradation.parse(config.degradation)
    sets = {}
    for split, count in (("train", config.train_volumes), ("val", config.val_volumes)):
        work = iter_make_pairs(volumes, split, degradation, config.seed, int(count) or None)
        sets[split] = yield from remap(
            work, lambda p: Progress(p.done, p.total, p.message,
                                     {**p.info, "phase": "making samples"})
        )  # fmt: skip
    if method in DIFFUSION_CONFIGS:
        from .diffusion_recipe import DiffusionRecipe

        if not isinstance(config, DIFFUSION_CONFIGS[method]):
            raise ValueError(f"{method}: needs a {DIFFUSION_CONFIGS[method].__name__}")
        recipe = DiffusionRecipe(config, train=sets["train"], val=sets["val"])
    else:
        recipe = make_recipe(method, config, train=sets["train"], val=sets["val"])
    return (yield from iter_train(recipe, output, half=bool(getattr(recipe, "half", False))))


def summary(card: dict) -> str:
    """One line about a finished enhancement card (``napari-mpi train`` prints it)."""
    m = card["metrics"]
    t = card.get("training", {})
    gain = f" (degraded input {m['val_input_psnr']:.2f} dB)" if "val_input_psnr" in m else ""
    return (
        f"{card['method']}, best validation PSNR {m.get('val_psnr', float('nan')):.2f} dB{gain} "
        f"after {t.get('steps', '?')} steps, {m.get('train_seconds', 0):.0f} s"
    )
