"""The registry of trainable methods: one entry per method that ``napari-mpi train`` offers.

An entry (:class:`Trainable`) names the method, its task ("reconstruct" or "enhance"), its
config dataclass (a :class:`~napari_mpi.nn.training.TrainConfig` whose fields carry every
hyperparameter with its default and help), the inputs it needs and the function that starts
its training generator. The CLI subcommands and options (``napari-mpi train METHOD --help``),
the Training widget's method choices and fields, and the benchmark lists are generated from
here, so a new method appears everywhere once it is registered::

    register_trainable(Trainable(
        name="unet3d", title="3D U-Net", task="enhance", config=UNet3DConfig,
        train=lambda config, output, volumes=None, **_: iter_train(MyRecipe(config, volumes),
                                                                   output),
        inputs=(Input("volumes", "training volumes (.npz)", kind="npz"),),
    ))

Importing this module is light (no torch, no simulator); :func:`trainables` registers the
built-in methods on first use.
"""

from __future__ import annotations

import dataclasses
import typing
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "Input",
    "Option",
    "Trainable",
    "config_from",
    "get_trainable",
    "options",
    "register_trainable",
    "trainables",
]

_REGISTRY: dict[str, Trainable] = {}
_BUILTINS_LOADED = False


@dataclass(frozen=True)
class Input:
    """A file or data a training reads (not a hyperparameter).

    Attributes
    ----------
    name : str
        Keyword passed to :attr:`Trainable.train` and CLI flag (``--name``).
    help : str
        One line for the CLI and the widget.
    kind : {"mdf", "npz"}
        A calibration (MDF file or a layer's system matrix) or an ``.npz`` of images.
    required : bool
        Whether the training refuses to start without it.
    """

    name: str
    help: str
    kind: str = "npz"
    required: bool = False


@dataclass(frozen=True)
class Trainable:
    """One trainable method.

    Attributes
    ----------
    name, title : str
        The CLI subcommand and a human title.
    task : {"reconstruct", "enhance"}
        What the trained model does.
    config : type
        Its :class:`~napari_mpi.nn.training.TrainConfig` dataclass.
    train : Callable
        ``train(config, output, **inputs) -> Generator[Progress, None, dict]`` (the card).
    inputs : tuple of Input
        What it reads besides the hyperparameters.
    summary : Callable[[dict], str] or None
        One line about a finished card (the CLI prints ``wrote OUT: <summary>``).
    description : str
        Help text of its CLI subcommand.
    order : int
        Position in lists.
    label : str
        Short name for tables and plots (benchmarks); the name when empty.
    """

    name: str
    title: str
    task: str
    config: type
    train: Callable
    inputs: tuple[Input, ...] = ()
    summary: Callable[[dict], str] | None = None
    description: str = ""
    order: int = 100
    label: str = ""


@dataclass(frozen=True)
class Option:
    """One hyperparameter of a config, as the CLI and the widget show it."""

    name: str
    kind: str  # "int", "float", "bool", "str", "choice", "pair", "keys", "path"
    default: typing.Any
    help: str
    optional: bool = False  # None is allowed
    choices: tuple = ()
    meta: dict = dataclasses.field(default_factory=dict)

    @property
    def flag(self) -> str:
        return self.meta.get("flag") or "--" + self.name.replace("_", "-")

    @property
    def label(self) -> str:
        return self.meta.get("label") or self.name.replace("_", " ")


def register_trainable(entry: Trainable) -> Trainable:
    """Add ``entry`` (ValueError if the name is taken or its config is not a TrainConfig)."""
    from .training import TrainConfig

    if entry.name in _REGISTRY:
        raise ValueError(f"trainable method {entry.name!r} is registered already")
    if not (dataclasses.is_dataclass(entry.config) and issubclass(entry.config, TrainConfig)):
        raise ValueError(f"trainable {entry.name!r}: config must be a TrainConfig dataclass")
    if entry.task not in ("reconstruct", "enhance"):
        raise ValueError(f"trainable {entry.name!r}: task must be reconstruct or enhance")
    _REGISTRY[entry.name] = entry
    return entry


def trainables(task: str | None = None) -> list[Trainable]:
    """The registered trainable methods (of one ``task``), in display order."""
    _load_builtins()
    found = [t for t in _REGISTRY.values() if task is None or t.task == task]
    return sorted(found, key=lambda t: (t.order, t.name))


def get_trainable(name: str) -> Trainable:
    """The entry ``name``; ValueError listing the trainable methods otherwise."""
    _load_builtins()
    if name not in _REGISTRY:
        names = ", ".join(t.name for t in trainables())
        raise ValueError(f"'{name}' cannot be trained here; trainable: {names}")
    return _REGISTRY[name]


