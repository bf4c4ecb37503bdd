"""Deployment tier: ONNX graphs checked against PyTorch, int8 calibration, ONNX Runtime and OpenVINO, export.

May import every tier below (models, formats, data, compression, training); never experiments or the CLI.
"""

# here, not in a runtime's module: the CLI lists them without importing one
BACKENDS = ("torch", "onnxruntime", "openvino")
