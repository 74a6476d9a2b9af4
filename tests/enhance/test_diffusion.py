"""The conditional diffusion methods (``dccdm``, ``ddpm3d``): the schedule and the DDIM sampler
(an oracle noise predictor gives back the clean volume), the surrogate degradation and the two
physics losses, config refusals, a tiny training of each (every loss term logged, float16
model, resume = a straight run, cancel keeps the last checkpoint), inference (mean and
uncertainty, seeds, tiling, bad parameters) and the CLI's uncertainty file."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter1d

import napari_mpi as nm
from napari_mpi.enhance.diffusion import iter_enhance_diffusion
from napari_mpi.enhance.diffusion_config import DCCDMConfig, DDPM3DConfig
from napari_mpi.enhance.diffusion_recipe import DiffusionRecipe
from napari_mpi.image import MPIImage
from napari_mpi.nn.checkpoint import read_card
from napari_mpi.nn.diffusion3d import (
    DiffusionUNet3D,
    NoiseSchedule,
    consistency_loss,
    ddim_sample,
    ddim_timesteps,
    degrade,
    fit_surrogate,
    frequency_loss,
    iter_ddim_sample,
    surrogate_degradation,
)
from napari_mpi.nn.training import LAST, iter_train
from napari_mpi.progress import Progress, run

TINY = {"widths": (4, 8), "time_dim": 8, "epochs": 2, "batch": 2, "steps_per_epoch": 3,
        "sample_steps": 3, "val_sample_volumes": 2, "timesteps": 50}  # fmt: skip


@pytest.fixture(scope="module")
def pairs():
    """10 sparse bright-spot volumes (16^3) and their copies blurred along z, with a
    pedestal (as the Langevin PSF's tails) and a little noise."""
    rng = np.random.default_rng(0)
    target = (rng.random((10, 16, 16, 16)) > 0.93).astype(np.float32)
    target = gaussian_filter1d(gaussian_filter1d(target, 0.7, axis=2), 0.7, axis=3)
    target /= target.max(axis=(1, 2, 3), keepdims=True)
    degraded = gaussian_filter1d(target, 2.0, axis=1) + 0.2 * target.mean()
    degraded = (degraded + 0.003 * rng.standard_normal(degraded.shape)).astype(np.float32)
    return (degraded[:8], target[:8]), (degraded[8:], target[8:])


@pytest.fixture(scope="module")
def tiny_model(pairs, tmp_path_factory):
    """A tiny trained dccdm folder."""
    out = tmp_path_factory.mktemp("dccdm")
    train, val = pairs
    run(iter_train(DiffusionRecipe(DCCDMConfig(**TINY), train, val), out, half=True))
    return out


# -- schedule and sampler ----------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["cosine", "linear"])
def test_schedule_decreases_and_q_sample_inverts(kind):
    s = NoiseSchedule(100, kind)
    a = s.alpha_bar
    assert a[0] > 0.99 and a[-1] < 0.05 and bool(torch.all(a[1:] < a[:-1]))
    x0 = torch.rand(2, 1, 4, 4, 4)
    noise = torch.randn_like(x0)
    t = torch.tensor([3, 70])
    xt = s.q_sample(x0, t, noise)
    assert torch.allclose(s.predict_x0(xt, t, noise), x0, atol=1e-4)
    assert float(s.a(torch.tensor([-1]), x0)) == 1.0
    with pytest.raises(ValueError, match="schedule"):
        NoiseSchedule(100, "quadratic")
    with pytest.raises(ValueError, match="steps"):
        NoiseSchedule(1)


def test_ddim_timesteps_are_leading_and_refuse_zero_steps():
    assert ddim_timesteps(1000, 20) == list(range(950, -1, -50))
    assert ddim_timesteps(10, 50) == list(range(9, -1, -1))  # at most T
    with pytest.raises(ValueError, match="steps must be >= 1"):
        ddim_timesteps(1000, 0)


@pytest.mark.parametrize("prediction", ["eps", "v", "x0"])
def test_targets_and_splits_agree(prediction):
    s = NoiseSchedule(100)
    x0, noise = torch.rand(3, 1, 4, 4, 4), torch.randn(3, 1, 4, 4, 4)
    t = torch.tensor([0, 40, 99])
    x_t = s.q_sample(x0, t, noise)
    got_x0, got_eps = s.split(x_t, t, s.target(x0, t, noise, prediction), prediction)
    assert torch.allclose(got_x0, x0, atol=2e-3) and torch.allclose(got_eps, noise, atol=2e-3)
    with pytest.raises(ValueError, match="prediction"):
        s.target(x0, t, noise, "score")


class _Oracle(torch.nn.Module):
    """Outputs the exact noise, v or clean volume of x_t for a known clean volume."""

    def __init__(self, x0: torch.Tensor, schedule: NoiseSchedule, prediction: str) -> None:
        super().__init__()
        self.x0, self.s, self.prediction = x0, schedule, prediction

    def forward(self, x_t, cond, t):
        a = self.s.a(t, x_t)
        noise = (x_t - a.sqrt() * self.x0) / (1 - a).sqrt()
        return self.s.target(self.x0, t, noise, self.prediction)


@pytest.mark.parametrize("eta, prediction", [(0.0, "eps"), (1.0, "eps"), (0.0, "v"),
                                             (1.0, "v"), (0.0, "x0")])  # fmt: skip
def test_ddim_with_an_oracle_gives_back_the_clean_volume(eta, prediction):
    s = NoiseSchedule(200)
    x0 = torch.rand(2, 1, 6, 6, 6)
    gen = torch.Generator().manual_seed(0)
    oracle = _Oracle(x0, s, prediction)
    out = ddim_sample(oracle, torch.zeros_like(x0), s, 7, eta, gen, None, prediction=prediction)
    assert torch.allclose(out, x0, atol=1e-4)
    events = list(iter_ddim_sample(oracle, torch.zeros_like(x0), s, 4, 0.0, gen,
                                   prediction=prediction))  # fmt: skip
    assert [e.done for e in events] == [1, 2, 3, 4] and all(e.total == 4 for e in events)
    with pytest.raises(ValueError, match="eta"):
        ddim_sample(oracle, x0, s, 3, 1.5)


def test_the_network_keeps_any_shape_and_starts_at_zero():
    net = DiffusionUNet3D((4, 8, 8), time_dim=8)
    x = torch.randn(2, 1, 9, 10, 11)
    with torch.no_grad():
        out = net(x, x, torch.tensor([1, 5]))
    assert out.shape == x.shape
    assert float(out.abs().max()) == 0.0  # zero-initialised output layer
    with pytest.raises(ValueError, match="one shape"):
        net(x, x[:, :, :5], torch.tensor(1))


# -- the physics terms -------------------------------------------------------------------------
def test_surrogate_keeps_constants_and_shapes_and_blurs():
    c = torch.full((1, 1, 9, 8, 7), 3.0)
    assert torch.allclose(surrogate_degradation(c, (4.0, 2.0, 2.0)), c, atol=1e-5)
    spike = torch.zeros(1, 1, 16, 16, 16)
    spike[0, 0, 8, 8, 8] = 1.0
    d = surrogate_degradation(spike, 1.5)
    assert (
        d.shape == spike.shape
        and float(d.max()) < 0.1
        and float(d.sum()) == pytest.approx(1.0, rel=0.05)
    )
    with pytest.raises(ValueError, match="sigma"):
        surrogate_degradation(spike, (1.0, 2.0))


def test_fit_surrogate_recovers_gain_and_pedestal():
    y = torch.rand(4, 1, 12, 12, 12) ** 4
    c = degrade(y, 2.5, 0.7, (2.0, 1.0, 1.0))
    gain, pedestal, residual = fit_surrogate(y, c, (2.0, 1.0, 1.0))
    assert gain == pytest.approx(2.5, rel=1e-6) and pedestal == pytest.approx(0.7, rel=1e-5)
    assert residual < 1e-6
    assert float(consistency_loss(y, c, 2.5, 0.7, (2.0, 1.0, 1.0)).max()) < 1e-6
    assert float(consistency_loss(y, c, 2.0, 0.7, (2.0, 1.0, 1.0), "l2").min()) > 0
    with pytest.raises(ValueError, match="norm"):
        consistency_loss(y, c, 1.0, 0.0, 1.0, "l3")


def test_frequency_loss_bands():
    y = torch.rand(2, 1, 16, 16, 16)
    assert float(frequency_loss(y, y, y).max()) < 1e-6
    checker = torch.from_numpy(np.indices((16, 16, 16)).sum(0) % 2 * 1.0).float()[None, None]
    y_hat = y + 0.5 * checker  # the highest frequency plus a mean of 0.25
    base = frequency_loss(y_hat - 0.25, y, y, gamma=0.0)  # the low band sees no checkerboard
    assert float(base.max()) < 1e-5
    high = frequency_loss(y_hat - 0.25, y, y, gamma=1.0)
    assert float(high.min()) > 1e-4
    assert torch.allclose(frequency_loss(y_hat - 0.25, y, y, gamma=0.3), 0.3 * high, atol=1e-5)


# -- configs -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "field, value",
    [("sample_steps", 0), ("eta", 1.5), ("ema", 1.0), ("timesteps", 1), ("clip_max", 0.0),
     ("schedule", "quadratic"), ("lambda_dc", -1.0), ("lambda_freq", -0.1),
     ("dc_sigma", (1.0, 2.0)), ("dc_norm", "l3"), ("physics_weighting", "never"),
     ("freq_low", 0.0), ("widths", ()), ("scale", "none"), ("sample_steps", 2000),
     ("prediction", "score")],
)  # fmt: skip
def test_bad_options_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        dataclasses.replace(DCCDMConfig(), **{field: value}).check()


