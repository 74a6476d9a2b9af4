"""The one training loop: named losses with several optimisers, phases with their own counts,
best and last checkpoints, resume, cancel and Ctrl-C keep what was written, device, seeds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from napari_mpi.nn.checkpoint import load_checkpoint
from napari_mpi.nn.training import LAST, Recipe, Stage, TrainConfig, iter_train, resolve_device
from napari_mpi.progress import run


class TwoPlayers(Recipe):
    """A tiny GAN-shaped recipe: a generator and a critic, two optimisers, a random
    'timestep' per step drawn from the recipe's own generator (as a diffusion model would)."""

    method = "toy-gan"
    score_key = "val_l1"

    def __init__(self, config, fail_at=None, nan=False):
        super().__init__(config)
        self.fail_at, self.nan = fail_at, nan

    def prepare(self):
        self.rngs["data"] = np.random.default_rng(self.config.seed)
        self.modules["model"] = torch.nn.Linear(4, 4).to(self.device)
        self.modules["critic"] = torch.nn.Linear(4, 1).to(self.device)
        self.target = torch.eye(4, device=self.device)
        for i in range(3):
            yield from [_progress(i, 3)]

    def stages(self):
        return [Stage.even("warm-up", 1, 3), Stage.even("adversarial", 3, 4)]

    def optimisers(self, stage):
        gen = torch.optim.Adam(self.modules["model"].parameters(), lr=self.config.lr)
        opts = {"generator": gen}
        if stage.name == "adversarial":
            critic = self.modules["critic"].parameters()
            opts["critic"] = torch.optim.Adam(critic, lr=self.config.lr)
        return opts

    def step(self, stage, epoch, index, optimisers):
        if self.fail_at == (epoch, index):
            raise KeyboardInterrupt
        t = int(self.rngs["data"].integers(1, 10))  # a random "timestep"
        x = torch.from_numpy(self.rngs["data"].random((8, 4), np.float32)).to(self.device)
        gen, critic = self.modules["model"], self.modules["critic"]
        l1 = (gen(x) - x @ self.target).abs().mean() * (1 + 0.01 * t)
        losses = {"loss": float(l1.detach())}
        if "critic" in optimisers:
            fake = gen(x).detach()
            d_loss = (critic(fake) ** 2).mean() + ((critic(x) - 1) ** 2).mean()
            optimisers["critic"].zero_grad()
            d_loss.backward()
            optimisers["critic"].step()
            l1 = l1 + 0.1 * ((critic(gen(x)) - 1) ** 2).mean()
            losses["loss_critic"] = float(d_loss.detach())
        optimisers["generator"].zero_grad()
        l1.backward()
        optimisers["generator"].step()
        return losses

    def validate(self, epoch):
        x = torch.eye(4, device=self.device)
        value = float((self.modules["model"](x) - x).abs().mean())
        return {"val_l1": float("nan") if self.nan and epoch == 2 else value}


def _progress(i, n):
    from napari_mpi.progress import Progress

    return Progress(i + 1, n, "toy samples")


def _all(work):
    events = []
    card = run(work, events.append)
    return card, events


def test_several_optimisers_named_losses_and_phases(tmp_path):
    card, events = _all(iter_train(TwoPlayers(TrainConfig(lr=1e-2, device="cpu")), tmp_path))
    phases = [e.info["phase"] for e in events]
    assert phases[:3] == ["making samples"] * 3
    assert set(phases) == {"making samples", "training", "validating"}
    training = [e for e in events if e.info["phase"] == "training"]
    assert [e.done for e in training] == list(range(1, 16)) and training[0].total == 15
    assert "loss_critic" not in training[0].info and "loss_critic" in training[-1].info
    validating = [e for e in events if e.info["phase"] == "validating" and "val_l1" in e.info]
    assert len(validating) == 4 and all(e.done == e.total == 1 for e in validating)
    best = min(validating, key=lambda e: e.info["val_l1"])
    assert card["training"]["epochs_done"] == best.info["epoch"]
    state, saved = load_checkpoint(tmp_path)
    assert saved["metrics"]["val_l1"] == pytest.approx(best.info["val_l1"])
    assert set(state) == {"weight", "bias"}
    assert (tmp_path / LAST).is_file()


