"""Deep image prior (DIP): an untrained network fitted to one measurement through the system
matrix, stopped early (Ulyanov et al. 2018; for MPI Dittmer et al. 2020; the DERnet paper's
baseline (d): Adam, lr 1e-3, 4000 iterations).

For each frame b, a generator network G (:class:`~napari_mpi.nn.dip.DIPNet`) with a fixed
random input z is fitted by Adam to the data term only,

    x = c * softplus(G_theta(z)),   min_theta,c  ||A x - b||^2 / ||b||^2,

with A = [Re S; Im S] the real-stacked system matrix over the selected rows. The network's
structure is the only prior: it reproduces smooth, structured images long before it fits the
noise, so the iteration count is the regulariser (the DERnet paper's "early stopping"). The
softplus keeps the image non-negative; c > 0 is not learned but solved for at every step (the
least-squares scale of the network's current image, c = <A y, b> / ||A y||^2: variable
projection), so the network learns only the image's shape, on O(1) values whatever the units
of the calibration. (With c learned by Adam at lr 1e-3, the scale alone took thousands of
steps to move: 8 validation digits at 30 dB reached 22.9 dB after 1000 steps.)

Choices where the papers are silent, all parameters:

- ``iterations`` (default 4000, the paper's, at its lr 1e-3): on 8 validation digits at 30 dB
  (``preclinical-2d``, 19 x 19, rows with calibration SNR >= 10) the mean PSNR rose from
  22.8 dB at 500 iterations to 26.0 at 2000 and 26.5 at 4000 (ADMM L1+TV: 26.3). The
  benchmark tunes it per SNR on validation digits, like the classical methods' parameters.
  Larger learning rates did not converge faster: at 1e-2 the fit collapsed to a flat image.
- ``smoothing`` (default 0, off): the returned image can be an exponential moving average of
  the iterates; at 0.99 it was 0.1-0.2 dB worse than the last iterate on the same digits
  from 1000 iterations on (it lags the fit).
- ``target_residual`` (default 0, off): a frame also stops when its relative residual
  ||A x - b|| / ||b|| falls to this value (the discrepancy principle: about 10^(-SNR/20) for
  noise at a known SNR over all rows).
- network: ``width`` channels at every one of ``depth`` levels, ``input_channels`` channels of
  uniform noise in [0, 0.1) as z; one seed for the weights and for z, the same for every frame.

Frames are fitted ``batch`` at a time, each with its own weights (the batch is vectorised with
:func:`torch.func.vmap`; the result of a frame does not depend on the batch it was in). The
cost is about ``iterations`` forward and backward passes per frame: DIP is the slowest method
of the registry by far (the DERnet paper's Table 4 reports the same).
"""

from __future__ import annotations

from collections.abc import Generator

import numpy as np

from ..progress import Progress
from ..system_matrix import SystemMatrix
from .learned import DEVICE_PARAM
from .operators import real_rhs, real_stack
from .registry import Method, Param, check_inputs, register

#: progress is reported (and the run can be cancelled) every this many iterations
REPORT_EVERY = 10


def iter_dip(
    sm: SystemMatrix,
    measurements: np.ndarray,
    iterations: int = 4000,
    lr: float = 1e-3,
    width: int = 32,
    depth: int = 3,
    input_channels: int = 8,
    smoothing: float = 0.0,
    target_residual: float = 0.0,
    batch: int = 16,
    seed: int = 0,
    device: str = "auto",
) -> Generator[Progress, None, np.ndarray]:
    """Deep image prior, frame by frame (``batch`` frames vectorised); yields every
    :data:`REPORT_EVERY` iterations; returns (frames, voxels) non-negative images.

    Parameters
    ----------
    sm : SystemMatrix
        Calibration (rows x voxels), the rows already selected.
    measurements : ndarray, shape (frames, rows) or (rows,)
        Complex measurements on the same rows.
    iterations : int
        Adam steps per frame (the early stop).
    lr : float
        Adam's learning rate (the DERnet paper: 1e-3).
    width, depth, input_channels : int
        Size of :class:`~napari_mpi.nn.dip.DIPNet`.
    smoothing : float
        Weight of the running average of the iterates, in [0, 1) (0: the last iterate).
    target_residual : float
        Stop a frame once ||A x - b|| / ||b|| <= this (0: never; run ``iterations``).
    batch : int
        Frames fitted together (memory grows with it).
    seed : int
        Seed of the weights and the noise input.
    device : str
        Torch device ("auto", "cpu", "cuda", ...).
    """
    images, _ = yield from _iter_fit(
        sm, measurements, iterations, lr, width, depth, input_channels, smoothing,
        target_residual, batch, seed, device, (),
    )  # fmt: skip
    return images