def options(config: type, include_hidden: bool = False) -> list[Option]:
    """The hyperparameters of a config dataclass, in field order (metadata ``hidden`` ones
    only with ``include_hidden``)."""
    hints = typing.get_type_hints(config)
    out = []
    for f in dataclasses.fields(config):
        meta = dict(f.metadata)
        if meta.get("hidden") and not include_hidden:
            continue
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        optional = type(None) in typing.get_args(hint)
        base = args[0] if optional and len(args) == 1 else hint
        if meta.get("choices"):
            kind = "choice"
        elif typing.get_origin(base) is tuple:
            kind = "pair"
        elif base is dict or typing.get_origin(base) is dict:
            kind = "keys"
        elif base is bool:
            kind = "bool"
        elif base is int:
            kind = "int"
        elif base is float:
            kind = "float"
        elif meta.get("folder"):
            kind = "path"
        else:
            kind = "str"
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        out.append(Option(f.name, kind, default, meta.get("help", ""), optional,
                          tuple(meta.get("choices", ())), meta))  # fmt: skip
    return out


def config_from(entry: Trainable, values: dict) -> typing.Any:
    """``entry.config`` with ``values`` (unknown names: ValueError naming them), checked."""
    names = {f.name for f in dataclasses.fields(entry.config)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ValueError(f"train {entry.name}: unknown options {unknown}")
    config = entry.config(**values)
    config.check()
    return config


def _fields(config, drop: tuple[str, ...] = ()) -> dict:
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(config)
            if f.name not in drop}  # fmt: skip


def _train_dernet(config, output, calibration=None, phantoms=None):
    from ..recon.dernet import iter_train_dernet

    _need_calibration("dernet", calibration)
    return iter_train_dernet(calibration, phantoms, output, **_fields(config))


def _train_cascaded(config, output, calibration=None, phantoms=None):
    from ..recon.cascaded import iter_train_cascaded

    _need_calibration("cascaded", calibration)
    return iter_train_cascaded(calibration, phantoms, output, **_fields(config))


def _train_admmnet(config, output, calibration=None, phantoms=None):
    from ..recon.admmnet import iter_train_admmnet

    _need_calibration("admm-net", calibration)
    return iter_train_admmnet(calibration, phantoms, output, config=config)


def _train_denoiser(config, output, calibration=None, phantoms=None):
    from ..recon.denoiser_training import iter_train_denoiser

    return iter_train_denoiser(output, phantoms, **_fields(config, drop=("epochs",)))


def _train_enhancer(method: str) -> Callable:
    def train(config, output, volumes=None, **_unused):
        from ..enhance.training import iter_train_enhancer

        return iter_train_enhancer(method, config, output, volumes)

    return train


def _train_dcgan(config, output, phantoms=None, **_unused):
    from ..enhance.dcgan_recipe import iter_train_dcgan

    return iter_train_dcgan(config, output, phantoms)


def _dcgan_summary(card: dict) -> str:
    from ..enhance.dcgan_recipe import summary

    return summary(card)


def _enhancer_summary(card: dict) -> str:
    from ..enhance.training import summary

    return summary(card)


def _need_calibration(method: str, calibration) -> None:
    if calibration is None:
        raise ValueError(
            f"train {method}: --calibration CAL.mdf is required (a model fits one matrix)"
        )


def _signal_summary(name: str) -> Callable[[dict], str]:
    def summary(card: dict) -> str:
        m = card["metrics"]
        t = card["training"]
        what = name
        if name == "cascaded":
            what = f"cascaded network ({t.get('strategy')}, {t.get('loss')} loss)"
        return (
            f"{what} for {card['rows']} rows, best validation PSNR {m['val_psnr_db']:.2f} dB "
            f"after {t['epochs_done']} epoch(s), {m['train_seconds']:.0f} s"
        )

    return summary


def _denoiser_summary(card: dict) -> str:
    m = card["metrics"]
    return (
        f"PP-MPI denoiser, best validation MSE {m['val_mse']:.3g} ({m['val_gain_db']:.1f} dB "
        f"better than the noisy input) after {card['training']['steps']} steps, "
        f"{m['train_seconds']:.0f} s"
    )


