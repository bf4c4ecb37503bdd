"""What every command shares: the parser, flags generated from the library's dataclasses, weights and backend args.

`add_fields` turns dataclass fields described by `squeezenet.options.option` into flags: the type from the
annotation, the default, choices and range from the field, the help from its text. A command adds only what is
its own (files, output format).
"""

from __future__ import annotations

import argparse
import types
import typing
from dataclasses import MISSING, fields
from typing import TYPE_CHECKING, Any

from squeezenet.errors import SqueezeNetError
from squeezenet.options import check_value

if TYPE_CHECKING:
    from squeezenet.formats.weights import Weights


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump): 'squeezenet: error: ...', exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"squeezenet: error: {message} (see '{self.prog} --help')\n")


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Shows a flag's default when it has one (not for switches or unset values); keeps the example's layout."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" not in text and _shown(action.default) and action.option_strings:
            text += " (default: %(default)s)"
        return text


def _shown(default: Any) -> bool:
    """A default worth printing: not unset, not a switch's (identity, since 0 == False and 1.0 == True)."""
    return not (default is None or default is MISSING or default is argparse.SUPPRESS or isinstance(default, bool))


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _base_type(hint: Any) -> type:
    """int for `int | None`, and so on."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        return next(a for a in typing.get_args(hint) if a is not type(None))
    return hint


def typed(kind: type, name: str, meta: dict):
    """An argparse type that parses `kind` and checks the field's range, naming the flag in the message."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, "
                                             f"got {text!r}") from None
        try:
            check_value(flag(name), value, meta | {"choices": None})
        except SqueezeNetError as e:
            raise argparse.ArgumentTypeError(str(e)) from None
        return value
    parse.__name__ = kind.__name__
    return parse


def add_fields(p: argparse.ArgumentParser | argparse._ArgumentGroup, cls: type, names: list[str] | None = None,
               unset: bool = False, show_default: bool = True) -> None:
    """A flag per described field of dataclass `cls` (`names`: only these). `unset`: every default is None, so
    that only what the user typed overrides something else (a recipe, a base configuration); the help still
    names the field's default unless `show_default` is off."""
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        meta = dict(f.metadata)
        if not meta or not meta.get("cli") or (names is not None and f.name not in names):
            continue
        kind = _base_type(hints[f.name])
        default = None if unset or meta.get("recipe") or f.default is MISSING else f.default
        help_text = meta["help"]
        if meta.get("recipe"):
            help_text += " (default: from the recipe)"
        elif unset and show_default and _shown(f.default):
            help_text += f" (default: {f.default})"
        if kind is bool:
            if meta.get("recipe"):  # a recipe may turn it on: both spellings
                p.add_argument(flag(f.name), action=argparse.BooleanOptionalAction, default=None, help=help_text)
            elif f.default:  # on by default: the flag turns it off
                p.add_argument(flag("no_" + f.name), dest=f.name, action="store_false",
                               default=None if unset else True, help=f"without: {help_text}")
            else:
                p.add_argument(flag(f.name), action="store_true", default=None if unset else False, help=help_text)
            continue
        extra: dict[str, Any] = {"choices": list(meta["choices"])} if meta.get("choices") else {}
        if kind in (int, float) and not extra:
            extra["type"] = typed(kind, f.name, meta)
            if meta.get("low") is not None or meta.get("high") is not None:
                help_text += f" [{_fmt(meta.get('low'))}..{_fmt(meta.get('high'))}]"
        elif kind in (int, float):
            extra["type"] = kind
        p.add_argument(flag(f.name), default=default, help=help_text, required=f.default is MISSING and
                       f.default_factory is MISSING and not unset, metavar=f.name.upper() if not extra.get(
                           "choices") else None, **extra)


def _fmt(x: float | None) -> str:
    return "" if x is None else f"{x:g}" if isinstance(x, float) else f"{x:,}".replace(",", "_")