def test_ddpm_has_no_physics_and_configs_import_without_torch():
    assert DDPM3DConfig().physics() == {"lambda_dc": 0.0, "lambda_freq": 0.0, "dc_operator": "psf",
                                        "freq_low_target": "degraded"}  # fmt: skip
    assert not hasattr(DDPM3DConfig(), "lambda_dc")
    import subprocess
    import sys

    code = ("import sys; import napari_mpi.enhance.diffusion_config, napari_mpi.nn.trainers; "
            "sys.exit('torch' in sys.modules)")  # fmt: skip
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# -- training ----------------------------------------------------------------------------------
@pytest.mark.parametrize("config", [DCCDMConfig, DDPM3DConfig])
def test_tiny_training_logs_every_term_and_writes_a_half_model(config, pairs, tmp_path):
    train, val = pairs
    recipe = DiffusionRecipe(config(**TINY), train, val, data={"source": "test"})
    steps = []
    card = run(iter_train(recipe, tmp_path, half=True), lambda p: steps.append(p.info))
    terms = [i for i in steps if "loss_diffusion" in i]
    assert len(terms) == 6
    for info in terms:
        assert all(np.isfinite(info[k]) for k in ("loss", "loss_dc", "loss_freq"))
        if config is DDPM3DConfig:  # the physics terms are watched, not trained on
            assert info["loss"] == pytest.approx(info["loss_diffusion"])
        else:
            assert info["loss"] > info["loss_diffusion"]
    assert card["method"] == ("dccdm" if config is DCCDMConfig else "ddpm3d")
    assert read_card(tmp_path)["weights_dtype"] == "float16"
    assert card["diffusion"]["timesteps"] == 50 and card["diffusion"]["prediction"] == "v"
    s = card["physics"]["surrogate"]
    assert s["gain"] > 0 and 0 < s["fit_residual"] < 1
    for key in ("val_loss", "val_psnr", "val_dc_residual", "val_diffusion_mse"):
        assert np.isfinite(card["metrics"][key])
    # the EMA network is what is written
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    ema = recipe.modules["ema"].state_dict()
    assert all(torch.allclose(state[k].float(), ema[k].float(), atol=1e-2) for k in state)


