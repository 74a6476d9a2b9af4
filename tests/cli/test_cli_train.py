"""napari-mpi train ppmpi: a short run writes a loadable model; existing models are kept."""

from __future__ import annotations

import json

import pytest

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


def test_dernet_architecture_flags(tmp_path, capsys):
    from napari_mpi.io import write_mdf
    from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix

    scanner = get_preset("preclinical-2d")
    cal = tmp_path / "cal.mdf"
    write_mdf(cal, simulate_system_matrix(scanner, scanner_grid(scanner, (9, 9))))
    out = tmp_path / "d"
    base = ["train", "dernet", "--calibration", str(cal), "--epochs", "1", "--num-train", "32",
            "--num-val", "8", "-o", str(out), "--quiet"]  # fmt: skip
    for bad, message in [
        (["c7=3"], "KEY one of"),
        (["c1"], "KEY one of"),
        (["c1=two"], "c1 must be int"),
        (["c1=0"], "out of range"),
        (["dropout0=1.5"], "out of range"),
    ]:
        assert main([*base, "--architecture", *bad]) != 0
        assert message in capsys.readouterr().err
        assert not out.exists()
    cascaded = ["train", "cascaded", *base[2:]]
    assert main([*cascaded, "--init", "ridge"]) != 0
    assert "--init applies to dernet only" in capsys.readouterr().err
    assert main([*base, "--snr-range", "30", "20"]) != 0
    assert "snr_range must be (low, high)" in capsys.readouterr().err and not out.exists()
    args = [*base, "--architecture", "c1=3", "c5=32", "--init", "ridge", "--fresh-phantoms"]
    assert main([*args, "--snr-range", "15", "35"]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["architecture"]["c1"] == 3 and card["architecture"]["c5"] == 32
    assert card["data"]["snr_db"] == [15.0, 35.0]
    assert card["training"]["init"] == "ridge" and card["data"]["fresh_phantoms"] is True
    more = tmp_path / "more"
    cont = [*base[:-3], "-o", str(more), "--init-from", str(out), "--lr", "1e-4", "--quiet"]
    assert main(cont) == 0
    card = json.loads((more / "card.json").read_text())
    assert card["initialisation"]["kind"] == "from" and card["training"]["lr"] == 1e-4
    assert card["architecture"]["c1"] == 3 and str(out) in card["initialisation"]["model"]
    assert main([*cont, "--overwrite", "--architecture", "c1=4"]) != 0
    assert "only the dropout rates may change" in capsys.readouterr().err
    assert json.loads((more / "card.json").read_text()) == card  # left as it was
    with pytest.raises(SystemExit):
        main([*cont[:-1], "--lr", "0", "--quiet"])
    assert "--lr: expected a positive number" in capsys.readouterr().err


def test_per_method_help_and_library_defaults(capsys):
    """Options, defaults and help are generated from the methods' configs (one set of
    defaults: --batch 64 for the networks, 32 for the denoiser; cascaded 20 epochs)."""
    import dataclasses

    from napari_mpi.cli.train import method_parser
    from napari_mpi.nn.losses import LOSSES
    from napari_mpi.nn.trainers import get_trainable, options, trainables
    from napari_mpi.recon.training_config import LOSSES as CONFIG_LOSSES

    assert CONFIG_LOSSES == LOSSES
    assert [t.name for t in trainables("reconstruct")] == ["dernet", "cascaded", "admm-net",
                                                           "ppmpi"]  # fmt: skip
    assert [t.name for t in trainables("enhance")] == ["csdnet", "unet3d", "edsr3d", "rcan3d",
                                                       "rrdb3d", "esrgan3d", "dcgan",
                                                       "dccdm", "ddpm3d"]  # fmt: skip
    for name, flag, default in [("dernet", "--epochs", "15"), ("cascaded", "--epochs", "20"),
                                ("dernet", "--batch", "64"), ("ppmpi", "--batch", "32"),
                                ("ppmpi", "--steps", "4000")]:  # fmt: skip
        with pytest.raises(SystemExit):
            main(["train", name, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        assert f"usage: napari-mpi train {name}" in text
        body = text[text.index("options:") :]
        option = body[body.index(f"{flag} ") :]
        assert f"(default: {default})" in option[: option.index(" --", 3)]
    with pytest.raises(SystemExit):
        main(["train", "ppmpi", "--help"])
    denoiser_help = capsys.readouterr().out
    assert "--strategy" not in denoiser_help and "--epochs" not in denoiser_help
    for entry in trainables():  # another method's options are accepted but never shown
        with pytest.raises(SystemExit):
            main(["train", entry.name, "--help"])
        assert "SUPPRESS" not in capsys.readouterr().out, entry.name
    for entry in trainables():  # parsing nothing gives the config's own defaults
        parsed = vars(method_parser(entry).parse_args(["-o", "x"]))
        defaults = entry.config()
        for option in options(entry.config):
            if option.name in parsed:
                assert parsed[option.name] == getattr(defaults, option.name), option.name
    fields = {f.name for f in dataclasses.fields(get_trainable("cascaded").config)}
    assert {"preliminary_weight", "stage1_epochs", "loss", "strategy", "device"} <= fields


def test_bad_weights_and_foreign_options(tmp_path, capsys):
    from napari_mpi.progress import run
    from napari_mpi.recon.cascaded import iter_train_cascaded
    from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix

    out = tmp_path / "m"
    base = ["train", "cascaded", "--calibration", "cal.mdf", "-o", str(out), "--quiet"]
    with pytest.raises(SystemExit):
        main([*base, "--preliminary-weight", "nan"])
    assert "--preliminary-weight: expected a finite number" in capsys.readouterr().err
    assert main(["train", "ppmpi", "--strategy", "stage-wise", "-o", str(out)]) != 0
    assert "--strategy applies to cascaded only" in capsys.readouterr().err
    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (7, 7)))
    with pytest.raises(ValueError, match="preliminary_weight must be a finite number"):
        run(iter_train_cascaded(sm, None, out, preliminary_weight=float("nan")))
    assert not out.exists()


def test_resume_from_the_command_line(tmp_path, capsys):
    out = tmp_path / "den"
    args = ["train", "ppmpi", "--steps", "4", "--batch", "2", "--size", "8", "-o", str(out)]
    assert main([*args, "--quiet"]) == 0
    assert (out / "last.pt").is_file()
    assert main([*args, "--quiet", "--resume"]) == 0  # nothing left to do: the same model
    assert "after 4 steps" in capsys.readouterr().out


def test_a_registered_method_appears_in_the_cli(tmp_path, capsys, monkeypatch):
    import sys
    from pathlib import Path

    import napari_mpi.nn.trainers as trainers

    sys.path.insert(0, str(Path(__file__).parents[1] / "nn"))
    from toy_trainable import TOY, write_volumes

    trainers.trainables()  # the built-in ones first
    monkeypatch.setitem(trainers._REGISTRY, TOY.name, TOY)
    with pytest.raises(SystemExit):
        main(["train", "toy3d", "--help"])
    text = capsys.readouterr().out
    assert "--volumes" in text and "--width" in text and "(default: 3)" in text
    volumes = write_volumes(tmp_path / "v.npz")
    out = tmp_path / "toy"
    assert main(["train", "toy3d", "--volumes", str(volumes), "--epochs", "1", "-o", str(out),
                 "--quiet"]) == 0  # fmt: skip
    card = json.loads((out / "card.json").read_text())
    assert card["method"] == "toy3d" and card["training"]["width"] == 3
    assert "train toy3d" in card["command"]


def test_options_before_the_method_still_work(tmp_path):
    """``train --quiet ppmpi ...`` parsed when train had one flat parser; it still does."""
    out = tmp_path / "den"
    args = ["train", "--quiet", "--steps", "10", "ppmpi", "--batch", "4", "--size", "16"]
    assert main([*args, "-o", str(out)]) == 0
    card = json.loads((out / "card.json").read_text())
    assert card["training"]["steps"] == 10 and "train ppmpi" in card["command"]


def test_phantom_mix_and_continuing_every_signal_network(tmp_path, capsys):
    from napari_mpi.io import write_mdf
    from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix
    from napari_mpi.simulation.phantom_mix import DEFAULT_MIX

    scanner = get_preset("preclinical-2d")
    cal = tmp_path / "cal.mdf"
    write_mdf(cal, simulate_system_matrix(scanner, scanner_grid(scanner, (9, 9))))
    for method in ("cascaded", "admm-net"):
        out, more = tmp_path / f"{method}1", tmp_path / f"{method}2"
        base = ["train", method, "--calibration", str(cal), "--epochs", "1", "--num-train",
                "32", "--num-val", "8", "--quiet"]  # fmt: skip
        # weights below 1 of a kind starting with "c" (cone) are weights, not layer sizes
        mix = ["--phantom-mix", "cone=0.25", "tubes=0.5", "steps=0.25"]
        assert main([*base, *mix, "-o", str(out)]) == 0, capsys.readouterr().err
        card = json.loads((out / "card.json").read_text())
        assert card["data"]["phantom_mix"] == {"cone": 0.25, "tubes": 0.5, "steps": 0.25}
        assert main([*base, "--init-from", str(out), "--lr", "1e-5", "-o", str(more)]) == 0
        cont = json.loads((more / "card.json").read_text())
        assert cont["initialisation"]["kind"] == "from" and cont["rows"] == card["rows"]
        assert cont["architecture"] == card["architecture"]  # sizes and output scale kept
        assert cont["data"]["phantom_mix"] == DEFAULT_MIX  # the mix is not taken from it
    bad = tmp_path / "bad"
    for items, message in [(["tube=1"], "KEY one of"), (["tubes=-1"], "out of range"),
                           (["tubes=0"], "positive sum")]:  # fmt: skip
        assert main([*base, "--phantom-mix", *items, "-o", str(bad)]) != 0
        assert message in capsys.readouterr().err and not bad.exists()