def test_same_seed_same_model_and_resume_continues_exactly(tmp_path):
    config = {"lr": 1e-2, "seed": 4}
    full, _ = _all(iter_train(TwoPlayers(TrainConfig(**config)), tmp_path / "a"))
    again, _ = _all(iter_train(TwoPlayers(TrainConfig(**config)), tmp_path / "b"))
    assert full["history"] == again["history"]
    # the user cancels during epoch 3, then resumes: the run ends as the uninterrupted one
    gen = iter_train(TwoPlayers(TrainConfig(**config)), tmp_path / "c")
    for step in gen:
        if step.info.get("epoch") == 3 and step.info["phase"] == "training":
            break
    gen.close()
    assert json.loads((tmp_path / "c" / "card.json").read_text())["training"]["epochs_done"] <= 2
    resumed, events = _all(iter_train(TwoPlayers(TrainConfig(resume=True, **config)),
                                      tmp_path / "c"))  # fmt: skip
    assert next(e.info["epoch"] for e in events if e.info["phase"] == "training") == 3
    assert resumed["history"] == full["history"]
    a, _ = load_checkpoint(tmp_path / "a")
    c, _ = load_checkpoint(tmp_path / "c")
    assert all(torch.equal(a[k], c[k]) for k in a)
    with pytest.raises(ValueError, match=r"other options \(lr: 0.01, now 0.02\)"):
        run(iter_train(TwoPlayers(TrainConfig(resume=True, lr=2e-2, seed=4)), tmp_path / "c"))
    with pytest.raises(ValueError, match="nothing to resume"):
        run(iter_train(TwoPlayers(TrainConfig(resume=True)), tmp_path / "empty"))


def test_ctrl_c_and_divergence_keep_the_last_good_checkpoint(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        run(iter_train(TwoPlayers(TrainConfig(), fail_at=(3, 1)), tmp_path / "k"))
    card = json.loads((tmp_path / "k" / "card.json").read_text())
    assert card["training"]["epochs_done"] <= 2
    load_checkpoint(tmp_path / "k")  # loadable
    assert not list((tmp_path / "k").glob(".*.tmp"))  # no half-written files
    with pytest.raises(KeyboardInterrupt):
        run(iter_train(TwoPlayers(TrainConfig(), fail_at=(1, 0)), tmp_path / "early"))
    assert not (tmp_path / "early").exists()  # nothing written before the first epoch ends
    with pytest.raises(ValueError, match=r"val_l1 is nan after epoch 2: training diverged"):
        run(iter_train(TwoPlayers(TrainConfig(), nan=True), tmp_path / "n"))
    assert (tmp_path / "n" / "card.json").is_file()  # epoch 1's checkpoint stays


def test_device_and_config_checks():
    assert resolve_device("cpu").type == "cpu"
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="device must be"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            resolve_device("cuda")
    for bad, match in [({"batch": 0}, "batch must be"), ({"lr": float("nan")}, "lr must be")]:
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad).check()


def test_methods_run_on_the_given_device(tmp_path):
    from napari_mpi.recon.denoiser_training import DenoiserRecipe
    from napari_mpi.recon.training_config import DenoiserConfig

    recipe = DenoiserRecipe(DenoiserConfig(steps=2, batch=2, size=8, validate_every=2,
                                           device="cpu"))  # fmt: skip
    card = run(iter_train(recipe, tmp_path))
    assert recipe.device.type == "cpu" and recipe.val_noisy.device.type == "cpu"
    assert next(recipe.modules["model"].parameters()).device.type == "cpu"
    assert card["training"]["steps"] == 2


def test_dernet_resumes_exactly(tmp_path):
    from napari_mpi.recon.dernet import iter_train_dernet
    from napari_mpi.simulation import get_preset, scanner_grid, simulate_system_matrix

    scanner = get_preset("preclinical-2d")
    sm = simulate_system_matrix(scanner, scanner_grid(scanner, (9, 9)))
    opts = {"epochs": 3, "batch": 16, "num_train": 32, "num_val": 8, "architecture": {"c5": 32}}
    full = run(iter_train_dernet(sm, None, tmp_path / "a", **opts))
    gen = iter_train_dernet(sm, None, tmp_path / "b", **opts)
    for step in gen:
        if step.info.get("epoch") == 2 and step.info["phase"] == "training":
            break
    gen.close()
    resumed = run(iter_train_dernet(sm, None, tmp_path / "b", resume=True, **opts))
    assert resumed["history"] == full["history"]
    a, _ = load_checkpoint(tmp_path / "a")
    b, _ = load_checkpoint(tmp_path / "b")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_old_import_paths_keep_working():
    from napari_mpi.recon import learned, signal_training

    assert learned.iter_train_signal_model is signal_training.iter_train_signal_model
    assert learned.Phase is signal_training.Phase and learned.LR_SCHEDULES == ("cosine", "constant")
    with pytest.raises(AttributeError):
        learned.no_such_name  # noqa: B018


def test_the_docstring_example_runs(tmp_path, monkeypatch):
    """The minimal custom recipe in napari_mpi.nn.training's docstring works as written."""
    import textwrap

    import napari_mpi.nn.training as training

    doc = training.__doc__
    code = doc[doc.index("Example: a custom recipe") :].split("::\n", 1)[1]
    code = textwrap.dedent(code.split("\nA GAN returns")[0])
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code, "napari_mpi.nn.training example", "exec"), namespace)
    card = namespace["card"]
    assert card["method"] == "toy-denoiser" and card["training"]["epochs_done"] in (1, 2)
    assert set(card["metrics"]) == {"val_mse", "train_seconds"}
    assert (tmp_path / "toy_model" / "model.pt").is_file()
