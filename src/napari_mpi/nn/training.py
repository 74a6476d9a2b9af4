"""One training loop for every learned method (reconstruction and enhancement alike).

A method brings a :class:`Recipe`: it makes its samples and networks (:meth:`Recipe.prepare`),
says how training is divided (:meth:`Recipe.stages`: named stretches of epochs, each with its own
optimisers, e.g. "module 1" then "module 2"), makes one optimisation step that returns named
losses (:meth:`Recipe.step`, free to use several optimisers: a GAN's generator and
discriminator, or to draw a random diffusion timestep), validates (:meth:`Recipe.validate`) and
writes its card (:meth:`Recipe.card`). The loop (:func:`iter_train`) does the rest, the same way
for everybody:

- a deterministic seed (``torch.manual_seed(config.seed)`` before :meth:`Recipe.prepare`; the
  recipe's own numpy generators live in :attr:`Recipe.rngs` so they can be saved);
- ``config.device`` ("auto": CUDA when available, else the CPU; or "cpu", "cuda", "cuda:1",
  "mps") resolved once into :attr:`Recipe.device`, where the recipe makes every tensor;
- progress events (:class:`~napari_mpi.progress.Progress`) whose ``info["phase"]`` is
  "making samples", "training" or "validating", with that phase's own ``done`` / ``total``;
- validation after every epoch; the checkpoint with the lowest ``Recipe.score_key`` is written
  as the model (``model.pt`` + ``card.json``), and after every epoch the whole training state
  (weights, optimisers, schedulers, torch and numpy random states, history) goes to
  ``last.pt``; both are written under temporary names and renamed, so a cancelled, interrupted
  (Ctrl-C) or killed run leaves the last good files;
- ``config.resume``: continue from ``last.pt`` in the output folder with exactly the state it
  had (the next epoch runs as it would have without the interruption);
- cancel at any ``yield``: closing the generator stops the run and keeps what was written.

Example: a custom recipe (a denoiser trained on random images, two losses logged)::

    import numpy as np, torch
    from napari_mpi.nn.training import Recipe, Stage, TrainConfig, iter_train
    from napari_mpi.progress import run

    class Denoise(Recipe):
        method = "toy-denoiser"
        score_key = "val_mse"

        def prepare(self):
            self.rngs["data"] = np.random.default_rng(self.config.seed)
            self.modules["model"] = torch.nn.Conv2d(1, 1, 3, padding=1).to(self.device)
            self.val = torch.rand(8, 1, 16, 16, device=self.device)
            yield from ()  # nothing slow to report

        def stages(self):
            return [Stage.even("denoise", self.config.epochs, steps_per_epoch=10)]

        def optimisers(self, stage):
            return {"model": torch.optim.Adam(self.modules["model"].parameters(), self.config.lr)}

        def step(self, stage, epoch, index, optimisers):
            clean = torch.from_numpy(self.rngs["data"].random((4, 1, 16, 16), np.float32))
            clean = clean.to(self.device)
            out = self.modules["model"](clean + 0.1 * torch.randn_like(clean))
            mse, l1 = ((out - clean) ** 2).mean(), (out - clean).abs().mean()
            optimisers["model"].zero_grad()
            mse.backward()
            optimisers["model"].step()
            return {"loss": mse.item(), "l1": l1.item()}   # "loss" is the one plotted

        def validate(self, epoch):
            with torch.no_grad():
                noisy = self.val + 0.1 * torch.randn_like(self.val)
                return {"val_mse": float(((self.modules["model"](noisy) - self.val) ** 2).mean())}

    card = run(iter_train(Denoise(TrainConfig(epochs=2)), "toy_model"))

A GAN returns e.g. ``{"loss": g_loss, "loss_d": d_loss}`` from one step that updates
``optimisers["generator"]`` and ``optimisers["discriminator"]``; a diffusion recipe draws its
timestep from ``self.rngs`` (or torch's seeded generator) inside :meth:`Recipe.step`.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Generator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..progress import Progress

#: phases of a training run, in ``Progress.info["phase"]``
PHASES = ("making samples", "training", "validating")
#: the whole training state after the latest epoch (resume from it)
LAST = "last.pt"
#: learning-rate schedules understood by :func:`cosine_schedule`
LR_SCHEDULES = ("cosine", "constant")


@dataclass
class TrainConfig:
    """Hyperparameters every training shares; a method's config subclasses it and adds its own
    fields (with their defaults and a ``help`` in the field's metadata, from which the CLI and
    the Training widget are generated).

    Attributes
    ----------
    epochs : int
        Passes over the training data (or validation intervals, for step-based recipes).
    batch : int
        Samples per optimisation step.
    lr : float
        Adam's (starting) learning rate.
    seed : int
        Seeds torch and the recipe's numpy generators: the same seed gives the same model.
    device : str
        "auto" (CUDA when available, else CPU), "cpu", "cuda", "cuda:N" or "mps".
    resume : bool
        Continue the run whose ``last.pt`` is in the output folder.
    command : str or None
        Recorded in the card (None: this process's command line).
    """

    epochs: int = field(default=20, metadata={"help": "training epochs", "min": 1})
    batch: int = field(default=64, metadata={"help": "samples per optimisation step", "min": 1})
    lr: float = field(
        default=1e-3,
        metadata={"help": "Adam's (starting) learning rate (the papers' 1e-3)",
                  "label": "learning rate", "min": 1e-6, "max": 1.0, "step": 1e-6},
    )  # fmt: skip
    seed: int = field(default=0, metadata={"help": "random seed (same seed, same model)"})
    device: str = field(
        default="auto", metadata={"help": "auto (CUDA if available), cpu, cuda, cuda:N or mps"}
    )
    resume: bool = field(
        default=False,
        metadata={"help": "continue the run saved in the output folder (last.pt)",
                  "label": "resume the run in the model folder"},
    )  # fmt: skip
    command: str | None = field(
        default=None, metadata={"help": "recorded in the card", "hidden": True}
    )

    def check(self) -> None:
        """ValueError naming the first field out of range."""
        for name, low in (("epochs", 0), ("batch", 1)):
            value = getattr(self, name)
            if not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")

    def as_dict(self) -> dict:
        """The fields as a JSON-friendly dict (tuples as lists)."""
        return json.loads(json.dumps(asdict(self), default=str))


def resolve_device(device: str = "auto"):
    """A ``torch.device`` for ``device``; ValueError when it is not available here."""
    import torch

    text = str(device or "auto").strip().lower()
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except RuntimeError:
        raise ValueError(f"device must be auto, cpu, cuda, cuda:N or mps, got {device!r}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available on this machine")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {device!r}: MPS is not available on this machine")
    return dev


@dataclass
class Stage:
    """A stretch of training with its own optimisers (e.g. one module while the other is frozen).

    Attributes
    ----------
    name : str
        Shown in progress messages and recorded as ``info["stage"]``.
    epoch_steps : tuple of int
        Optimisation steps in each of its epochs (validation follows every epoch).
    """

    name: str
    epoch_steps: tuple[int, ...]

    @classmethod
    def even(cls, name: str, epochs: int, steps_per_epoch: int) -> Stage:
        """``epochs`` epochs of ``steps_per_epoch`` steps."""
        return cls(name, (int(steps_per_epoch),) * int(epochs))

    @classmethod
    def steps(cls, name: str, steps: int, validate_every: int) -> Stage:
        """``steps`` steps, validated every ``validate_every`` steps and after the last."""
        n, every = int(steps), max(1, int(validate_every))
        return cls(name, tuple(min(every, n - s) for s in range(0, n, every)))

    @property
    def epochs(self) -> int:
        return len(self.epoch_steps)


class Recipe:
    """How one method trains on :func:`iter_train` (see the module docstring for an example).

    Subclasses set :attr:`method` and :attr:`score_key` and implement :meth:`prepare`,
    :meth:`stages`, :meth:`optimisers`, :meth:`step` and :meth:`validate`; :meth:`card`,
    :meth:`schedulers`, :meth:`begin_epoch` and :meth:`state_dict` have defaults.

    Attributes
    ----------
    config : TrainConfig
        The hyperparameters.
    device : torch.device
        Where every tensor is made (set by the loop before :meth:`prepare`).
    modules : dict of str to torch.nn.Module
        The networks; all are saved in ``last.pt``, :meth:`state_dict` is the model written.
    rngs : dict of str to numpy.random.Generator
        The recipe's random streams (saved and restored on resume).
    """

    method: str = "model"
    #: the validation value that picks the checkpoint kept (lower is better)
    score_key: str = "val_loss"

    def __init__(self, config: TrainConfig) -> None:
        self.config = config
        self.device = None
        self.modules: dict[str, Any] = {}
        self.rngs: dict[str, np.random.Generator] = {}

    # -- what a method implements ------------------------------------------------------------
    def prepare(self) -> Generator[Progress, None, None]:
        """Make samples and networks (in :attr:`modules`), yielding progress."""
        raise NotImplementedError

    def stages(self) -> list[Stage]:
        """How training is divided; called once after :meth:`prepare`."""
        raise NotImplementedError

    def optimisers(self, stage: Stage) -> dict[str, Any]:
        """The optimisers of ``stage`` by name (also where a stage freezes parameters)."""
        raise NotImplementedError

    def schedulers(self, stage: Stage, optimisers: dict[str, Any]) -> list:
        """Learning-rate schedulers stepped after every optimisation step (default: none)."""
        return []

    def begin_epoch(self, stage: Stage, epoch: int) -> Generator[Progress, None, None] | None:
        """Called before the steps of ``epoch`` (1-based over the whole run): fresh data,
        train / eval modes. Default: every module in training mode. May be a generator: its
        progress (e.g. new samples for this epoch) is passed on as "making samples"."""
        for module in self.modules.values():
            module.train()

    def step(self, stage: Stage, epoch: int, index: int, optimisers: dict) -> dict[str, float]:
        """One optimisation step (``index`` 0-based within the epoch); returns named losses,
        ``"loss"`` being the one plotted."""
        raise NotImplementedError

    def validate(self, epoch: int) -> dict[str, float]:
        """Validation metrics after ``epoch``; must contain :attr:`score_key`."""
        raise NotImplementedError

    def message(self, stage: Stage, epoch: int, total_epochs: int, losses: dict) -> str:
        """One progress line for a training step."""
        return f"{stage.name}, epoch {epoch}/{total_epochs}, loss {losses['loss']:.3g}"

    def state_dict(self) -> dict:
        """The weights written as ``model.pt`` (default: the module named "model")."""
        return self.modules["model"].state_dict()

    def card(self, record: dict, history: list[dict], step: int, seconds: float) -> dict:
        """The card of the checkpoint after the validation ``record``."""
        import shlex
        import sys

        command = self.config.command
        return {
            "method": self.method,
            "architecture": dict(getattr(self.modules.get("model"), "config", {})),
            "command": shlex.join(sys.argv) if command is None else command,
            "data": {},
            "seed": self.config.seed,
            "training": {**self.config.as_dict(), "epochs_done": record["epoch"], "steps": step},
            "metrics": {**{k: v for k, v in record.items() if k not in ("epoch", "stage")},
                        "train_seconds": seconds},
            "history": list(history),
        }  # fmt: skip

    def extra_state(self) -> dict:
        """JSON-friendly state besides modules, optimisers and rngs, saved in ``last.pt``."""
        return {}

    def load_extra_state(self, state: dict) -> None:
        """Restore :meth:`extra_state`."""


def update_moving_average(average, model, decay: float, updates: int) -> None:
    """One step of the weights' exponential moving average: average <- d average + (1 - d)
    model, with d = min(``decay``, (1 + updates) / (10 + updates)) so that the average forgets
    its random start over the first steps (``updates``: the steps done, this one included).
    Buffers (e.g. batch-norm statistics) are copied. Both modules must share one
    architecture."""
    import torch

    d = min(float(decay), (1 + updates) / (10 + updates))
    with torch.no_grad():
        for pa, p in zip(average.parameters(), model.parameters(), strict=True):
            pa.mul_(d).add_(p.detach(), alpha=1 - d)
        for ba, b in zip(average.buffers(), model.buffers(), strict=True):
            ba.copy_(b)


class MovingAverageMixin:
    """For a :class:`Recipe` that validates and writes a moving average of
    ``modules["model"]``'s weights, kept as ``modules["ema"]`` (saved in ``last.pt`` with the
    other modules). Call :meth:`start_moving_average` in ``prepare`` and
    :meth:`step_moving_average` after each optimisation step; :attr:`updates` (the steps done,
    the warm-up's clock) is saved as the extra state. Put it before :class:`Recipe` in the
    bases."""

    #: optimisation steps done
    updates: int = 0

    def start_moving_average(self, decay: float) -> None:
        """Add ``modules["ema"]``, a frozen copy of ``modules["model"]``, when ``decay`` > 0."""
        import copy

        if decay > 0:
            average = copy.deepcopy(self.modules["model"])
            average.requires_grad_(False)
            self.modules["ema"] = average

    def step_moving_average(self, decay: float) -> None:
        """Count one step and move the average towards the model (:func:`update_moving_average`)."""
        self.updates += 1
        average = self.modules.get("ema")
        if average is not None:
            update_moving_average(average, self.modules["model"], decay, self.updates)

    def network(self):
        """The network validated and written: the moving average, else the raw weights."""
        return self.modules.get("ema", self.modules["model"])

    def state_dict(self) -> dict:
        return self.network().state_dict()

    def extra_state(self) -> dict:
        return {"updates": self.updates}

    def load_extra_state(self, state: dict) -> None:
        self.updates = int(state.get("updates", 0))


def cosine_schedule(optimiser, schedule: str, steps: int, lr: float) -> list:
    """[CosineAnnealingLR from ``lr`` to lr / 100 over ``steps``] for "cosine", [] for
    "constant" (or when there are no steps)."""
    import torch

    if schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")
    if schedule == "constant" or steps <= 0:
        return []
    return [torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=steps, eta_min=lr / 100)]


def _atomic_torch_save(obj, path: Path) -> None:
    import torch

    from .checkpoint import _atomic_write

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    _atomic_write(path, lambda p: p.write_bytes(buffer.getvalue()))


def iter_train(
    recipe: Recipe, output: str | Path, half: bool = False
) -> Generator[Progress, None, dict]:
    """Train ``recipe`` into the folder ``output``, yielding progress; returns the best card.

    See the module docstring. ``half`` stores the best model's weights in float16. The card
    returned is that of the best checkpoint ({} when no epoch was validated). Closing the
    generator (Cancel) or an exception (Ctrl-C) keeps ``model.pt`` / ``card.json`` (best) and
    ``last.pt`` as last written; nothing is written before the first epoch ends.
    """
    import torch

    from .checkpoint import save_checkpoint

    config = recipe.config
    config.check()
    out = Path(output)
    resume = None
    if config.resume:
        if not (out / LAST).is_file():
            raise ValueError(f"resume: {out} holds no {LAST} (nothing to resume)")
        try:
            resume = torch.load(out / LAST, map_location="cpu", weights_only=True)
        except Exception as exc:  # torch raises several types for corrupt files
            raise ValueError(f"resume: {out / LAST} could not be loaded safely ({exc})") from None
        if resume.get("method") != recipe.method:
            raise ValueError(
                f"resume: {out / LAST} is a {resume.get('method')!r} run, not {recipe.method!r}"
            )
    recipe.device = resolve_device(config.device)
    torch.manual_seed(config.seed)
    for step in recipe.prepare():
        yield Progress(step.done, step.total, step.message,
                       {**step.info, "phase": "making samples"})  # fmt: skip
    stages = recipe.stages()
    total_epochs = sum(s.epochs for s in stages)
    total_steps = sum(sum(s.epoch_steps) for s in stages)
    best, card, history = float("inf"), {}, []
    step = epoch = 0
    seconds = 0.0
    if resume is not None:
        saved = json.loads(resume["json"])
        ignored = ("resume", "command", "device")
        now = {k: v for k, v in config.as_dict().items() if k not in ignored}
        then = {k: v for k, v in saved.get("config", {}).items() if k not in ignored}
        changed = sorted(k for k in now.keys() | then.keys() if now.get(k) != then.get(k))
        if changed:
            raise ValueError(
                f"resume: {out / LAST} was trained with other options ("
                + ", ".join(f"{k}: {then.get(k)!r}, now {now.get(k)!r}" for k in changed)
                + "); resume with the same options"
            )
        for name, module in recipe.modules.items():
            module.load_state_dict(resume["modules"][name])
        for name, state in saved["rngs"].items():
            recipe.rngs[name].bit_generator.state = state
        recipe.load_extra_state(saved["extra"])
        torch.set_rng_state(resume["torch_rng"])
        if resume.get("cuda_rng") is not None and recipe.device.type == "cuda":
            torch.cuda.set_rng_state(resume["cuda_rng"], recipe.device)
        best, card, history = saved["best"], saved["card"], saved["history"]
        step, epoch, seconds = saved["step"], saved["epoch"], saved["seconds"]
    t0 = time.perf_counter() - seconds
    first = 0
    for stage in stages:
        first, last = first + stage.epochs, first
        if first <= epoch:  # stage done before the run was resumed
            continue
        optimisers = recipe.optimisers(stage)
        schedulers = recipe.schedulers(stage, optimisers)
        if resume is not None and last < epoch:  # resumed inside this stage
            for name, opt in optimisers.items():
                opt.load_state_dict(resume["optimisers"][name])
            for sched, state in zip(schedulers, resume["schedulers"], strict=True):
                sched.load_state_dict(state)
        for n_steps in stage.epoch_steps[epoch - last :]:
            epoch += 1
            begun = recipe.begin_epoch(stage, epoch)
            for p in begun if begun is not None else ():
                yield Progress(p.done, p.total, p.message,
                               {**p.info, "phase": "making samples", "epoch": epoch})  # fmt: skip
            for i in range(n_steps):
                losses = recipe.step(stage, epoch, i, optimisers)
                for sched in schedulers:
                    sched.step()
                step += 1
                info = {"phase": "training", "stage": stage.name, "epoch": epoch,
                        "step": step, **losses}  # fmt: skip
                yield Progress(step, total_steps, recipe.message(stage, epoch, total_epochs,
                                                                 losses), info)  # fmt: skip
            yield Progress(0, 1, f"{stage.name}, epoch {epoch}/{total_epochs}: validating",
                           {"phase": "validating", "stage": stage.name, "epoch": epoch,
                            "step": step})  # fmt: skip
            for module in recipe.modules.values():
                module.eval()
            with torch.no_grad():
                metrics = recipe.validate(epoch)
            score = float(metrics[recipe.score_key])
            if not np.isfinite(score):
                kept = f"the best checkpoint in {out} is kept" if card else "nothing was written"
                raise ValueError(
                    f"{recipe.method}: validation {recipe.score_key} is {score} after epoch "
                    f"{epoch}: training diverged (check the learning rate and the loss "
                    f"weights); {kept}"
                )
            record = {"epoch": epoch, "stage": stage.name, **metrics}
            history.append(record)
            improved = score < best
            if improved:
                best = score
                card = recipe.card(record, history, step, time.perf_counter() - t0)
                save_checkpoint(out, recipe.state_dict(), card, half=half)
            state = {
                "best": best, "card": card, "history": history, "step": step, "epoch": epoch,
                "seconds": time.perf_counter() - t0, "extra": recipe.extra_state(),
                "rngs": {k: g.bit_generator.state for k, g in recipe.rngs.items()},
                "config": config.as_dict(),
            }  # fmt: skip
            out.mkdir(parents=True, exist_ok=True)
            _atomic_torch_save(
                {
                    "method": recipe.method,
                    "json": json.dumps(state, default=_jsonable),
                    "modules": {k: m.state_dict() for k, m in recipe.modules.items()},
                    "optimisers": {k: o.state_dict() for k, o in optimisers.items()},
                    "schedulers": [s.state_dict() for s in schedulers],
                    "torch_rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state(recipe.device)
                    if recipe.device.type == "cuda"
                    else None,
                },
                out / LAST,
            )
            yield Progress(1, 1, _validation_message(stage, epoch, total_epochs, metrics),
                           {**record, "phase": "validating", "step": step,
                            "best": improved or score == best})  # fmt: skip
    return card


def _jsonable(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _validation_message(stage: Stage, epoch: int, total: int, metrics: dict) -> str:
    shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
    return f"{stage.name}, epoch {epoch}/{total}: {shown}"
