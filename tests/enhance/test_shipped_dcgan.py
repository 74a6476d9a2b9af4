"""The shipped DC_GAN model: its card and files, and that it does what the benchmark says it
does on the two-tube phantom (docs/benchmarks.md): a much higher SSIM and PSNR than nominal-PSF
deconvolution, and it resolves a gap that deconvolution leaves merged."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import napari_mpi as nm
from napari_mpi.enhance.dcgan import DEFAULT_MODEL, MODELS_DIR
from napari_mpi.enhance.tube_resolution import dip_ratio, tube_pair, tube_profile
from napari_mpi.enhance.unpaired import image_grid, scores
from napari_mpi.enhance.xspace_deblur import nominal_deconvolutions
from napari_mpi.simulation.psf_mismatch import XSpaceBlur

FOLDER = MODELS_DIR / DEFAULT_MODEL


def test_the_shipped_model_has_its_card_command_and_small_float16_weights():
    card = json.loads((FOLDER / "card.json").read_text())
    assert card["method"] == "dcgan" and card["task"] == "enhance"
    assert card["command"].startswith("napari-mpi train dcgan --phantoms")
    assert card["data"]["blur"] == XSpaceBlur().to_dict()
    assert (FOLDER / "TRAINING.md").is_file()
    assert (FOLDER / "model.pt").stat().st_size < 2e6
    state = torch.load(FOLDER / "model.pt", weights_only=True)
    assert all(v.dtype == torch.float16 for v in state.values() if v.is_floating_point())


@pytest.fixture(scope="module")
def tubes():
    """Natives of two tubes 1.8 mm apart (3 noise draws at 40 dB), DC_GAN's and nominal RL's
    results."""
    grid, blur = image_grid(), XSpaceBlur()
    phantom = tube_pair(1.8e-3)
    natives = np.stack([blur.native(phantom, grid, np.random.default_rng(k)) for k in range(3)])
    image = nm.MPIImage(natives[:, None], grid.fov, grid.center)
    gan = nm.enhance(image, "dcgan", device="cpu").data[:, 0]
    rl = np.stack([nominal_deconvolutions(n, blur)["richardson-lucy"] for n in natives])
    return phantom, natives, gan, rl


def test_dcgan_beats_nominal_psf_deconvolution_in_ssim_and_psnr_on_two_tubes(tubes):
    phantom, natives, gan, rl = tubes
    gan_ssim = np.mean([scores(g, phantom)["ssim"] for g in gan])
    rl_ssim = np.mean([scores(r, phantom)["ssim"] for r in rl])
    native_psnr = np.mean([scores(n, phantom)["psnr"] for n in natives])
    assert gan_ssim > rl_ssim + 0.25  # benchmark: 0.757 against 0.203
    gan_psnr = np.mean([scores(g, phantom)["psnr"] for g in gan])
    rl_psnr = np.mean([scores(r, phantom)["psnr"] for r in rl])
    assert gan_psnr > native_psnr
    assert gan_psnr > rl_psnr + 2.5  # benchmark: 13.69 against 10.74 dB (these draws: +2.9)


def test_dcgan_separates_a_gap_the_native_image_and_nominal_rl_leave_merged(tubes):
    _, natives, gan, rl = tubes

    def fraction(images):  # of the noise draws that resolve the tubes (dip <= 8/pi^2)
        return np.mean([dip_ratio(tube_profile(x), 1.8e-3)["resolved"] for x in images])

    assert fraction(natives) == 0 and fraction(rl) == 0
    assert fraction(gan) >= 0.5  # the benchmark's rule: resolved in most draws
