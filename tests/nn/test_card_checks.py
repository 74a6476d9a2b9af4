"""Tampered model cards and weights: one clear ValueError naming the field, never a traceback
from deep inside torch, never a model that returns NaN images."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from napari_mpi.nn.checkpoint import build_model, load_checkpoint, read_card, save_checkpoint
from napari_mpi.nn.dernet import DERnet
from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix

MODELS = Path(__file__).resolve().parents[2] / "src" / "napari_mpi" / "models"


@pytest.fixture
def dernet_copy(tmp_path):
    folder = tmp_path / "dernet"
    shutil.copytree(MODELS / "dernet_preclinical2d", folder)
    return folder


def _card(folder):
    return json.loads((folder / "card.json").read_text())


def _write(folder, card):
    (folder / "card.json").write_text(json.dumps(card))


def _tamper(folder, edit):
    card = _card(folder)
    card = edit(card)
    _write(folder, card)
    return folder


def _small_sm():
    scanner = get_preset("preclinical-2d")
    return simulate_system_matrix(scanner, scanner_grid(scanner, (3, 3)))


def _del(key):
    def edit(card):
        del card[key]
        return card

    return edit


def _set(path, value):
    def edit(card):
        target = card
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return card

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda c: [c], "must hold a JSON object, found list"),
        (lambda c: None, "must hold a JSON object, found NoneType"),
        (_del("architecture"), r"lacks the field\(s\) \['architecture'\]"),
        (_del("metrics"), "metrics"),
        (_set(("method",), 3), "field 'method'"),
        (_set(("signature",), "abc"), "field 'signature'"),
        (_set(("signature", "fov"), ["x"]), "signature.fov"),
        (_set(("fingerprint",), 12), "field 'fingerprint'"),
        (_set(("architecture",), []), "field 'architecture'"),
        (_set(("architecture", "c5"), 10**12), r"architecture.c5' = 1000000000000 is out"),
        (_set(("architecture", "dropout0"), float("nan")), "architecture.dropout0"),
        (_set(("architecture", "grid"), [19, -1]), "architecture.grid"),
        (_set(("row_keys",), [[0, 1]]), "row_keys"),
        (_set(("weights_dtype",), "int4"), "weights_dtype"),
    ],
)
def test_malformed_cards_are_one_clear_error(dernet_copy, edit, message):
    _tamper(dernet_copy, edit)
    with pytest.raises(ValueError, match=message) as info:
        load_checkpoint(dernet_copy)
    assert str(dernet_copy) in str(info.value)


def test_not_json_and_unknown_architecture_keys(dernet_copy):
    (dernet_copy / "card.json").write_bytes(b"\xff\xfe{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_card(dernet_copy)
    shutil.copy(MODELS / "dernet_preclinical2d" / "card.json", dernet_copy / "card.json")
    _tamper(dernet_copy, _set(("architecture", "bogus_width"), 4))
    state, card = load_checkpoint(dernet_copy)
    with pytest.raises(ValueError, match="field 'architecture' does not build a DERnet"):
        build_model(DERnet, state, card, dernet_copy)
    _tamper(dernet_copy, _set(("architecture", "class"), "CascadedNet"))
    with pytest.raises(ValueError, match="class 'CascadedNet', not DERnet"):
        build_model(
            DERnet, state, card | {"architecture": _card(dernet_copy)["architecture"]}, dernet_copy
        )


def test_card_without_signature_is_refused_where_a_system_matrix_matters(dernet_copy):
    def strip(card):
        card.pop("signature")
        card.pop("fingerprint")
        return card

    _tamper(dernet_copy, strip)
    with pytest.raises(ValueError, match="neither 'signature' nor 'fingerprint'"):
        load_checkpoint(dernet_copy, _small_sm())
    load_checkpoint(dernet_copy)  # without a system matrix (a denoiser) it is fine


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(tmp_path, bad):
    model = torch.nn.Linear(3, 2)
    with torch.no_grad():
        model.weight[0, 1] = bad
    card = {
        "method": "t",
        "architecture": {},
        "command": "x",
        "data": "y",
        "seed": 0,
        "metrics": {},
    }
    save_checkpoint(tmp_path / "m", model.state_dict(), card)
    with pytest.raises(ValueError, match="weights 'weight' contain NaN or infinite"):
        load_checkpoint(tmp_path / "m")


def test_weights_that_are_not_a_state_dict(tmp_path):
    card = {
        "method": "t",
        "architecture": {},
        "command": "x",
        "data": "y",
        "seed": 0,
        "metrics": {},
    }
    save_checkpoint(tmp_path / "m", {"w": torch.ones(2)}, card)
    torch.save([torch.ones(2)], tmp_path / "m" / "model.pt")
    with pytest.raises(ValueError, match="state dict"):
        load_checkpoint(tmp_path / "m")


def test_shipped_models_pass():
    for name in ("dernet_preclinical2d", "cascaded_preclinical2d", "ppmpi_denoiser"):
        state, card = load_checkpoint(MODELS / name)
        assert state and card["method"]
