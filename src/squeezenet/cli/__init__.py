"""The `squeezenet` command: one module per subcommand, each parsing its arguments and calling the library.

A command module has `HELP`, `EXAMPLE`, `add_arguments(parser)` and `run(args)`; most flags are generated from
the library's dataclasses (`common.add_fields`). The project's own errors (`SqueezeNetError`: bad input) and the
environment's (`OSError`: a file that cannot be read or written) become one line on stderr and exit code 2; a
stop signal (SIGTERM, Ctrl-C) one line and 128 + its number; any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

import os
import sys
from importlib import metadata

from squeezenet.cli import (
    cache,
    compress,
    convert,
    evaluate,
    explore,
    export,
    predict,
    reproduce,
    sensitivity,
    summary,
    train,
)
from squeezenet.cli.common import Formatter, Parser
from squeezenet.errors import SqueezeNetError
from squeezenet.signals import Stopped, install

COMMANDS = {"summary": summary, "train": train, "explore": explore, "reproduce": reproduce, "convert": convert,
            "evaluate": evaluate, "predict": predict, "export": export, "sensitivity": sensitivity,
            "compress": compress, "cache": cache}


def build_parser() -> Parser:
    parser = Parser(prog="squeezenet", description="SqueezeNet end to end: the model family, training, "
                    "Deep Compression, design-space exploration and deployment.", formatter_class=Formatter)
    parser.add_argument("--version", action="version", version=f"squeezenet {metadata.version('squeezenet')}")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress bars (they also hide when stderr "
                        "is not a terminal)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=Parser)
    for name, module in COMMANDS.items():
        p = sub.add_parser(name, help=module.HELP, description=module.HELP, formatter_class=Formatter,
                           epilog=f"example:\n  {module.EXAMPLE}")
        module.add_arguments(p)
        p.set_defaults(func=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    install()
    if args.quiet:
        os.environ["SQUEEZENET_QUIET"] = "1"  # also for the processes a command starts (explore's runs)
    try:
        return args.func(args)
    except (SqueezeNetError, OSError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"squeezenet: error: {msg}", file=sys.stderr)
        return 2
    except Stopped as e:
        print(f"squeezenet: {e}", file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        print("squeezenet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
