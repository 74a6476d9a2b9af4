"""DERnet (Phys. Med. Biol. 2024, section 2.2): end-to-end signal-to-image reconstruction.

Feature-mapping subnetwork: (a) dropout and two 1D convolutions on the (real, imaginary) signal
channels, (b) dropout and one fully connected layer to C2 x N1 x N2 image features, (c) a
multi-scale block (1x1, 3x3, 5x5 with BN+ReLU, concatenated with its input, fused by a 3x3
convolution), CBAM and a conv block; post-processing subnetwork (d): a U-Net with a residual
connection, then CBAM, two convolutions and a final ReLU. The signal is normalised by its maximum
amplitude b_max and the output multiplied by it (eqs 9-10). Our system matrices carry physical
units, so the image/b_max ratio is far from 1; a constant ``output_scale`` (the training data's
median of max(image)/b_max, stored with the model) brings the network's own output to order 1,
which keeps the final ReLU from dying at the start of training.

Where the paper is vague (activations inside the 1D block, U-Net depth and widths) this module
uses a ReLU between the two 1D convolutions and U-Net widths (2 C5/8, C5/4, C5/2, C5) with three
poolings; the paper's hyperparameters are the defaults (C1=8, C2=4, C3=16, C4=8, C5=128,
dropout 0.05). Dropout changes no weight, so a model may be continued with other rates; with a
new draw of training pairs every epoch, rates of 0 fitted the preclinical-2d preset about 1 dB
better (see the shipped model's TRAINING.md).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import CBAM, UNet, conv_bn_relu, fold_batchnorm


class DERnet(nn.Module):
    """DERnet for ``rows`` complex inputs and an image of ``grid`` = (N1, N2) voxels."""

    def __init__(
        self,
        rows: int,
        grid: tuple[int, int],
        c1: int = 8,
        c2: int = 4,
        c3: int = 16,
        c4: int = 8,
        c5: int = 128,
        dropout0: float = 0.05,
        dropout1: float = 0.05,
        output_scale: float = 1.0,
    ) -> None:
        super().__init__()
        self.config = {
            "rows": rows, "grid": list(grid), "c1": c1, "c2": c2, "c3": c3, "c4": c4, "c5": c5,
            "dropout0": dropout0, "dropout1": dropout1, "output_scale": output_scale,
        }  # fmt: skip
        self.output_scale = float(output_scale)
        self.grid = tuple(grid)
        self.c2 = c2
        self.signal = nn.Sequential(
            nn.Dropout(dropout0),
            nn.Conv1d(2, c1, 3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv1d(c1, c1, 3, padding=1),
        )
        self.fc = nn.Sequential(nn.Dropout(dropout1), nn.Linear(c1 * rows, c2 * grid[0] * grid[1]))
        self.branch1 = conv_bn_relu(c2, c3, 1)
        self.branch3 = conv_bn_relu(c2, c3, 3)
        self.branch5 = conv_bn_relu(c2, c3, 5)
        self.merge = nn.Conv2d(c2 + 3 * c3, c3, 3, padding=1)
        self.attention = CBAM(c3)
        self.fuse = nn.Sequential(conv_bn_relu(c3, c4), conv_bn_relu(c4, c4))
        self.unet = UNet(c4, c4, (max(4, c5 // 8), c5 // 4, c5 // 2, c5))
        self.head = nn.Sequential(
            CBAM(c4),
            nn.Conv2d(c4, c4, 3, padding=1),
            nn.Conv2d(c4, 1, 3, padding=1),
            nn.ReLU(),
        )

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        """``signal``: (batch, 2, rows), already divided by b_max. Returns (batch, N1, N2)."""
        u0 = self.signal(signal)
        i1 = self.fc(u0.flatten(1)).view(-1, self.c2, *self.grid)
        i2 = self.merge(torch.cat([i1, self.branch1(i1), self.branch3(i1), self.branch5(i1)], 1))
        i3 = self.fuse(self.attention(i2))
        return self.head(i3 + self.unet(i3))[:, 0] * self.output_scale

    def for_inference(self) -> DERnetInference:
        """A faster copy for inference (eval mode, the same outputs up to rounding): see
        :class:`DERnetInference`."""
        return DERnetInference(self)


class DERnetInference(nn.Module):
    """DERnet rearranged for inference: the second 1D convolution folded into the fully
    connected layer (both are linear, with nothing between them once dropout is off), the
    first one as three small matrix products (PyTorch's Conv1d is slow for 2-8 channels over
    thousands of rows), batch normalisations folded into their convolutions, and the image
    part in the channels-last memory layout. The outputs equal DERnet's in eval mode up to
    float32 rounding (tested); the weights it holds are the same size. Not for training."""

    def __init__(self, net: DERnet) -> None:
        super().__init__()
        net = fold_batchnorm(copy.deepcopy(net).eval())
        self.config, self.grid, self.c2 = dict(net.config), net.grid, net.c2
        self.output_scale = net.output_scale
        conv1, conv2 = net.signal[1], net.signal[3]
        linear = net.fc[1]
        with torch.no_grad():
            c1 = conv1.out_channels
            w = linear.weight.view(linear.out_features, c1, -1)  # (out, c1, rows)
            # sum_o,t' W[o, t'] (conv2 h)[o, t'] = sum_i,t h[i, t] W'[i, t]: a transposed conv
            folded = F.conv_transpose1d(w, conv2.weight, padding=conv2.padding[0])
            bias = linear.bias + (w * conv2.bias.view(1, -1, 1)).sum(dim=(1, 2))
        # plain parameters, not new layers: building one would draw from torch's global RNG
        self.w1 = nn.Parameter(conv1.weight.detach().clone(), requires_grad=False)  # (c1, 2, 3)
        self.b1 = nn.Parameter(conv1.bias.detach().clone(), requires_grad=False)
        self.fc_weight = nn.Parameter(
            folded.reshape(linear.out_features, -1).contiguous(), requires_grad=False
        )
        self.fc_bias = nn.Parameter(bias.detach().clone(), requires_grad=False)
        self.branch1, self.branch3, self.branch5 = net.branch1, net.branch3, net.branch5
        self.merge, self.attention, self.fuse = net.merge, net.attention, net.fuse
        self.unet, self.head = net.unet, net.head
        self.to(memory_format=torch.channels_last)
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        """As :meth:`DERnet.forward`."""
        rows = signal.shape[-1]
        padded = F.pad(signal, (1, 1))
        h = self.b1.view(1, -1, 1).expand(signal.shape[0], -1, rows).clone()
        for k in range(3):
            h += torch.einsum("oi,bit->bot", self.w1[:, :, k], padded[:, :, k : k + rows])
        i1 = F.linear(torch.relu_(h).flatten(1), self.fc_weight, self.fc_bias)
        i1 = i1.view(-1, self.c2, *self.grid)
        i1 = i1.contiguous(memory_format=torch.channels_last)
        i2 = self.merge(torch.cat([i1, self.branch1(i1), self.branch3(i1), self.branch5(i1)], 1))
        i3 = self.fuse(self.attention(i2))
        return self.head(i3 + self.unet(i3))[:, 0] * self.output_scale
