"""The weights' description inside an ONNX file (its metadata), so an `.onnx` is as self-describing as `.sqz`.

Also the graph's input and output names, the convention every exporter and runtime of the project shares.
"""

from __future__ import annotations

import json
from pathlib import Path

import onnx

from squeezenet.errors import SqueezeNetError
from squeezenet.formats.weights import METADATA_KEY, Weights, parse_json

INPUT, OUTPUT = "input", "logits"


def description(weights: Weights, precision: str = "fp32") -> dict:
    """What a runtime needs besides the graph: classes, class ids, preprocessing; plus provenance."""
    return weights.header() | {"precision": precision}


def set_description(model: onnx.ModelProto, desc: dict) -> None:
    del model.metadata_props[:]
    model.metadata_props.add(key=METADATA_KEY, value=json.dumps(desc))


def get_description(model: onnx.ModelProto, source: str | Path = "model") -> dict:
    props = {p.key: p.value for p in model.metadata_props}
    if METADATA_KEY not in props:
        raise SqueezeNetError(f"{source}: ONNX model without squeezenet metadata (not exported by this project)")
    return parse_description(props[METADATA_KEY], source)


def parse_description(text: str, source: str | Path = "model") -> dict:
    """The description's JSON checked as a weights header, whatever holds it (ONNX metadata, OpenVINO rt_info)."""
    desc = parse_json(text, f"{source}: squeezenet metadata")
    try:
        Weights.from_header(desc, {})
    except SqueezeNetError as e:
        raise SqueezeNetError(f"{source}: {e}") from None
    return desc
