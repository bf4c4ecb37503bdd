#!/usr/bin/env bash
# The README's headline figures, each from `squeezenet evaluate --json` on this commit: the authors' ImageNet
# SqueezeNet v1.0 (fp32, int8, our lossless and 6-bit .sqz) on both shared ImageNet sets, and the bundled
# Imagenette model. Usage: results/headline/command.sh [WORK_DIR]  (files are made in WORK_DIR, default ../runs/headline)
set -euo pipefail
cd "$(dirname "$0")/../.."
S=${SQUEEZENET_SHARED:-../shared}
W=$S/weights/deep-compression-squeezenet-v1.0/compressed_SqueezeNet.net
RUN=${1:-../runs/headline}
OUT=results/headline/evaluate.jsonl
mkdir -p "$RUN"
[ -f "$RUN/sq.int8.onnx" ] || squeezenet export "$W" --int8 --out "$RUN/sq.int8.onnx"
[ -f "$RUN/lossless.sqz" ] || squeezenet compress --weights "$W" --out "$RUN/lossless.sqz"
[ -f "$RUN/sq6.sqz" ] || squeezenet compress --weights "$W" --profile none --init optimal --rate 5e-4 \
    --fisher-batches 8 --data "$S/data/imagenette2/train" --train-limit 2000 --finetune-epochs 2 --lr-finetune 5e-5 \
    --out "$RUN/sq6.sqz"
: > "$OUT.tmp"
for weights in "$W" "$RUN/sq.int8.onnx" "$RUN/lossless.sqz" "$RUN/sq6.sqz" imagenette; do
  for data in imagenet-val-1300 imagenet-sample-750; do
    squeezenet evaluate --weights "$weights" --data "$S/data/$data" --json >> "$OUT.tmp"
  done
done
squeezenet evaluate --weights imagenette --data "$S/data/imagenette2/val" --json >> "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
ls -l "$RUN"/*.sqz "$RUN"/*.onnx "$W"
