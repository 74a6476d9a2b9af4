"""The 3D enhancement networks (same grid in and out, size caps, fast CPU convs) and CSDNet's
slice InfoNCE (lower when the student's slice matches the teacher's, gradients, temperature)."""

from __future__ import annotations

import pytest
import torch

from napari_mpi.nn.contrastive import from_slices, slice_infonce, to_slices
from napari_mpi.nn.enhance3d import (
    NETWORKS,
    PARAMETER_CAP,
    FastConv3d,
    Teacher2D,
    count_parameters,
    make_network,
    shuffle3d,
    unshuffle3d,
)

TINY = {
    "unet3d": {"widths": (4, 8)},
    "csdnet": {"widths": (4, 8)},
    "edsr3d": {"features": 8, "blocks": 1},
    "rcan3d": {"features": 8, "groups": 1, "blocks": 1},
    "rrdb3d": {"features": 8, "growth": 4},
    "esrgan3d": {"features": 8, "growth": 4},
}


@pytest.mark.parametrize("name", sorted(NETWORKS))
@pytest.mark.parametrize("size", [32, 48])
def test_same_grid_in_and_out(name, size):
    torch.manual_seed(0)
    net = make_network(name, **TINY[name]).eval()
    x = torch.rand(1, 1, size, size, size)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape and torch.isfinite(y).all()
    odd = torch.rand(2, 1, 9, 11, 10)  # sizes not divisible by the shuffle or the poolings
    with torch.no_grad():
        assert net(odd).shape == odd.shape


@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_default_size_under_cap_and_config_rebuilds(name):
    net = make_network(name)
    n = count_parameters(net)
    assert 10_000 < n <= PARAMETER_CAP
    again = NETWORKS[name](**{k: v for k, v in net.config.items() if k != "class"})
    again.load_state_dict(net.state_dict())
    x = torch.rand(1, 1, 32, 32, 32)
    with torch.no_grad():
        assert net.eval()(x).shape == x.shape
    assert count_parameters(Teacher2D()) <= PARAMETER_CAP


def test_fast_convs_match_torch_and_train_normally():
    torch.manual_seed(0)
    net = make_network("edsr3d", features=8, blocks=1)
    assert any(isinstance(m, FastConv3d) for m in net.modules())
    x = torch.rand(1, 1, 16, 16, 16)
    with torch.no_grad():
        fast = net(x)
    slow = net(x)  # grad enabled: PyTorch's own path
    assert torch.allclose(fast, slow, atol=1e-5)
    slow.sum().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_bad_input_is_named():
    net = make_network("unet3d", widths=(4,))
    with pytest.raises(ValueError, match=r"\(batch, C, D, H, W\)"):
        net(torch.rand(1, 16, 16))
    with pytest.raises(ValueError, match="network must be one of"):
        make_network("srgan")
    with pytest.raises(ValueError, match="shuffle"):
        make_network("edsr3d", shuffle=0)


def test_shuffle_round_trip():
    x = torch.rand(2, 3, 4, 6, 8)
    assert unshuffle3d(x, 2).shape == (2, 24, 2, 3, 4)
    assert torch.equal(shuffle3d(unshuffle3d(x, 2), 2), x)


def test_slices_round_trip_and_are_x_z():
    v = torch.rand(2, 1, 5, 6, 7)  # (B, C, Z, Y, X)
    s = to_slices(v, 3)
    assert s.shape == (12, 1, 5, 7)  # one (z, x) slice per y
    assert torch.equal(s[1, 0], v[0, 0, :, 1, :])
    assert torch.equal(from_slices(s, 2, 3), v)
    with pytest.raises(ValueError, match="slice_axis"):
        to_slices(v, 1)


def _structured(seed: int, shape=(2, 1, 8, 8, 8)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g)


def test_infonce_lower_when_slices_match():
    teacher = _structured(0)
    matched = slice_infonce(teacher, teacher + 0.01 * _structured(1))
    shuffled = slice_infonce(teacher, teacher[:, :, :, torch.randperm(8)])  # wrong positions
    unrelated = slice_infonce(teacher, _structured(2))
    assert matched < unrelated and matched < shuffled
    # equal similarities everywhere: log(number of candidates)
    flat = torch.ones(1, 1, 4, 6, 5)
    assert slice_infonce(flat, flat).item() == pytest.approx(torch.log(torch.tensor(6.0)).item())


def test_infonce_gradients_flow_to_the_student_only():
    teacher = _structured(0)
    student = _structured(3).requires_grad_(True)
    loss = slice_infonce(teacher, student, centre=True)
    loss.backward()
    assert student.grad is not None and student.grad.abs().sum() > 0
    # a step against the gradient lowers the loss
    with torch.no_grad():
        lower = slice_infonce(
            teacher, student - 0.5 * student.grad / student.grad.norm(), centre=True
        )
    assert lower < loss


def test_infonce_temperature_and_negatives():
    teacher = _structured(0)
    student = teacher + 0.05 * _structured(4)
    sharp, soft = (
        slice_infonce(teacher, student, temperature=0.05),
        slice_infonce(teacher, student, temperature=1.0),
    )
    assert sharp < soft  # positives dominate more at low temperature
    g = torch.Generator().manual_seed(0)
    few = slice_infonce(teacher, student, temperature=1.0, num_negatives=2, generator=g)
    assert few < soft  # fewer negatives: an easier task
    for axis in (2, 4):
        assert torch.isfinite(slice_infonce(teacher, student, slice_axis=axis))
    with pytest.raises(ValueError, match="temperature"):
        slice_infonce(teacher, student, temperature=0)
    with pytest.raises(ValueError, match="one shape"):
        slice_infonce(teacher, student[:, :, :4])