def test_resume_continues_as_a_straight_run_and_cancel_keeps_the_checkpoint(pairs, tmp_path):
    train, val = pairs
    straight = run(iter_train(DiffusionRecipe(DCCDMConfig(**TINY), train, val), tmp_path / "a"))
    work = iter_train(DiffusionRecipe(DCCDMConfig(**TINY), train, val), tmp_path / "b")
    for p in work:  # cancel in the second epoch, after the first was written
        if p.info.get("epoch") == 2:
            work.close()
            break
    assert (tmp_path / "b" / LAST).is_file() and (tmp_path / "b" / "model.pt").is_file()
    assert read_card(tmp_path / "b")["training"]["epochs_done"] == 1
    resumed = DiffusionRecipe(DCCDMConfig(**TINY, resume=True), train, val)
    card = run(iter_train(resumed, tmp_path / "b"))
    a, b = straight["history"], card["history"]
    assert len(a) == len(b) == 2
    assert b[-1]["val_loss"] == pytest.approx(a[-1]["val_loss"], rel=1e-4)


# -- inference ---------------------------------------------------------------------------------
def _image(pairs, size: int | None = None) -> MPIImage:
    x = pairs[1][0][0]
    if size is not None:
        x = np.pad(x, [(0, size - n) for n in x.shape], mode="reflect")
    return MPIImage(x, np.array(x.shape) * 1e-3, (0.0, 0.0, 0.0))


