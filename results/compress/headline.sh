#!/usr/bin/env bash
# Issue 17's headline file: the authors' ImageNet SqueezeNet v1.0 at most 300,000 bytes, from the shared weights and
# Imagenette *train* images to OUT.sqz, then its fidelity to the authors' file over both ImageNet sets pooled
# (`squeezenet evaluate --reference --json`, Caffe's protocol). The recipe is benchmarks/rate_accuracy.py's, at the
# rate of its curve that lands under 300,000 bytes:
# rate-distortion assignment, then fine-tuning that also re-assigns each weight's level (--reassign) on a transfer
# set balanced over the uncompressed model's top-1 classes (--balance: the best of reconstruction.sh's variants).
# Usage: results/compress/headline.sh OUT.sqz   (one fine-tuned point of the curve: about 8 minutes of compression
# on 2 cores; SQUEEZENET_SHARED overrides ../shared)
set -euo pipefail
[ $# -eq 1 ] || { echo "usage: $0 OUT.sqz" >&2; exit 2; }
OUT=$(realpath -m "$1")  # the path as given, before the cd below
cd "$(dirname "$0")/../.."
S=${SQUEEZENET_SHARED:-../shared}
NET=$S/weights/deep-compression-squeezenet-v1.0/compressed_SqueezeNet.net
squeezenet compress --weights "$NET" \
    --profile none --init optimal --rate 4e-3 --rdo --reassign --fisher-batches 8 --data "$S/data/imagenette2/train" \
    --train-limit 2000 --finetune-epochs 2 --lr-finetune 5e-5 --balance --out "$OUT"
ls -l "$OUT"
# fidelity to the authors' 8-bit file, image by image, over every held-out ImageNet image (2,050, pooled)
squeezenet evaluate --weights "$OUT" --reference "$NET" --data "$S/data/imagenet-val-1300" \
    "$S/data/imagenet-sample-750" --json
