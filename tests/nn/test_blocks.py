"""2D and 3D blocks: one U-Net for images and volumes."""

from __future__ import annotations

import pytest
import torch

from napari_mpi.nn.blocks import CBAM, UNet, conv_bn_relu


@pytest.mark.parametrize(
    ("dim", "shape"), [(2, (2, 1, 19, 19)), (2, (1, 3, 8, 13)), (3, (2, 1, 9, 12, 10))]
)
def test_unet_keeps_the_shape_of_any_input(dim, shape):
    torch.manual_seed(0)
    net = UNet(shape[1], 2, (4, 8, 16), dim=dim).eval()
    out = net(torch.rand(shape))
    assert out.shape == (shape[0], 2, *shape[2:])
    convs = [m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d))]
    assert all(isinstance(m, torch.nn.Conv3d if dim == 3 else torch.nn.Conv2d) for m in convs)


def test_3d_blocks_and_bad_input():
    x = torch.rand(1, 4, 6, 7, 8)
    assert conv_bn_relu(4, 5, dim=3)(x).shape == (1, 5, 6, 7, 8)
    assert CBAM(4, dim=3)(x).shape == x.shape
    with pytest.raises(ValueError, match="dim must be 2 or 3"):
        UNet(1, 1, (4,), dim=1)
    with pytest.raises(ValueError, match=r"UNet\(dim=3\)"):
        UNet(1, 1, (4, 8), dim=3)(torch.rand(1, 1, 8, 8))


def test_2d_unet_keeps_the_shipped_layout():
    # the state-dict keys the shipped 2D models were saved with (dim defaults to 2)
    keys = list(UNet(1, 1, (4, 8)).state_dict())
    assert keys[:3] == ["down.0.0.0.weight", "down.0.0.0.bias", "down.0.0.1.weight"]
    assert keys[-2:] == ["out.weight", "out.bias"]


@pytest.mark.parametrize("dim", [2, 3])
def test_fold_batchnorm_keeps_the_outputs(dim):
    from napari_mpi.nn.blocks import fold_batchnorm

    torch.manual_seed(0)
    net = UNet(2, 1, (4, 8), dim=dim)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d | torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.3, 0.3)
            m.running_var.uniform_(0.3, 3.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    with pytest.raises(ValueError, match="eval mode"):
        fold_batchnorm(net)
    net.eval()
    x = torch.randn(3, 2, *([6] * dim))
    with torch.no_grad():
        ref = net(x)
        folded = fold_batchnorm(net)
        out = folded(x)
    norms = (torch.nn.BatchNorm2d, torch.nn.BatchNorm3d)
    assert not any(isinstance(m, norms) for m in folded.modules())
    torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-5)
