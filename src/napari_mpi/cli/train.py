"""``napari-mpi train METHOD``: train a learned method; one subcommand per registered trainable.

The methods, their options, defaults and help come from the trainable registry
(:mod:`napari_mpi.nn.trainers`) and the methods' config dataclasses, so the CLI and the library
share one set of defaults. ``napari-mpi train METHOD --help`` shows that method's options
only; an option of another method gets a clear error naming the methods it applies to.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

from ._common import ProgressBar, finite_float, positive_float, positive_int

#: options every trainable takes besides its config (inputs, output and display)
_COMMON = ("output", "overwrite", "quiet")


def _type(option):
    low = option.meta.get("min")
    if option.kind == "int":
        return positive_int if low == 1 else int
    if option.kind == "float":
        return positive_float if option.name == "lr" else finite_float
    return str


def _add_option(parser: argparse.ArgumentParser, option, hidden: bool = False) -> None:
    """One config field as an argparse option (``hidden``: accepted, not shown)."""
    text = argparse.SUPPRESS if hidden else option.help
    if not hidden and option.kind not in ("bool", "keys") and option.default is not None:
        default = option.default
        if option.kind == "pair":
            default = " ".join(f"{v:g}" for v in default)
        text = f"{text} (default: {default})"
    dest = option.name
    kw: dict = {"dest": dest, "help": text, "default": argparse.SUPPRESS}
    if option.kind == "bool":
        inverted = option.meta.get("flag") is not None and option.default is True
        if option.default is True and not inverted:  # on by default: --name / --no-name
            kw["action"] = argparse.BooleanOptionalAction
            # hidden: SUPPRESS alone (argparse would print "==SUPPRESS== (default: on)")
            kw["help"] = text if hidden else f"{text} (default: on)"
        else:
            kw["action"] = "store_false" if inverted else "store_true"
    elif option.kind == "pair":
        nargs = option.meta.get("nargs", 2)
        whole = all(isinstance(v, int) for v in option.default or ())
        metavar = option.meta.get("metavar", ("LOW", "HIGH") if nargs == 2 else "N")
        kw.update(type=int if whole else finite_float, nargs=nargs, metavar=metavar)
    elif option.kind == "keys":
        kw.update(nargs="+", metavar="KEY=VALUE")
    elif option.kind == "choice":
        kw.update(choices=option.choices)
        if all(isinstance(c, int) for c in option.choices):
            kw["type"] = int
    else:
        kw["type"] = _type(option)
        if "metavar" in option.meta:
            kw["metavar"] = option.meta["metavar"]
    parser.add_argument(option.flag, **kw)


def _parse_keys(method: str, option, items: list[str]) -> dict:
    """``--architecture KEY=VALUE ...`` as a dict; ValueError naming a bad entry."""
    keys = option.meta.get("keys", {})
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in keys:
            raise ValueError(
                f"train: {option.flag} entries are KEY=VALUE with KEY one of "
                f"{', '.join(keys)}; got {item!r}"
            )
        try:
            out[key] = keys[key](value)
        except ValueError:
            raise ValueError(
                f"train: {option.flag} {key} must be {keys[key].__name__}, got {value!r}"
            ) from None
        if out[key] < 0 or (
            option.name == "architecture"
            and (
                (key.startswith("c") and out[key] < 1)
                or (key.startswith("dropout") and out[key] >= 1)
            )
        ):
            raise ValueError(f"train: {option.flag} {key}={value} is out of range")
    return out


def method_parser(entry) -> argparse.ArgumentParser:
    """The argument parser of ``napari-mpi train <entry.name>``, from its config."""
    from ..nn.trainers import options, trainables

    parser = argparse.ArgumentParser(
        prog=f"napari-mpi train {entry.name}", description=entry.description or entry.title
    )
    own = options(entry.config)
    names = {o.name for o in own} | {i.name for i in entry.inputs}
    for inp in entry.inputs:
        parser.add_argument(f"--{inp.name}", help=inp.help, default=None)
    for option in own:
        if not option.meta.get("hidden_cli"):
            _add_option(parser, option)
    seen = set(names)
    for other in trainables():  # another method's options: accepted, refused with a reason
        for option in options(other.config):
            if option.name not in seen:
                seen.add(option.name)
                _add_option(parser, option, hidden=True)
        for inp in other.inputs:
            if inp.name not in seen:
                seen.add(inp.name)
                parser.add_argument(f"--{inp.name}", help=argparse.SUPPRESS,
                                    default=argparse.SUPPRESS)  # fmt: skip
    parser.add_argument("-o", "--output", required=True, help="model folder (model.pt + card.json)")
    parser.add_argument("--overwrite", action="store_true", help="replace a model in that folder")
    parser.add_argument("--quiet", action="store_true", help="no progress display")
    parser.set_defaults(_own=names)
    return parser


def _foreign(entry, values: dict) -> None:
    """ValueError when an option of another method was given."""
    from ..nn.trainers import options, trainables

    own = values.pop("_own")
    for name in sorted(set(values) - own - set(_COMMON)):
        users = [
            t.name
            for t in trainables()
            if name in {o.name for o in options(t.config)} | {i.name for i in t.inputs}
        ]
        flag = next(
            (o.flag for t in trainables() for o in options(t.config) if o.name == name),
            f"--{name.replace('_', '-')}",
        )
        raise ValueError(f"train {entry.name}: {flag} applies to {', '.join(users)} only")


def cmd_train(args: argparse.Namespace) -> int:
    from ..nn.trainers import config_from, get_trainable, options
    from ..progress import run

    entry = get_trainable(args.method)
    parsed = method_parser(entry).parse_args(args.options)
    values = vars(parsed)
    _foreign(entry, values)
    out = Path(values.pop("output"))
    overwrite, quiet = values.pop("overwrite"), values.pop("quiet")
    inputs = {i.name: values.pop(i.name, None) for i in entry.inputs}
    by_name = {o.name: o for o in options(entry.config)}
    for name, value in list(values.items()):
        if by_name[name].kind == "keys":
            values[name] = _parse_keys(entry.name, by_name[name], value)
        elif by_name[name].kind == "pair":
            values[name] = tuple(value)
    holds_model = (out / "model.pt").exists() or (out / "card.json").exists()
    if holds_model and not overwrite and not values.get("resume"):
        raise FileExistsError(f"{out}: holds a model already; pass --overwrite to replace it")
    values["command"] = "napari-mpi " + shlex.join(args.argv)
    config = config_from(entry, values)
    for inp in entry.inputs:
        if inp.kind != "mdf":
            continue
        if not inp.required:
            inputs.pop(inp.name, None)  # accepted for older command lines, not used
        elif inputs.get(inp.name):
            from ..io import read_mdf

            with read_mdf(inputs[inp.name]) as f:
                inputs[inp.name] = f.system_matrix()
    card = run(entry.train(config, out, **inputs), ProgressBar(not quiet))
    if not card:
        raise ValueError(f"train {entry.name}: no epoch was validated, nothing was written")
    summary = entry.summary(card) if entry.summary else entry.title
    print(f"wrote {out}: {summary}")
    return 0


def method_first(argv: list[str]) -> list[str]:
    """``train OPTIONS METHOD ...`` as ``train METHOD OPTIONS ...``: options before the method
    name worked when ``train`` had one flat parser, so they keep working (the first word that
    names a trainable method is taken as the method)."""
    from ..nn.trainers import trainables

    if len(argv) < 2 or argv[0] != "train" or not argv[1].startswith("-"):
        return argv
    if argv[1] in ("-h", "--help"):
        return argv
    names = {t.name for t in trainables()}
    for i, word in enumerate(argv[1:], start=1):
        if word in names:
            return ["train", word, *argv[1:i], *argv[i + 1 :]]
    return argv


def add_parser(sub: argparse._SubParsersAction) -> None:
    from ..nn.trainers import trainables

    lines = "\n".join(f"  {t.name:<10} {t.description or t.title}" for t in trainables())
    tp = sub.add_parser(
        "train",
        help="train a learned method (ppmpi: its denoiser)",
        description="Train a learned method. Methods:\n" + lines + "\n\nnapari-mpi train "
        "METHOD --help lists a method's options and their defaults.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tp.add_argument("method", help=f"one of {', '.join(t.name for t in trainables())}")
    tp.add_argument("options", nargs=argparse.REMAINDER, help="the method's options")
    tp.set_defaults(func=cmd_train)
