"""Checkpoints: weights plus a JSON card, loaded without unpickling arbitrary objects.

A model directory holds ``model.pt`` (a plain state dict, read with
``torch.load(..., weights_only=True)``) and ``card.json``: method, architecture parameters,
grid and row count, the fingerprint of the system matrix it was trained for (when it depends on
one), the exact training command, data source, seed and validation metrics. Both files are
written under temporary names and renamed, so an interrupted save leaves the previous
checkpoint intact. Weights may be stored in float16 (``half``; the card then says
``"weights_dtype": "float16"``) to halve the file; loading always returns float32.
"""

from __future__ import annotations

import json
import os
import uuid
from os import PathLike
from pathlib import Path
from typing import Any

from ..system_matrix import SystemMatrix
from .card_checks import require_signature, validate_card, validate_weights

WEIGHTS = "model.pt"
CARD = "card.json"
REQUIRED_CARD_KEYS = ("method", "architecture", "command", "data", "seed", "metrics")


def _atomic_write(path: Path, write) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def save_checkpoint(
    directory: str | PathLike, state_dict: dict, card: dict[str, Any], half: bool = False
) -> Path:
    """Write ``model.pt`` and ``card.json`` into ``directory`` (created if needed); with
    ``half``, floating-point weights are stored as float16."""
    import torch

    missing = [k for k in REQUIRED_CARD_KEYS if k not in card]
    if missing:
        raise ValueError(f"checkpoint card lacks {missing}")
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    weights = {k: v.detach().cpu() for k, v in state_dict.items()}
    if half:
        weights = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
        card = {**card, "weights_dtype": "float16"}
    _atomic_write(folder / WEIGHTS, lambda p: torch.save(weights, p))
    text = json.dumps(card, indent=2, sort_keys=True, default=str)
    _atomic_write(folder / CARD, lambda p: p.write_text(text))
    return folder


def read_card(directory: str | PathLike) -> dict:
    """A model folder's card; ValueError naming the folder when it is missing or not JSON."""
    folder = Path(directory)
    if not (folder / CARD).is_file():
        raise ValueError(f"model {folder}: missing {CARD}")
    try:
        card = json.loads((folder / CARD).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
        raise ValueError(f"model {folder}: {CARD} is not valid JSON ({exc})") from None
    return validate_card(card, folder, REQUIRED_CARD_KEYS)


def load_checkpoint(
    directory: str | PathLike, system_matrix: SystemMatrix | None = None
) -> tuple[dict, dict]:
    """Read a checkpoint; refuse one trained for another system matrix.

    Returns ``(state_dict, card)``. With ``system_matrix``, a card carrying a ``signature``
    (row norms and fixed random projections, compared within 1e-3) or else a ``fingerprint``
    (exact hash) must match it, else ValueError says what differs.
    """
    import torch

    folder = Path(directory)
    weights_path = folder / WEIGHTS
    card = read_card(folder)
    if not weights_path.is_file():
        raise ValueError(f"model {folder}: missing {WEIGHTS}")
    if system_matrix is not None:
        require_signature(card, folder)
        if card.get("signature"):
            same = system_matrix.same_signature(card["signature"])
        else:
            same = card["fingerprint"] == system_matrix.fingerprint()
        if not same:
            raise ValueError(
                f"model {folder} was trained for another system matrix (fingerprint "
                f"{card.get('fingerprint')}, grid {card.get('grid_shape')}, {card.get('rows')} "
                f"rows); this one has fingerprint {system_matrix.fingerprint()}, grid "
                f"{list(system_matrix.grid_shape)}, {system_matrix.num_rows} rows"
            )
    try:
        state = torch.load(weights_path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or unsafe files
        raise ValueError(f"model {folder}: {WEIGHTS} could not be loaded safely ({exc})") from None
    state = validate_weights(state, folder)
    state = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    return state, card


def starting_weights(folder: str | PathLike, methods: tuple[str, ...] | list[str], config: dict,
                     method: str, sizes: str) -> tuple[dict, dict]:  # fmt: skip
    """The weights and card of model folder ``folder`` to start a ``method`` training from.

    ValueError, each naming the folder and the ``init_from`` option: not a model folder; a
    card of a method not in ``methods``; an architecture other than ``config`` (the new
    network's), with ``sizes`` the command-line options that set it.
    """
    try:
        state, card = load_checkpoint(folder)
    except (OSError, ValueError) as exc:
        raise ValueError(f"init_from: {folder}: not a model folder ({exc})") from None
    if card.get("method") not in methods:
        raise ValueError(
            f"init_from: {folder} is a {card.get('method')!r} model; {method} starts from "
            f"a {' or '.join(methods)} model"
        )
    arch = dict(card.get("architecture", {}))
    if arch != config:
        raise ValueError(
            f"init_from: {folder} has architecture {arch}, this run {config}; use the same {sizes}"
        )
    return state, card


def halve_checkpoint(directory: str | PathLike) -> Path:
    """Rewrite a checkpoint with float16 weights (half the file size); the card keeps
    everything and records ``"weights_dtype": "float16"``."""
    state, card = load_checkpoint(directory)
    return save_checkpoint(directory, state, card, half=True)


def build_model(model_class, state: dict, card: dict, folder: str | PathLike, **overrides):
    """Instantiate ``model_class`` from the card's architecture and load ``state`` into it.

    ValueError names the folder when the weights do not fit; the model is in eval mode.
    """
    arch = {k: v for k, v in card["architecture"].items() if k != "class"}
    arch.update(overrides)
    named = card["architecture"].get("class")
    if named is not None and named != model_class.__name__:
        raise ValueError(f"model {folder}: card says class {named!r}, not {model_class.__name__}")
    try:
        model = model_class(**arch)
    except (TypeError, ValueError, RuntimeError, MemoryError, OverflowError) as exc:
        raise ValueError(
            f"model {folder}: field 'architecture' does not build a {model_class.__name__} "
            f"({type(exc).__name__}: {exc})"
        ) from None
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(f"model {folder}: weights do not fit the architecture ({exc})") from None
    model.eval()
    return model