def values(args: argparse.Namespace, cls: type, names: list[str] | None = None) -> dict:
    """The given (not None) values of `cls`'s fields among the parsed arguments."""
    return {f.name: getattr(args, f.name) for f in fields(cls) if (names is None or f.name in names)
            and getattr(args, f.name, None) is not None}


MODEL_FIELDS = ["sr", "pct3x3", "base_e", "incr_e", "freq", "bypass", "num_classes", "batch_norm", "final_relu"]


def add_model_args(p: argparse.ArgumentParser) -> None:
    """The paper's metaparameters and variants, from `SqueezeNetConfig`: overrides of the chosen model."""
    from squeezenet.models.config import SqueezeNetConfig

    add_fields(p.add_argument_group("architecture overrides (the paper's metaparameters and variants)"),
               SqueezeNetConfig, MODEL_FIELDS, unset=True, show_default=False)


def model_kwargs(args: argparse.Namespace) -> dict:
    from squeezenet.models.config import SqueezeNetConfig

    return values(args, SqueezeNetConfig, MODEL_FIELDS)


RUNNABLE = "weights file (.net, .safetensors, .pth, .sqz), an exported .onnx or OpenVINO .xml, or a bundled model: " \
           "imagenette"


def add_weights_arg(p: argparse.ArgumentParser, what: str = "weights file (.net, .safetensors, .pth, .sqz, .onnx) or "
                    "a bundled model: imagenette") -> None:
    """WEIGHTS as a positional argument or as --weights, the same in every command."""
    p.add_argument("weights_pos", nargs="?", metavar="WEIGHTS", help=what)
    p.add_argument("--weights", help="the same, as a flag")


def weights_of(args: argparse.Namespace) -> str:
    if args.weights and args.weights_pos and args.weights != args.weights_pos:
        raise SqueezeNetError(f"two weights given: {args.weights_pos} and --weights {args.weights}")
    if not (args.weights or args.weights_pos):
        raise SqueezeNetError("no weights given: pass WEIGHTS or --weights FILE (a bundled model: imagenette)")
    return args.weights or args.weights_pos


def add_backend_args(p: argparse.ArgumentParser) -> None:
    from squeezenet.deploy import BACKENDS

    p.add_argument("--backend", choices=BACKENDS, help="runtime (default: torch for weights; for .onnx, .xml and "
                   "--int8 openvino when installed, else onnxruntime)")
    p.add_argument("--int8", action="store_true", help="int8 on ONNX Runtime or OpenVINO (calibrated now unless "
                   "already int8)")
    p.add_argument("--calibration", metavar="DIR", help="int8 calibration images (default: shared Imagenette train)")


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def byte_size(text: str) -> int:
    """Bytes: 262144, 256K or 1M (K = 1024)."""
    t = text.strip().upper().removesuffix("B")
    scale = {"K": 1 << 10, "M": 1 << 20}.get(t[-1:], 1)
    digits = t[:-1] if scale > 1 else t
    if not digits.isdigit() or int(digits) < 1:
        raise argparse.ArgumentTypeError(f"expected bytes such as 262144, 256K or 1M, got {text!r}")
    return int(digits) * scale


def flash_line(flash: int) -> str:
    """The C engine's flash figure, worded the same by `compress`, `summary --weights` and `export --format c`."""
    return f"C engine flash (fixed width): {flash:,} bytes"


def c_engine_flash(weights: Weights) -> int | None:
    """What `export --format c` keeps in flash for `weights`' layers (`quantize.weights_flash`); None for what the
    engine does not run, or for float layers (the export clusters them first, which takes minutes)."""
    if weights.arch != "squeezenet" or not weights.codebooks:
        return None
    from squeezenet.deploy.cengine.quantize import weights_flash

    try:
        return weights_flash(weights)
    except SqueezeNetError:  # a configuration the engine cannot express: no engine, no figure
        return None
