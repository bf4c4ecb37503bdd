#!/usr/bin/env bash
# The C engine's figures in the README (issue 29): four models, each merged into results/benchmarks/c_engine.json
# (--only keeps the others' entries) and its figure. About 2 hours on 2 cores, most of it TensorFlow Lite Micro's
# reference kernels on all 1,300 + 3,925 images (--tflm) and the integer reference on every image (--accuracy).
# Usage: results/benchmarks/c_engine.sh [HEADLINE.sqz]  (default: written by results/compress/headline.sh first)
set -euo pipefail
cd "$(dirname "$0")/../.."
SQZ=${1:-../runs/headline/sq6.sqz}
[ -s "$SQZ" ] || results/compress/headline.sh "$SQZ"
B="python benchmarks/c_engine.py --out results/benchmarks/c_engine.json --qemu 20"
$B --only authors --accuracy --tflm
$B --only imagenette --accuracy --tflm
$B --only imagenette-224 --imagenette-224 --accuracy
$B --only authors-6bit --authors-6bit "$SQZ"