def test_samples_give_a_mean_and_an_uncertainty(tiny_model, pairs):
    image = _image(pairs)
    one = nm.enhance(image, "dccdm", model=str(tiny_model), steps=3)
    assert one.metadata["uncertainty"] is None and one.grid_shape == image.grid_shape
    again = nm.enhance(image, "dccdm", model=str(tiny_model), steps=3)
    np.testing.assert_array_equal(one.data, again.data)  # seeded
    other = nm.enhance(image, "dccdm", model=str(tiny_model), steps=3, seed=1)
    assert not np.array_equal(one.data, other.data)
    many = nm.enhance(image, "dccdm", model=str(tiny_model), steps=3, samples=3)
    u = many.metadata["uncertainty"]
    assert isinstance(u, MPIImage) and u.data.shape == many.data.shape
    assert float(u.data.max()) > 0 and float(u.data.min()) >= 0
    assert np.all(many.data >= 0)
    assert len(many.metadata["dc_residual"]) == 1 and np.isfinite(many.metadata["dc_residual"][0])
    assert many.metadata["samples"] == 3


def test_bad_parameters_and_inputs_are_refused(tiny_model, pairs):
    image = _image(pairs)
    for params, match in (({"samples": 0}, "samples"), ({"steps": 0}, "steps"),
                          ({"eta": 2.0}, "eta"), ({"steps": 51}, "steps must be <=")):  # fmt: skip
        with pytest.raises(ValueError, match=match):
            nm.enhance(image, "dccdm", model=str(tiny_model), **params)
    with pytest.raises(ValueError, match="method 'dccdm', not 'ddpm3d'"):
        nm.enhance(image, "ddpm3d", model=str(tiny_model))
    flat = MPIImage(np.ones((1, 16, 16), np.float32), (0, 16e-3, 16e-3), (0, 0, 0))
    with pytest.raises(ValueError):
        nm.enhance(flat, "dccdm", model=str(tiny_model))
    nan = image.data.copy()
    nan[0, 1, 1, 1] = np.nan
    with pytest.raises(ValueError, match=r"NaN|finite"):
        nm.enhance(MPIImage(nan, image.fov, image.center), "dccdm", model=str(tiny_model))


def test_cancelled_sampling_returns_nothing(tiny_model, pairs):
    work = iter_enhance_diffusion(_image(pairs), "dccdm", str(tiny_model), steps=3, samples=2)
    first = next(work)
    assert isinstance(first, Progress) and first.total >= 3
    work.close()
    with pytest.raises(StopIteration):
        next(work)


def test_tiles_share_their_noise_so_seams_stay_within_the_sampling_noise(tiny_model, pairs):
    """A 24^3 volume in 16^3 tiles against one pass of the whole volume (the network is fully
    convolutional): their difference is no larger than that of two seeds untiled."""
    from napari_mpi.enhance.diffusion import load_diffusion
    from napari_mpi.nn.diffusion3d import from_diffusion

    image = _image(pairs, 24)
    tiled = nm.enhance(image, "dccdm", model=str(tiny_model), steps=3).data[0]
    net, card, _ = load_diffusion("dccdm", str(tiny_model), "cpu")
    s = NoiseSchedule(card["diffusion"]["timesteps"], card["diffusion"]["schedule"])
    x = torch.from_numpy(image.data[0])[None, None]
    scale = float(x.max())
    gain = card["data"]["target_gain"]

    def whole(seed):
        noise = torch.randn((1, 1, 24, 24, 24), generator=torch.Generator().manual_seed(seed))
        x0 = ddim_sample(
            net, x / scale, s, 3, 0.0, None, (-2.5, 2.5), noise, card["diffusion"]["prediction"]
        )
        return from_diffusion(x0)[0, 0].clamp(min=0).numpy() * scale * gain

    seam = np.sqrt(np.mean((tiled - whole(0)) ** 2))
    seeds = np.sqrt(np.mean((whole(0) - whole(1)) ** 2))
    assert seam <= seeds


