"""`squeezenet reproduce`: the report, the project's main job (needs no data; seconds)."""

from __future__ import annotations

import argparse

HELP = "write the report that reproduces the paper (the main job)"
EXAMPLE = "squeezenet reproduce --out report"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", default="report", help="output folder")
    p.add_argument("--results", default="results", help="measured results to include")


def run(args: argparse.Namespace) -> int:
    from squeezenet.experiments.report import write_report

    print(f"report written to {write_report(args.out, args.results)}")
    return 0
