"""The cascaded reconstruction network (Zhao et al., IJMPI 2026): two modules in series.

Module 1 (:class:`SignalToImage`) maps the measured signal to a preliminary image that holds
the global structure; module 2 (:class:`ImageRefiner`) maps that image to the final one. The
paper gives no layer details; this module chooses, and exposes as parameters:

- module 1: the signal as (real, imaginary) channels divided by its maximum amplitude b_max
  (as DERnet, eq. 9), dropout, one fully connected layer to the N1 x N2 image, started at the
  Tikhonov-regularised inverse of the system matrix (so training begins from a classical
  reconstruction instead of noise), then a small residual convolutional block (no batch
  normalisation, last convolution starting at zero). No ReLU at its end, so every pixel keeps
  a gradient; the preliminary image a reconstruction returns is clipped at zero;
- module 2: a residual U-Net (``widths``, BN+ReLU double convolutions, max-pooling) whose last
  convolution starts at zero, so before training module 2 passes the preliminary image through
  unchanged (stage-wise training starts from exactly module 1's output), then a ReLU (at
  inference; see :class:`ImageRefiner`).

Both outputs are multiplied by ``output_scale`` (the training data's median of
max(image) / b_max), so the network itself works on values of order 1.
"""

from __future__ import annotations

import torch
from torch import nn

from .blocks import UNet


class SignalToImage(nn.Module):
    """Module 1: normalised signal (batch, 2, rows) -> preliminary image (batch, 1, N1, N2).

    Dropout, one fully connected layer from the (real, imaginary) signal to the image (a
    learned reconstruction matrix; :meth:`init_tikhonov` starts it at the Tikhonov-regularised
    inverse of the system matrix), then a residual convolutional block.
    """

    def __init__(
        self, rows: int, grid: tuple[int, int], width: int = 16, dropout: float = 0.05
    ) -> None:
        super().__init__()
        self.grid = tuple(grid)
        self.rows = rows
        self.fc = nn.Sequential(nn.Dropout(dropout), nn.Linear(2 * rows, grid[0] * grid[1]))
        # no batch normalisation here: it would blow the small initial image up to unit scale
        self.refine = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, width, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, 1, 3, padding=1),
        )
        nn.init.zeros_(self.refine[-1].weight)
        nn.init.zeros_(self.refine[-1].bias)

    def init_tikhonov(self, reconstruction: torch.Tensor, output_scale: float) -> None:
        """Start the fully connected layer at ``reconstruction`` (N1 N2, 2 rows), the matrix R
        with image = R [Re u; Im u], divided by ``output_scale``; bias zero."""
        linear = self.fc[1]
        if tuple(reconstruction.shape) != tuple(linear.weight.shape):
            raise ValueError(
                f"init_tikhonov: needs a {tuple(linear.weight.shape)} matrix, "
                f"got {tuple(reconstruction.shape)}"
            )
        with torch.no_grad():
            linear.weight.copy_(reconstruction / output_scale)
            linear.bias.zero_()

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        image = self.fc(signal.flatten(1)).view(-1, 1, *self.grid)
        return image + self.refine(image)


class ImageRefiner(nn.Module):
    """Module 2: image (batch, 1, N1, N2) -> refined image, ReLU(x + UNet(x)).

    The ReLU applies in evaluation mode only: while training, the loss sees x + UNet(x), so a
    pixel pushed below zero keeps its gradient (with the ReLU, early L1+SSIM training drove
    every output pixel below zero and training stalled).
    """

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        self.unet = UNet(1, 1, tuple(widths))
        nn.init.zeros_(self.unet.out.weight)
        nn.init.zeros_(self.unet.out.bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        out = image + self.unet(image)
        return out if self.training else torch.relu(out)


class CascadedNet(nn.Module):
    """Signal -> preliminary image -> refined image, for ``rows`` inputs and ``grid`` = (N1, N2).

    ``forward`` returns ``(preliminary, final)``, each (batch, N1, N2), for a signal already
    divided by b_max; multiply by b_max for physical units (as DERnet, eq. 10).
    """

    def __init__(
        self,
        rows: int,
        grid: tuple[int, int],
        width: int = 16,
        widths: tuple[int, ...] | list[int] = (16, 32, 64),
        dropout: float = 0.05,
        output_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.config = {
            "rows": rows, "grid": list(grid), "width": width,
            "widths": list(widths), "dropout": dropout, "output_scale": output_scale,
        }  # fmt: skip
        self.output_scale = float(output_scale)
        self.module1 = SignalToImage(rows, grid, width, dropout)
        self.module2 = ImageRefiner(tuple(widths))

    def forward(self, signal: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        preliminary = self.module1(signal)
        final = self.module2(preliminary)
        return preliminary[:, 0] * self.output_scale, final[:, 0] * self.output_scale
