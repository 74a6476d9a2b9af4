"""ADMM-Net: ADMM unrolled into a fixed number of stages with learned parameters (after the
Generic-ADMM-Net of Yang et al. 2018, the DERnet paper's baseline (e)).

For measurements b (real-stacked, over the model's rows) and A = [Re S; Im S], stage k of
``stages`` computes

    x_k = (A^T A + rho_k I)^-1 (A^T b + rho_k (z_{k-1} - u_{k-1}))      reconstruction layer
    v_k = x_k + u_{k-1}
    z_k = max(v_k - m_k R_k(v_k / m_k), 0),   m_k = max(v_k)             learned regulariser
    u_k = u_{k-1} + eta_k (x_k - z_k)                                      multiplier update

from z_0 = u_0 = 0, and returns z_K. Learned per stage: the penalty rho_k (in log space,
relative to ||A||_F^2 / N, as the ``admm`` method's rho), the multiplier step eta_k and a
small residual CNN R_k (three 3x3 convolutions, ``features`` channels), which plays the part of
Yang et al.'s learned filters and piecewise-linear shrinkage. R_k's last convolution starts at
zero, so an untrained ADMM-Net is plain ADMM with a non-negativity constraint at penalty
``rho0``; the scaling by m_k makes the regulariser independent of the image's units.

The matrix inverse of every stage comes from one eigendecomposition of A^T A (N x N, computed
when the operator is set, not stored in the weights): (A^T A + rho I)^-1 = V diag(1 / (s + rho))
V^T, which stays differentiable in rho. So the network is tied to one system matrix, like
DERnet, and its state dict holds only the learned parameters (a few kB).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

__all__ = ["ADMMNet"]


class ADMMNet(nn.Module):
    """Unrolled ADMM for one system matrix (call :meth:`set_operator` before use).

    Parameters
    ----------
    rows : int
        Rows of the (selected) system matrix the model reads.
    grid : (int, int)
        Image shape (y, x).
    stages : int
        Unrolled ADMM iterations.
    features : int
        Channels of each stage's regulariser CNN.
    rho0 : float
        Starting penalty of every stage, relative to ||A||_F^2 / N.
    """

    def __init__(
        self,
        rows: int,
        grid: tuple[int, int],
        stages: int = 10,
        features: int = 16,
        rho0: float = 0.05,
    ) -> None:
        super().__init__()
        if stages < 1 or features < 1 or not rho0 > 0:
            raise ValueError(
                f"stages and features must be >= 1 and rho0 > 0, got {stages}, {features}, {rho0}"
            )
        self.config = {"rows": int(rows), "grid": [int(g) for g in grid], "stages": int(stages),
                       "features": int(features), "rho0": float(rho0)}  # fmt: skip
        self.rows, self.grid = int(rows), tuple(int(g) for g in grid)
        self.log_rho = nn.Parameter(torch.full((stages,), math.log(rho0)))
        self.eta = nn.Parameter(torch.ones(stages))
        self.regularisers = nn.ModuleList(self._regulariser(features) for _ in range(stages))
        n = int(np.prod(self.grid))
        self.register_buffer("at", torch.zeros(n, 2 * self.rows), persistent=False)
        self.register_buffer("evecs", torch.zeros(n, n), persistent=False)
        self.register_buffer("evals", torch.zeros(n), persistent=False)
        self.scale = 0.0
        self.operator_fingerprint: str | None = None

    @staticmethod
    def _regulariser(features: int) -> nn.Sequential:
        net = nn.Sequential(
            nn.Conv2d(1, features, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(features, features, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(features, 1, 3, padding=1),
        )
        nn.init.zeros_(net[-1].weight)
        nn.init.zeros_(net[-1].bias)
        return net

    def set_operator(self, matrix: np.ndarray, fingerprint: str | None = None) -> None:
        """Set the system matrix: ``matrix`` complex (rows, voxels), the model's rows."""
        s = np.asarray(matrix)
        n = int(np.prod(self.grid))
        if s.shape != (self.rows, n):
            raise ValueError(
                f"ADMM-Net for {self.rows} rows x {n} voxels got a system matrix of shape {s.shape}"
            )
        a = np.concatenate([s.real, s.imag]).astype(np.float64)  # (2M, N)
        evals, evecs = np.linalg.eigh(a.T @ a)
        dev = self.log_rho.device
        self.at = torch.from_numpy(a.T.astype(np.float32)).to(dev)
        self.evecs = torch.from_numpy(evecs.astype(np.float32)).to(dev)
        self.evals = torch.from_numpy(np.maximum(evals, 0.0).astype(np.float32)).to(dev)
        self.scale = float(np.sum(a**2) / n)
        self.operator_fingerprint = fingerprint

    def rho(self) -> torch.Tensor:
        """The stages' penalties relative to ||A||_F^2 / N, shape (stages,)."""
        return torch.exp(self.log_rho)

    def forward(self, signal: torch.Tensor) -> torch.Tensor:
        """(F, 2, rows) real/imaginary measurements -> (F, y, x) non-negative images (in the
        units of the measurements' voxels: x with A x = b)."""
        if self.scale == 0.0:
            raise RuntimeError("ADMMNet: set_operator(system_matrix) was not called")
        f = signal.shape[0]
        b = torch.cat([signal[:, 0], signal[:, 1]], dim=1)  # [Re; Im], as A's rows
        atb = b @ self.at.T  # (F, N)
        z = torch.zeros_like(atb)
        u = torch.zeros_like(atb)
        rhos = self.rho() * self.scale
        for k, reg in enumerate(self.regularisers):
            rhs = atb + rhos[k] * (z - u)
            x = ((rhs @ self.evecs) / (self.evals + rhos[k])) @ self.evecs.T
            v = x + u
            m = v.amax(dim=1, keepdim=True).clamp_min(1e-12)
            r = reg((v / m).reshape(f, 1, *self.grid)).reshape(f, -1)
            z = torch.relu(v - m * r)
            u = u + self.eta[k] * (x - z)
        return z.reshape(f, *self.grid)