def iter_dip_path(
    sm: SystemMatrix, measurements: np.ndarray, record_at: tuple[int, ...], **params
) -> Generator[Progress, None, dict[int, np.ndarray]]:
    """The images of one DIP run after each iteration count of ``record_at`` (the early
    stops a tuning compares, for the cost of the longest): {iterations: (frames, voxels)}.
    ``params`` are :func:`iter_dip`'s (``iterations`` is max(record_at));
    ``target_residual`` does not apply."""
    counts = sorted({int(k) for k in record_at})
    if not counts or counts[0] < 1:
        raise ValueError(f"record_at must hold iteration counts >= 1, got {record_at!r}")
    checked = METHOD.check_params({**params, "iterations": counts[-1], "target_residual": 0.0})
    _, recorded = yield from _iter_fit(sm, measurements, **checked, record_at=tuple(counts))
    return recorded


def _iter_fit(
    sm: SystemMatrix,
    measurements: np.ndarray,
    iterations: int,
    lr: float,
    width: int,
    depth: int,
    input_channels: int,
    smoothing: float,
    target_residual: float,
    batch: int,
    seed: int,
    device: str,
    record_at: tuple[int, ...],
) -> Generator[Progress, None, tuple[np.ndarray, dict[int, np.ndarray]]]:
    """The fit behind :func:`iter_dip`: (images (frames, voxels), {count: images} at the
    iteration counts of ``record_at``)."""
    import torch
    from torch.func import functional_call, vmap

    from ..nn.dip import DIPNet
    from ..nn.training import resolve_device

    u = check_inputs(sm, measurements)
    dev = resolve_device(device)
    shape = tuple(int(s) for s in sm.grid_shape)  # (z, y, x)
    spatial = shape[1:] if shape[0] == 1 else shape
    dims = len(spatial)
    a_np = real_stack(sm.matrix, np.float32)
    b_np = real_rhs(u, np.float32)  # (2M, F)
    num_frames, n = u.shape[0], a_np.shape[1]
    norms = np.sum(b_np.astype(np.float64) ** 2, axis=0)
    a = torch.from_numpy(a_np).to(dev)
    # the least positive scale: 1e-6 of a flat image's least-squares scale (at exactly 0 the
    # gradient would vanish and the image stay 0)
    ones = a_np.astype(np.float64).sum(axis=1)
    floors = 1e-6 * np.abs(ones @ b_np.astype(np.float64)) / max(float(ones @ ones), 1e-30)
    floors = np.maximum(floors, 1e-30)
    result = np.zeros((num_frames, n), dtype=np.float32)
    recorded = {int(k): np.zeros((num_frames, n), dtype=np.float32) for k in record_at}

    gen = torch.Generator().manual_seed(int(seed))
    torch_state = torch.random.get_rng_state()
    torch.manual_seed(int(seed))
    try:
        base = DIPNet(dims, int(input_channels), int(width), int(depth)).to(dev)
    finally:
        torch.random.set_rng_state(torch_state)
    z = (0.1 * torch.rand((1, int(input_channels), *spatial), generator=gen)).to(dev)
    initial = {k: v.detach() for k, v in base.named_parameters()}

    def forward(params: dict) -> torch.Tensor:
        return functional_call(base, params, (z,))

    live = [f for f in range(num_frames) if norms[f] > 0]  # b = 0: the image is 0
    total = len(live) * int(iterations)
    done_iters = 0
    yield Progress(0, total, "deep image prior")
    for start in range(0, len(live), int(batch)):
        frames = live[start : start + int(batch)]
        nb = len(frames)
        params = {
            k: v.unsqueeze(0).repeat(nb, *([1] * v.ndim)).clone().requires_grad_(True)
            for k, v in initial.items()
        }
        b = torch.from_numpy(b_np[:, frames].T.copy()).to(dev)  # (nb, 2M)
        inv_norm = torch.from_numpy((1.0 / norms[frames]).astype(np.float32)).to(dev)
        floor = torch.from_numpy(floors[frames].astype(np.float32)).to(dev)
        opt = torch.optim.Adam(list(params.values()), lr=float(lr))
        average = None
        stopped = np.zeros(nb, dtype=bool)
        kept = np.zeros((nb, n), dtype=np.float32)
        for it in range(int(iterations)):
            opt.zero_grad(set_to_none=True)
            out = vmap(forward)(params).reshape(nb, n)
            shape_ = torch.nn.functional.softplus(out)
            projected = shape_ @ a.T
            # variable projection: the best scale of this shape, in closed form
            c = (projected * b).sum(dim=1) / (projected**2).sum(dim=1).clamp_min(1e-30)
            c = torch.maximum(c, floor)[:, None]  # > 0: a zero scale would end the fit
            x = c * shape_
            per_frame = ((c * projected - b) ** 2).sum(dim=1) * inv_norm
            per_frame.sum().backward()
            opt.step()
            with torch.no_grad():
                current = x.detach()
                if smoothing > 0:
                    average = (
                        current.clone()
                        if average is None
                        else smoothing * average + (1 - smoothing) * current
                    )
                else:
                    average = current
            if it + 1 in recorded:
                recorded[it + 1][frames] = np.maximum(average.cpu().numpy(), 0.0)
            if target_residual > 0:
                rel = np.sqrt(per_frame.detach().cpu().numpy())
                newly = (~stopped) & (rel <= target_residual)
                if newly.any():
                    kept[newly] = average.cpu().numpy()[newly]
                    stopped |= newly
            if (it + 1) % REPORT_EVERY == 0 or it + 1 == int(iterations) or stopped.all():
                yield Progress(
                    done_iters + (it + 1) * nb, total, f"deep image prior: frames {start + 1}-"
                    f"{start + nb} of {len(live)}, iteration {it + 1}"
                )  # fmt: skip
            if stopped.all():
                break
        final = average.cpu().numpy()
        final[stopped] = kept[stopped]
        result[frames] = final
        done_iters += nb * int(iterations)
    yield Progress(total, total, "deep image prior")
    return np.maximum(result, 0.0), recorded


