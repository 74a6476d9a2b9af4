"""The learned reconstruction methods run their network on the ``device`` they are given."""

from __future__ import annotations

import numpy as np
import pytest

import napari_mpi as nm

LEARNED = ("dernet", "cascaded", "ppmpi", "dip", "admm-net")


@pytest.mark.parametrize("name", LEARNED)
def test_learned_methods_have_a_device_parameter(name):
    method = {m.name: m for m in nm.methods("reconstruct")}[name]
    params = {p.name: p for p in method.params}
    assert params["device"].default == "auto"


def test_cpu_device_gives_the_auto_image(two_points_2d):
    sm, u, _ = two_points_2d
    # the shipped networks read rows of the full calibration; ppmpi takes any rows
    auto = nm.reconstruct(sm, u[:1], method="ppmpi", iterations=3)
    cpu = nm.reconstruct(sm, u[:1], method="ppmpi", iterations=3, device="cpu")
    np.testing.assert_allclose(cpu.data, auto.data, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("name", LEARNED)
def test_unknown_device_is_refused_by_name(two_points_2d, name):
    sm, u, _ = two_points_2d
    with pytest.raises(ValueError, match="device"):
        nm.reconstruct(sm, u[:1], method=name, device="warp-drive")


def test_cuda_without_cuda_is_refused():
    import torch

    from napari_mpi.nn.training import resolve_device

    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
    else:
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
