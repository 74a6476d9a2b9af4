"""One SSIM: the differentiable loss SSIM is the reported metric's definition (2D and 3D).

Mutation check (done once by hand with a throwaway edit, then reverted): the SSIM constant
K1 = 0.01 -> 0.3 in ``napari_mpi/nn/losses.py`` makes all five cases of
``test_loss_ssim_is_the_metric`` fail (the loss is compared with an independent
scikit-image call on low-mean, phantom-like images, where C1 matters).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from napari_mpi import metrics
from napari_mpi.nn.losses import make_loss, ssim


def _pairs(shape: tuple[int, ...], n: int = 4, seed: int = 0):
    """Sparse non-negative images (phantom-like, low mean) and noisy, blurred estimates."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    truth = np.zeros((n, *shape))
    for i in range(n):
        blobs = np.zeros(shape)
        idx = tuple(rng.integers(0, s, size=6) for s in shape)
        blobs[idx] = rng.uniform(0.5, 1.0, size=6)
        truth[i] = gaussian_filter(blobs, 1.5)
        truth[i] /= truth[i].max()
    estimate = gaussian_filter(truth, (0, *([1.0] * len(shape))))
    estimate = estimate + rng.normal(0, 0.05, truth.shape)
    return estimate, truth


@pytest.mark.parametrize("shape", [(19, 19), (24, 31), (5, 9), (16, 16, 16), (9, 12, 10)])
def test_loss_ssim_is_the_metric(shape):
    est, truth = _pairs(shape)
    got = ssim(torch.from_numpy(est), torch.from_numpy(truth)).numpy()
    for i in range(len(est)):
        win = min(7, *[s if s % 2 else s - 1 for s in shape])
        data_range = truth[i].max() - truth[i].min()
        expected = structural_similarity(est[i], truth[i], data_range=data_range, win_size=win)
        assert metrics.ssim(est[i], truth[i]) == pytest.approx(expected, abs=1e-12)
        assert abs(got[i] - expected) < 1e-3, (shape, i, got[i], expected)
    # float32, as in training, agrees as well
    got32 = ssim(torch.from_numpy(est).float(), torch.from_numpy(truth).float()).numpy()
    np.testing.assert_allclose(got32, got, atol=1e-3)


def test_loss_ssim_basics_and_gradient():
    est, truth = _pairs((16, 16, 16), n=2)
    t = torch.from_numpy(truth).float()
    assert torch.allclose(ssim(t, t), torch.ones(2))
    x = torch.from_numpy(est).float().requires_grad_(True)
    make_loss("l1+ssim")(x, t).backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="too small"):
        ssim(torch.zeros(1, 2, 5), torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match=r"\(batch, H, W\)"):
        ssim(torch.zeros(4, 4), torch.zeros(4, 4))