METHOD = register(
    Method(
        name="dip",
        title="Deep image prior (untrained network, early-stopped)",
        description="An untrained encoder-decoder fitted to each frame through the system "
        "matrix; the iteration count regularises. Slow: about `iterations` network passes "
        "per frame.",
        params=(
            Param("iterations", int, 4000, "Adam steps per frame (the early stop)", 1, 100000),
            Param("lr", float, 1e-3, "Adam learning rate (DERnet paper: 1e-3)", 1e-7, 1.0),
            Param("width", int, 32, "network channels per level", 1, 512),
            Param("depth", int, 3, "network levels (2x down-sampling between)", 1, 6),
            Param("input_channels", int, 8, "channels of the fixed noise input", 1, 256),
            Param(
                "smoothing",
                float,
                0.0,
                "running-average weight of the iterates (0: last)",
                0.0,
                0.9999,
            ),
            Param(
                "target_residual",
                float,
                0.0,
                "stop a frame at ||Ax-b||/||b|| <= this (0: off)",
                0.0,
                1.0,
            ),
            Param("batch", int, 16, "frames fitted together", 1, 4096),
            Param("seed", int, 0, "seed of the weights and the noise input", 0, 2**31 - 1),
            DEVICE_PARAM,
        ),
        solve=iter_dip,
        kind="learned",
        reference="Ulyanov et al. 2018; Dittmer et al. 2020; DERnet paper baseline (d)",
        order=45,
    )
)
