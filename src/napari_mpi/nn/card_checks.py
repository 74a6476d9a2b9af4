"""Validation of model cards and weights: one clear ValueError naming the field.

A tampered or truncated ``card.json`` (a JSON list or null, a string signature, missing keys,
unknown or absurd architecture values) or ``model.pt`` (NaN/Inf weights, not a state dict)
must not escape as AttributeError, KeyError, TypeError or RuntimeError from deep inside torch,
and must not load a model that returns NaN images. Used by :mod:`napari_mpi.nn.checkpoint`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

#: Largest integer an architecture field may hold (widths, layer counts, grid sizes, rows).
MAX_ARCH_INT = 2**20
#: Largest grid side of a model (voxels).
MAX_GRID = 4096


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _int_list(value: Any, length: int | None = None) -> bool:
    return (
        isinstance(value, list)
        and (length is None or len(value) == length)
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    )


def _check_architecture(arch: Any, where: str) -> None:
    if not isinstance(arch, dict):
        raise ValueError(f"{where}: field 'architecture' must be a JSON object, found {arch!r:.60}")
    for key, value in arch.items():
        field = f"architecture.{key}"
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, str | bool) or item is None:
                continue
            if not _number(item):
                raise ValueError(
                    f"{where}: field '{field}' must hold finite numbers, got {value!r:.60}"
                )
            if isinstance(item, int) and not 0 <= item <= MAX_ARCH_INT:
                raise ValueError(
                    f"{where}: field '{field}' = {item} is out of range (0..{MAX_ARCH_INT})"
                )
    grid = arch.get("grid")
    if grid is not None and (not _int_list(grid) or not all(1 <= g <= MAX_GRID for g in grid)):
        raise ValueError(
            f"{where}: field 'architecture.grid' must be a list of sizes 1..{MAX_GRID}, got "
            f"{grid!r:.60}"
        )


def validate_card(card: Any, folder: str | Path, required: tuple[str, ...]) -> dict:
    """Return ``card`` if it is a well-formed model card, else ValueError naming the field.

    Parameters
    ----------
    card : object
        What ``json.loads`` returned for ``card.json``.
    folder : str or Path
        The model folder (named in the message).
    required : tuple of str
        Keys every card must have.
    """
    where = f"model {folder}: card.json"
    if not isinstance(card, dict):
        raise ValueError(f"{where} must hold a JSON object, found {type(card).__name__}")
    missing = [k for k in required if k not in card]
    if missing:
        raise ValueError(f"{where} lacks the field(s) {missing}")
    if not isinstance(card["method"], str) or not card["method"]:
        raise ValueError(f"{where}: field 'method' must be a name, got {card['method']!r:.60}")
    _check_architecture(card["architecture"], where)
    signature = card.get("signature")
    if signature is not None:
        keys = ("grid_shape", "fov", "center", "projection_real", "projection_imag")
        if not isinstance(signature, dict) or any(k not in signature for k in keys):
            raise ValueError(
                f"{where}: field 'signature' must be an object with {list(keys)}, got "
                f"{signature!r:.60}"
            )
        for key in keys:
            value = signature[key]
            if not isinstance(value, list) or not all(_number(v) for v in value):
                raise ValueError(f"{where}: field 'signature.{key}' must be a list of numbers")
    fingerprint = card.get("fingerprint")
    if fingerprint is not None and not isinstance(fingerprint, str):
        raise ValueError(f"{where}: field 'fingerprint' must be text, got {fingerprint!r:.60}")
    if "row_keys" in card:
        rows = card["row_keys"]
        if not isinstance(rows, list) or not rows or not all(_int_list(r, 3) for r in rows):
            raise ValueError(
                f"{where}: field 'row_keys' must be a non-empty list of [period, channel, "
                "frequency index] triples"
            )
        if any(v < 0 for r in rows for v in r):
            raise ValueError(f"{where}: field 'row_keys' holds negative indices")
        if "grid" not in card["architecture"]:
            raise ValueError(f"{where}: field 'architecture.grid' is missing")
    dtype = card.get("weights_dtype", "float32")
    if dtype not in ("float16", "float32"):
        raise ValueError(
            f"{where}: field 'weights_dtype' must be float16 or float32, got {dtype!r}"
        )
    return card


def require_signature(card: dict, folder: str | Path) -> None:
    """A model that depends on a system matrix must say which (signature or fingerprint)."""
    if not card.get("signature") and not card.get("fingerprint"):
        raise ValueError(
            f"model {folder}: card.json has neither 'signature' nor 'fingerprint', so it cannot "
            "be checked against the system matrix; refusing to use it (retrain or restore the "
            "card)"
        )


def validate_weights(state: Any, folder: str | Path) -> dict:
    """Return ``state`` if it is a state dict of finite tensors, else ValueError naming one."""
    import torch

    where = f"model {folder}: model.pt"
    if not isinstance(state, dict) or not state:
        raise ValueError(f"{where} must hold a non-empty state dict, found {type(state).__name__}")
    for name, tensor in state.items():
        if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
            raise ValueError(f"{where}: entry {name!r:.60} is not a named tensor")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise ValueError(f"{where}: weights '{name}' contain NaN or infinite values")
    return state
