#!/usr/bin/env bash
# The fine-tuning's knobs on issue 17's headline point: headline.sh's compress command with one option added per
# row, each file evaluated on both ImageNet sets (`squeezenet evaluate --json`). Writes
# results/compress/ablation.jsonl, a line per file and set: {"variant", "added", "bytes", then evaluate's fields}.
# Usage: results/compress/ablation.sh [WORK_DIR]  (files kept in WORK_DIR, default ../runs/ablation, and reused;
# about 8 minutes of compression per row on 2 cores, 40 for the last; SQUEEZENET_SHARED overrides ../shared)
set -euo pipefail
cd "$(dirname "$0")/../.."
S=${SQUEEZENET_SHARED:-../shared}
RUN=${1:-../runs/ablation}
OUT=results/compress/ablation.jsonl
VARIANTS=("none|" "lr15|--lr-finetune 1.5e-4" "mixup04|--mixup 0.4" "anchor10|--anchor 10" "anchor100|--anchor 100"
          "all9469|--train-limit 9469")
mkdir -p "$RUN"
: > "$OUT.tmp"
for v in "${VARIANTS[@]}"; do
  name=${v%%|*} added=${v#*|} file=$RUN/${v%%|*}.sqz
  # shellcheck disable=SC2086  # $added is a list of options
  [ -f "$file" ] || squeezenet compress --weights "$S/weights/deep-compression-squeezenet-v1.0/compressed_SqueezeNet.net" \
      --profile none --init optimal --rate 4e-3 --rdo --reassign --fisher-batches 8 --data "$S/data/imagenette2/train" \
      --train-limit 2000 --finetune-epochs 2 --lr-finetune 5e-5 $added --out "$file"
  for data in imagenet-val-1300 imagenet-sample-750; do
    squeezenet evaluate --weights "$file" --data "$S/data/$data" --json |
      sed "s|^{|{\"variant\": \"$name\", \"added\": \"$added\", \"bytes\": $(stat -c %s "$file"), |" >> "$OUT.tmp"
  done
done
mv "$OUT.tmp" "$OUT"