def _load_builtins() -> None:
    global _BUILTINS_LOADED
    if _BUILTINS_LOADED:
        return
    _BUILTINS_LOADED = True
    from ..recon.training_config import (
        ADMMNetConfig,
        CascadedConfig,
        DenoiserConfig,
        DERnetConfig,
    )

    calibration = Input("calibration", "calibration MDF (required: a model fits one matrix)",
                        kind="mdf", required=True)  # fmt: skip
    digits = Input("phantoms", "MNIST-style .npz of training digits (its training split is "
                   "used); procedural phantoms when omitted")  # fmt: skip
    register_trainable(Trainable(
        "dernet", "DERnet (end-to-end network)", "reconstruct", DERnetConfig, _train_dernet,
        (calibration, digits), _signal_summary("DERnet"),
        "train DERnet for one calibration (DERnet, Phys. Med. Biol. 2024)", order=50,
        label="DERnet",
    ))  # fmt: skip
    register_trainable(Trainable(
        "cascaded", "Cascaded network (two modules)", "reconstruct", CascadedConfig,
        _train_cascaded, (calibration, digits), _signal_summary("cascaded"),
        "train the cascaded network for one calibration (Zhao et al., IJMPI 2026)", order=55,
        label="Cascaded",
    ))  # fmt: skip
    register_trainable(Trainable(
        "admm-net", "ADMM-Net (unrolled ADMM)", "reconstruct", ADMMNetConfig, _train_admmnet,
        (calibration, digits), _signal_summary("ADMM-Net"),
        "train ADMM-Net for one calibration (Yang et al. 2018; the DERnet paper's baseline)",
        order=57, label="ADMM-Net",
    ))  # fmt: skip
    register_trainable(Trainable(
        "ppmpi", "PP-MPI denoiser", "reconstruct", DenoiserConfig, _train_denoiser,
        (Input("calibration", "unused: the denoiser is not tied to a calibration", kind="mdf"),
         digits),
        _denoiser_summary,
        "train PP-MPI's image denoiser (not tied to a calibration)", order=60,
        label="PP-MPI",
    ))  # fmt: skip
    from ..enhance.recipe_configs import (
        CSDNetConfig,
        EDSR3DConfig,
        ESRGAN3DConfig,
        RCAN3DConfig,
        RRDB3DConfig,
        UNet3DConfig,
    )

    volumes = Input("volumes", "MedMNIST-style .npz of 3D phantoms (VesselMNIST3D; its train "
                    "and val splits are used); procedural vessel trees when omitted")  # fmt: skip
    for order, (name, title, config, label, ref) in enumerate(
        (
            (
                "csdnet",
                "CSDNet (teacher-student 3D deblurring)",
                CSDNetConfig,
                "CSDNet",
                "the paper's method: 2D teacher on x-z slices, 3D student with InfoNCE",
            ),
            ("unet3d", "3D U-Net", UNet3DConfig, "U-Net 3D", "baseline"),
            ("edsr3d", "3D EDSR", EDSR3DConfig, "EDSR 3D", "baseline (Lim et al. 2017)"),
            ("rcan3d", "3D RCAN", RCAN3DConfig, "RCAN 3D", "baseline (Zhang et al. 2018)"),
            (
                "rrdb3d",
                "3D RRDB (ESRGAN without GAN)",
                RRDB3DConfig,
                "RRDB 3D",
                "baseline (Wang et al. 2018)",
            ),
            (
                "esrgan3d",
                "3D ESRGAN (RRDB + relativistic GAN)",
                ESRGAN3DConfig,
                "ESRGAN 3D",
                "baseline (Wang et al. 2018): rrdb3d's generator fine-tuned adversarially",
            ),
        )
    ):
        register_trainable(Trainable(
            name, title, "enhance", config, _train_enhancer(name), (volumes,),
            _enhancer_summary, f"train {title} to sharpen z-blurred 3D volumes ({ref})",
            order=200 + order, label=label,
        ))  # fmt: skip
    from ..enhance.diffusion_config import DCCDMConfig, DDPM3DConfig

    for name, title, config, label, about, order in (
        (
            "dccdm",
            "DCCDM (conditional 3D diffusion with physics losses)",
            DCCDMConfig,
            "DCCDM",
            "the paper's method: a conditional 3D DDPM with degradation-consistency and "
            "frequency-alignment losses (DCCDM)",
            270,
        ),
        (
            "ddpm3d",
            "3D DDPM (conditional diffusion)",
            DDPM3DConfig,
            "DDPM 3D",
            "baseline: DCCDM without its physics losses (Yu et al. 2024)",
            275,
        ),
    ):
        register_trainable(Trainable(
            name, title, "enhance", config, _train_enhancer(name), (volumes,),
            _enhancer_summary, f"train {title} to sharpen z-blurred 3D volumes ({about})",
            order=order, label=label,
        ))  # fmt: skip
    from ..enhance.dcgan_config import DCGANConfig

    register_trainable(Trainable(
        "dcgan", "DC_GAN (unpaired 2D x-space deblurring)", "enhance", DCGANConfig,
        _train_dcgan,
        (Input("phantoms", "MNIST-style .npz of digits (training split: the domains; "
               "validation split: checkpoint choice); procedural shapes when omitted"),),
        _dcgan_summary,
        "train DC_GAN to deblur 2D x-space images from unpaired native / deconvolved images "
        "(Zhang et al., IJMPI 2023)", order=260, label="DC_GAN",
    ))  # fmt: skip
