#!/usr/bin/env bash
# Issue 32's transfer measurements: the authors' ImageNet model as the start, three Imagenette classes as a user's
# photos (tench, English springer, chain saw: 2,776 train / 1,168 val images), and the same with 40 photos per class.
# Each row: a `squeezenet train` run, then `squeezenet evaluate` of its weights on the same val folder (the two
# figures must agree). Writes results/train/transfer/runs.jsonl. Usage: results/train/transfer/measure.sh [WORK_DIR]
# [NAME...] (runs in WORK_DIR, default ../runs/transfer; SQUEEZENET_SHARED overrides ../shared).
set -euo pipefail
cd "$(dirname "$0")/../../.."
S=${SQUEEZENET_SHARED:-../shared}
WORK=${1:-../runs/transfer}
shift || true
NET=$S/weights/deep-compression-squeezenet-v1.0/compressed_SqueezeNet.net
OUT=results/train/transfer/runs.jsonl
CLASSES="n01440764 n02102040 n03000684"
for d in mydata few; do  # the user's folders, as symlinks to Imagenette
  for c in $CLASSES; do
    mkdir -p "$WORK/$d/train/$c" "$WORK/$d/val/$c"
    n=$([ $d = few ] && echo 40 || echo 100000)
    ls "$S/data/imagenette2/train/$c" | sort | sed -n "1,${n}p" | while read -r f; do
      ln -sf "$(realpath "$S/data/imagenette2/train/$c/$f")" "$WORK/$d/train/$c/$f"; done
    ls "$S/data/imagenette2/val/$c" | while read -r f; do
      ln -sf "$(realpath "$S/data/imagenette2/val/$c/$f")" "$WORK/$d/val/$c/$f"; done
  done
done
# name|data|flags (old-defaults: the README's command before issue 32, whose default recipe was bn; lr0.01-*: the
# flags results/train/finetune_authors_v1_0 used; defaults*: the transfer recipe, features frozen, at the
# weights' 227 px; all-layers: the whole network trained, at a tenth of its rate)
RUNS=("old-defaults|mydata|--recipe bn --freeze-features --epochs 2 --image-size 96"
      "lr0.01-96|mydata|--recipe bn --freeze-features --epochs 2 --image-size 96 --lr 0.01 --warmup-epochs 0.2"
      "lr0.01-128|mydata|--recipe bn --freeze-features --epochs 2 --image-size 128 --lr 0.01 --warmup-epochs 0.2"
      "defaults|mydata|--epochs 2"
      "test-few|few|--epochs 3 --image-size 128"  # tests/test_transfer.py's command
      "all-layers|mydata|--no-freeze-features --lr 0.001 --epochs 2")
mkdir -p "$WORK/runs"
touch "$OUT"
for r in "${RUNS[@]}"; do
  IFS='|' read -r name data flags <<< "$r"
  if [ $# -gt 0 ] && [[ ! " $* " =~ " $name " ]]; then continue; fi
  run=$WORK/runs/$name
  # shellcheck disable=SC2086  # $flags is a list of options
  [ -f "$run/model.safetensors" ] || squeezenet --quiet train --init-from "$NET" --data "$WORK/$data" --out "$run" \
      $flags --overwrite > "$run.log" 2>&1
  train=$(tail -n 1 "$run/metrics.jsonl")
  eval=$(squeezenet evaluate --weights "$run/model.safetensors" --data "$WORK/$data/val" --json)
  grep -v "\"name\": \"$name\"," "$OUT" > "$OUT.tmp" || true
  echo "{\"name\": \"$name\", \"data\": \"$data\", \"flags\": \"$flags\", \"train\": $train, \"evaluate\": $eval}" >> "$OUT.tmp"
  mv "$OUT.tmp" "$OUT"
done
