"""`squeezenet summary`: Table 1 (per-layer outputs, filters, parameters, MACs) of any configuration or weights."""

from __future__ import annotations

import argparse
import json

from squeezenet.cli.common import add_model_args, c_engine_flash, flash_line, model_kwargs
from squeezenet.errors import SqueezeNetError

HELP = "per-layer table (Table 1) of any configuration or weights file"
EXAMPLE = "squeezenet summary squeezenet1_0 --sr 0.5 --pct3x3 0.25 --bypass simple\n  " \
          "squeezenet summary --weights imagenette --input-size 160\n  " \
          "squeezenet summary squeezenet1_1 --input-size 128 --memory"


def add_arguments(p: argparse.ArgumentParser) -> None:
    from squeezenet.models.registry import list_models

    p.add_argument("model", nargs="?", choices=list_models(), metavar="MODEL",
                   help=f"one of: {', '.join(list_models())}")
    p.add_argument("--weights", help="summarize a weights file instead (.sqz: with its compression table; "
                   "weight-shared: with the C engine's flash)")
    p.add_argument("--input-size", type=int, default=224, help="square input side in pixels")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")
    p.add_argument("--memory", action="store_true", help="the C engine's memory plans instead: layer by layer (per "
                   "layer the arena in use and the peak) and streamed row by row (per stage the rows it keeps), "
                   "with the MACs of each (`squeezenet export --format c`)")
    add_model_args(p)


def run(args: argparse.Namespace) -> int:
    from squeezenet.models.registry import create_model
    from squeezenet.models.summary import format_table, summarize

    if not 1 <= args.input_size <= 4096:
        raise SqueezeNetError(f"--input-size must be in [1, 4096], got {args.input_size}")
    if args.weights:  # the architecture of a weights file; a .sqz its compression table, codebooks the flash
        from squeezenet.compression.sizes import file_report, format_report
        from squeezenet.formats.sqz import is_sqz
        from squeezenet.formats.weights import load, resolve

        weights = load(args.weights)
        if args.memory:
            return _memory(weights.build(), args)
        table = summarize(weights.build(), args.input_size)
        source = resolve(args.weights)  # a file, or a save_pretrained folder (never a .sqz)
        data = source.read_bytes() if source.is_file() else b""
        if is_sqz(data):
            table["compression"] = file_report(data)
        flash = c_engine_flash(weights)
        if flash is not None:
            table["c_engine_flash"] = flash
        print(json.dumps(table) if args.json else format_table(table) + (
            "\n\n" + format_report(table["compression"]) if "compression" in table else "") + (
            "\n" + flash_line(flash) if flash is not None else ""))
        return 0
    if args.model is None:
        raise SqueezeNetError("summary needs a MODEL name or --weights FILE")
    kw = model_kwargs(args)
    if args.model == "alexnet":
        kw = {k: v for k, v in kw.items() if k == "num_classes"} | {"image_size": args.input_size}
    if args.memory:
        return _memory(create_model(args.model, **kw), args)
    table = summarize(create_model(args.model, **kw), args.input_size)
    print(json.dumps(table) if args.json else format_table(table))
    return 0


def _memory(model, args: argparse.Namespace) -> int:
    from squeezenet.deploy.cengine.graph import lower
    from squeezenet.deploy.cengine.planner import best_plan, format_plan, plan_macs, smallest_plan, tflm_plan
    from squeezenet.deploy.cengine.stream import format_segment, stage_rows

    graph = lower(model, args.input_size)
    plan, dense, small = best_plan(graph), tflm_plan(graph), smallest_plan(graph)
    rest = [r["name"] for r in small.rows if r["name"] != "stream"]
    if args.json:
        print(json.dumps({"input_size": args.input_size, "arena": plan.arena, "lower_bound": plan.lower_bound,
                          "fused": list(plan.fused), "layers": plan.rows, "dense_int8_arena": dense.arena,
                          "macs": plan_macs(plan), "streamed": {
                              "arena": small.arena, "macs": plan_macs(small), "layer_by_layer": rest,
                              "stages": stage_rows(small.stream) if small.stream else []}}))
        return 0
    print("layer by layer:\n" + format_plan(plan, dense))
    if small.stream:
        print(f"\nstreamed row by row (the smallest plan):\n{format_segment(small.stream)}")
        print(f"arena {small.arena:,} bytes: {len(small.stream.stages)} stages streamed"
              + (f", then layer by layer: {', '.join(rest)}" if rest else ""))
    print(f"MACs: layer by layer {plan_macs(plan):,}; streamed {plan_macs(small):,} (every output row made once)")
    return 0
