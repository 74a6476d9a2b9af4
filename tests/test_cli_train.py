"""napari-mpi train ppmpi: a short run writes a loadable model; existing models are kept."""

from __future__ import annotations

import json

from napari_mpi.cli import main
from napari_mpi.recon.ppmpi import load_denoiser


def test_train_writes_a_model(tmp_path, capsys):
    out = tmp_path / "den"
    args = ["train", "ppmpi", "--steps", "20", "--batch", "4", "--size", "16", "-o", str(out)]
    assert main([*args, "--quiet"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["steps"] == 20 and "train ppmpi" in card["command"]
    assert load_denoiser(out) is not None
    assert main([*args, "--quiet"]) != 0  # would replace the model
    assert "--overwrite" in capsys.readouterr().err


def test_only_trainable_methods(tmp_path, capsys):
    assert main(["train", "kaczmarz", "-o", str(tmp_path / "x"), "--quiet"]) != 0
    assert "cannot be trained" in capsys.readouterr().err