def test_cli_writes_the_uncertainty_file(tiny_model, pairs, tmp_path):
    from napari_mpi.cli import main
    from napari_mpi.io import read_mdf, write_reconstruction

    def read_reconstruction(path):
        with read_mdf(path) as f:
            return f.image()

    src = tmp_path / "in.mdf"
    write_reconstruction(src, _image(pairs))
    out = tmp_path / "out.mdf"
    argv = ["enhance", str(src), "--method", "dccdm", "--model", str(tiny_model),
            "--samples", "2", "--steps", "2", "-o", str(out), "--quiet"]  # fmt: skip
    assert main(argv) == 0
    spread = tmp_path / "out_uncertainty.mdf"
    assert spread.is_file()
    std = read_reconstruction(spread)
    assert std.data.shape == read_reconstruction(out).data.shape and std.data.max() > 0
    before = spread.read_bytes()
    again = [*argv[:-3], "-o", str(tmp_path / "out2.mdf"), "--uncertainty", str(spread), "--quiet"]
    assert main(again) != 0  # exists: refused before anything is computed
    assert spread.read_bytes() == before and not (tmp_path / "out2.mdf").exists()
    assert main([*again, "--overwrite"]) == 0 and spread.read_bytes() != before


def test_init_from_starts_from_a_finished_model_and_refuses_others(tiny_model, pairs, tmp_path):
    train, val = pairs
    recipe = DiffusionRecipe(DCCDMConfig(**TINY, init_from=str(tiny_model)), train, val)
    recipe.device = torch.device("cpu")
    run(recipe.prepare())
    saved = torch.load(tiny_model / "model.pt", weights_only=True)
    for name, value in recipe.modules["ema"].state_dict().items():
        assert torch.allclose(value, saved[name].float()), name
    with pytest.raises(ValueError, match="is a 'dccdm' model; ddpm3d starts from a ddpm3d"):
        r = DiffusionRecipe(DDPM3DConfig(**TINY, init_from=str(tiny_model)), train, val)
        r.device = torch.device("cpu")
        run(r.prepare())
    with pytest.raises(ValueError, match="architecture"):
        r = DiffusionRecipe(DCCDMConfig(**{**TINY, "widths": (4, 4)}, init_from=str(tiny_model)),
                            train, val)  # fmt: skip
        r.device = torch.device("cpu")
        run(r.prepare())
    with pytest.raises(ValueError, match="init_from"):
        r = DiffusionRecipe(DCCDMConfig(**TINY, init_from=str(tmp_path)), train, val)
        r.device = torch.device("cpu")
        run(r.prepare())


def test_psf_blur_is_the_scans_convolution_and_its_consistency_is_minimal_at_the_truth():
    from scipy.signal import fftconvolve

    from napari_mpi.enhance import Degradation
    from napari_mpi.enhance.data import pair_grid
    from napari_mpi.nn.diffusion3d import PSFBlur, consistency_loss, fit_surrogate

    psf = Degradation().psf(pair_grid(12))
    blur = PSFBlur(psf, (12, 12, 12))
    rng = np.random.default_rng(3)
    y = (rng.random((3, 1, 12, 12, 12)) > 0.9).astype(np.float32)
    ref = np.stack([fftconvolve(v[0], psf, mode="same") for v in y])[:, None]
    assert np.allclose(blur(torch.from_numpy(y)).numpy(), ref, atol=1e-6 * ref.max())
    x = torch.from_numpy(3.0 * ref.astype(np.float32))  # the scan of y, gain 3, no noise
    k, p, residual = fit_surrogate(torch.from_numpy(y), x, blur=blur)
    assert k == pytest.approx(3.0, rel=1e-4) and abs(p) < 1e-3 and residual < 1e-4
    truth = consistency_loss(torch.from_numpy(y), x, k, p, blur=blur).mean()
    blurred = torch.from_numpy(gaussian_filter1d(y, 1.5, axis=2))
    assert truth < consistency_loss(blurred, x, k, p, blur=blur).mean()
    with pytest.raises(ValueError, match="made for volumes"):
        blur(torch.zeros(1, 1, 8, 8, 8))
    with pytest.raises(ValueError, match="odd sides"):
        PSFBlur(np.ones((4, 4, 4)), (4, 4, 4))
