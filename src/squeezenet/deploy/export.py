"""`squeezenet export`: weights to an ONNX file or OpenVINO IR, parity-checked, optionally int8, written atomically."""

from __future__ import annotations

from pathlib import Path

import torch

from squeezenet.atomic import write_bytes
from squeezenet.deploy.graph import OPSET, check_images, checked_onnx, image_folder
from squeezenet.deploy.int8 import CALIBRATION_IMAGES, calibration_batches, quantize_int8
from squeezenet.deploy.onnxruntime import OrtModel
from squeezenet.formats.onnx import get_description
from squeezenet.formats.weights import load


def export_model(weights_path: str | Path, out: str | Path, int8: bool = False,
                 calibration: str | Path | None = None, calibration_images: int = CALIBRATION_IMAGES,
                 check: str | Path | None = None, format: str = "onnx") -> dict:
    """Export weights to ONNX (parity-checked on real images), optionally int8, and write it atomically.

    Returns what to tell the user: the fp32 parity, and for int8 its agreement with fp32 on the same images.
    `format` "openvino" writes the same graph as OpenVINO IR, its logits checked against ONNX Runtime's.
    """
    if format == "openvino":  # the optional extra: a missing one is said before the export and calibration
        from squeezenet.deploy.openvino import OvModel, parity, write_ir
    weights = load(weights_path)
    check, calibration = image_folder("val", check, weights), image_folder("train", calibration, weights)
    images = check_images(weights.preprocessing, check)
    model, diff = checked_onnx(weights, images)
    fp32 = OrtModel(model)(images)
    with torch.inference_mode():
        agree = float((weights.build().eval()(images).argmax(1) == fp32.argmax(1)).float().mean())
    report = {"out": str(out), "opset": OPSET, "check_folder": str(check), "check_images": len(images),
              "max_abs_diff": diff, "top1_agreement": agree}
    if int8:
        model = quantize_int8(model, calibration_batches(weights.preprocessing, calibration, calibration_images))
        q = OrtModel(model)(images)
        report |= {"calibration_folder": str(calibration),
                   "calibration_images": get_description(model)["calibration_images"],
                   "int8_top1_agreement": float((fp32.argmax(1) == q.argmax(1)).float().mean()),
                   "int8_max_abs_diff": float((fp32 - q).abs().max())}
    if format == "openvino":
        report["openvino_max_abs_diff"] = parity(OvModel(model), OrtModel(model), images, int8)
        return report | {"precision": "int8" if int8 else "fp32", "bytes": write_ir(model, out)}
    data = model.SerializeToString()
    write_bytes(out, data)
    return report | {"precision": "int8" if int8 else "fp32", "bytes": len(data)}
