"""Checkpoints: weights_only loading, fingerprint checks, atomic saves."""

from __future__ import annotations

import pickle

import pytest
import torch

from napari_mpi.nn.checkpoint import halve_checkpoint, load_checkpoint, save_checkpoint
from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix

CARD = {"method": "test", "architecture": {"c": 2}, "command": "x", "data": "y", "seed": 0,
        "metrics": {}}  # fmt: skip


def _sm(n):
    scanner = get_preset("preclinical-2d")
    return simulate_system_matrix(scanner, scanner_grid(scanner, (n, n)))


def test_round_trip_and_fingerprint(tmp_path):
    sm = _sm(5)
    model = torch.nn.Linear(3, 2)
    card = {**CARD, "fingerprint": sm.fingerprint(), "grid_shape": list(sm.grid_shape)}
    save_checkpoint(tmp_path / "m", model.state_dict(), card)
    state, back = load_checkpoint(tmp_path / "m", sm)
    assert torch.equal(state["weight"], model.weight.detach()) and back["method"] == "test"
    with pytest.raises(ValueError, match="another system matrix"):
        load_checkpoint(tmp_path / "m", _sm(6))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_half_precision_weights_load_as_float32(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(40, 30), torch.nn.BatchNorm1d(30))
    model.eval()
    save_checkpoint(tmp_path / "m", model.state_dict(), CARD)
    full = (tmp_path / "m" / "model.pt").stat().st_size
    halve_checkpoint(tmp_path / "m")
    assert (tmp_path / "m" / "model.pt").stat().st_size < 0.7 * full
    state, card = load_checkpoint(tmp_path / "m")
    assert card["weights_dtype"] == "float16" and card["method"] == "test"
    assert state["0.weight"].dtype == torch.float32
    assert state["1.num_batches_tracked"].dtype == torch.int64  # integers stay as they are
    torch.testing.assert_close(state["0.weight"], model[0].weight.detach(), rtol=1e-3, atol=1e-4)


def test_refuses_pickled_objects(tmp_path):
    save_checkpoint(tmp_path / "m", torch.nn.Linear(2, 2).state_dict(), CARD)

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    with open(tmp_path / "m" / "model.pt", "wb") as fh:
        pickle.dump({"weight": Evil()}, fh)
    with pytest.raises(ValueError, match="could not be loaded safely"):
        load_checkpoint(tmp_path / "m")


def test_card_must_be_complete_and_save_is_atomic(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="lacks"):
        save_checkpoint(tmp_path / "m", {}, {"method": "x"})
    save_checkpoint(tmp_path / "m", torch.nn.Linear(2, 2).state_dict(), CARD)
    before = (tmp_path / "m" / "model.pt").read_bytes()

    def boom(*args, **kwargs):
        raise RuntimeError("interrupted")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(RuntimeError):
        save_checkpoint(tmp_path / "m", torch.nn.Linear(2, 2).state_dict(), CARD)
    assert (tmp_path / "m" / "model.pt").read_bytes() == before
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["card.json", "model.pt"]


def test_signature_tolerates_rounding_but_not_other_matrices(tmp_path):
    import numpy as np

    import napari_mpi as nm
    from napari_mpi.simulation import Particles

    sm = _sm(5)
    card = {**CARD, "fingerprint": sm.fingerprint(), "signature": sm.signature()}
    save_checkpoint(tmp_path / "m", torch.nn.Linear(2, 2).state_dict(), card)
    noise = np.random.default_rng(0).standard_normal(sm.matrix.shape) * 1e-7
    rounded = nm.SystemMatrix(
        sm.matrix + (noise * np.abs(sm.matrix).max()).astype(np.float32),
        sm.channels, sm.frequency_indices, sm.frequencies, sm.grid_shape, sm.fov, sm.center,
    )  # fmt: skip
    assert rounded.fingerprint() != sm.fingerprint()
    load_checkpoint(tmp_path / "m", rounded)  # accepted: same matrix up to rounding
    scanner = get_preset("preclinical-2d")
    other = simulate_system_matrix(
        scanner, scanner_grid(scanner, (5, 5)), Particles(diameter=27e-9)
    )
    with pytest.raises(ValueError, match="another system matrix"):
        load_checkpoint(tmp_path / "m", other)
