#!/usr/bin/env bash
# Issue 31's measurements: today's recipe (headline.sh: rate-distortion assignment, then 2 epochs of distillation
# that also re-assigns the weights) against block reconstruction and against a wider transfer set, at the two sizes
# of the rate-accuracy curve around the headline (rate 4e-3: ~300 KB; 1.5e-3: ~335 KB). Every file is judged by its
# fidelity to the authors' 8-bit file over both held-out ImageNet sets pooled (2,050 images; `squeezenet evaluate
# --reference --json`). Learning uses Imagenette *train* images only. Writes results/compress/reconstruction.jsonl,
# a line per file: {"variant", "rate", "added", "bytes", then evaluate's fields}, and reconstruction-pairs.jsonl.
# Usage: results/compress/reconstruction.sh [WORK_DIR] [VARIANT...]  (files kept in WORK_DIR, default
# ../runs/reconstruction, and reused; 8-15 minutes of compression per row on 2 cores; SQUEEZENET_SHARED overrides
# ../shared)
set -euo pipefail
cd "$(dirname "$0")/../.."
S=${SQUEEZENET_SHARED:-../shared}
RUN=${1:-../runs/reconstruction}
shift || true
NET=$S/weights/deep-compression-squeezenet-v1.0/compressed_SqueezeNet.net
OUT=results/compress/reconstruction.jsonl
TODAY="--finetune-epochs 2 --lr-finetune 5e-5 --reassign"
RECON="--reconstruct-steps 200"
VARIANTS=("reconstruct|4e-3|$RECON" "reconstruct+distill|4e-3|$RECON $TODAY" "today|4e-3|$TODAY"
          "crops008|4e-3|$TODAY --crop-scale 0.08" "mixup04|4e-3|$TODAY --mixup 0.4" "balance|4e-3|$TODAY --balance"
          "today|1.5e-3|$TODAY" "reconstruct+distill|1.5e-3|$RECON $TODAY"
          "reconstruct+balance|4e-3|$RECON $TODAY --balance")
mkdir -p "$RUN"
touch "$OUT"
for v in "${VARIANTS[@]}"; do
  IFS='|' read -r name rate added <<< "$v"
  if [ $# -gt 0 ] && [[ ! " $* " =~ " $name@$rate " ]]; then continue; fi
  file=$RUN/$name@$rate.sqz
  # shellcheck disable=SC2086  # $added is a list of options
  [ -f "$file" ] || squeezenet compress --weights "$NET" --profile none --init optimal --rate "$rate" --rdo \
      --fisher-batches 8 --data "$S/data/imagenette2/train" --train-limit 2000 $added --out "$file"
  line=$(squeezenet evaluate --weights "$file" --reference "$NET" --data "$S/data/imagenet-val-1300" \
      "$S/data/imagenet-sample-750" --json)
  grep -v "\"variant\": \"$name\", \"rate\": $rate," "$OUT" > "$OUT.tmp" || true
  echo "{\"variant\": \"$name\", \"rate\": $rate, \"added\": \"$added\", \"bytes\": $(stat -c %s "$file"), ${line#\{}" >> "$OUT.tmp"
  mv "$OUT.tmp" "$OUT"
done
# Recipes against today's directly, image by image on the same images (a sharper test than two differences to the
# 8-bit model): reconstruction-pairs.jsonl, a line per pair {"variant", "rate", then evaluate's fields}.
PAIRS=results/compress/reconstruction-pairs.jsonl
touch "$PAIRS"
for p in balance@4e-3 reconstruct+distill@4e-3; do
  if [ $# -gt 0 ] && [[ ! " $* " =~ " $p " ]]; then continue; fi
  name=${p%@*} rate=${p#*@}
  [ -f "$RUN/today@$rate.sqz" ] || { echo "no $RUN/today@$rate.sqz: $p not compared with today's" >&2; continue; }
  line=$(squeezenet evaluate --weights "$RUN/$p.sqz" --reference "$RUN/today@$rate.sqz" \
      --data "$S/data/imagenet-val-1300" "$S/data/imagenet-sample-750" --json)
  grep -v "\"variant\": \"$name\", \"rate\": $rate," "$PAIRS" > "$PAIRS.tmp" || true
  echo "{\"variant\": \"$name\", \"rate\": $rate, ${line#\{}" >> "$PAIRS.tmp"
  mv "$PAIRS.tmp" "$PAIRS"
done
