"""Deployment tier: ONNX graphs checked against PyTorch, int8 calibration, ONNX Runtime sessions, export.

May import every tier below (models, formats, data, compression, training); never experiments or the CLI.
"""

BACKENDS = ("torch", "onnxruntime")  # here, not in a runtime's module: the CLI lists them without importing one
