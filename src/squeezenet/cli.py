"""The `squeezenet` command: parses arguments and calls the library, nothing more.

Every subcommand is a `_cmd_*` function; errors in the user's input (SqueezeNetError, ValueError, OSError)
become one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import SqueezeNetError


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (no usage dump): 'squeezenet: error: ...', exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"squeezenet: error: {message} (see '{self.prog} --help')\n")


def add_model_args(p: argparse.ArgumentParser) -> None:
    """Metaparameter and variant overrides shared by summary, train and explore."""
    g = p.add_argument_group("architecture overrides (the paper's metaparameters and variants)")
    g.add_argument("--sr", type=float, help="squeeze ratio SR (v1.0: 0.125)")
    g.add_argument("--pct3x3", type=float, help="share of 3x3 filters in the expand layers (v1.0: 0.5)")
    g.add_argument("--base-e", type=int, help="expand filters of the first fire module (v1.0: 128)")
    g.add_argument("--incr-e", type=int, help="expand filters added every FREQ fire modules (v1.0: 128)")
    g.add_argument("--freq", type=int, help="fire modules between increments (v1.0: 2)")
    g.add_argument("--bypass", choices=["none", "simple", "complex"], help="bypass connections (Table 3)")
    g.add_argument("--num-classes", type=int, help="number of output classes")
    g.add_argument("--batch-norm", action="store_true", default=None, help="BatchNorm after every convolution")
    g.add_argument("--no-final-relu", dest="final_relu", action="store_false", default=None,
                   help="drop the ReLU after conv10")


def model_kwargs(args: argparse.Namespace) -> dict:
    keys = ("sr", "pct3x3", "base_e", "incr_e", "freq", "bypass", "num_classes", "batch_norm", "final_relu")
    return {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}


def _cmd_summary(args: argparse.Namespace) -> int:
    from .registry import create_model
    from .summary import format_table, summarize

    kw = model_kwargs(args)
    if args.model == "alexnet":
        kw = {k: v for k, v in kw.items() if k == "num_classes"} | {"image_size": args.input_size}
    table = summarize(create_model(args.model, **kw), args.input_size)
    print(json.dumps(table) if args.json else format_table(table))
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from .report import write_report

    path = write_report(args.out)
    print(f"report written to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__
    from .registry import list_models

    parser = _Parser(prog="squeezenet", description="SqueezeNet end to end: the model family, training, "
                     "Deep Compression, design-space exploration and deployment.")
    parser.add_argument("--version", action="version", version=f"squeezenet {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("summary", help="per-layer table (Table 1) of any configuration")
    p.add_argument("model", choices=list_models(), metavar="MODEL", help=f"one of: {', '.join(list_models())}")
    p.add_argument("--input-size", type=int, default=224, help="square input side in pixels (default 224)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    add_model_args(p)
    p.set_defaults(func=_cmd_summary)

    p = sub.add_parser("reproduce", help="write the report that reproduces the paper (the main job)")
    p.add_argument("--out", default="report", help="output folder (default ./report)")
    p.set_defaults(func=_cmd_reproduce)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (SqueezeNetError, ValueError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"squeezenet: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("squeezenet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
