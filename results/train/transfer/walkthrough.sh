#!/usr/bin/env bash
# Issue 32's walk-through: the quick start's and the microcontroller tutorial's commands, in a fresh clone, with
# three Imagenette classes as the user's photos (measure.sh's `mydata`, made first if missing). Prints what a user
# reads: the transfer recipe and figure, evaluate's figure, the folders export calibrated and checked on, the one
# C-engine flash figure (compress, summary, export) and the board's output under QEMU for 3 classes.
# Usage: results/train/transfer/walkthrough.sh [CLONE_DIR] (default /tmp/squeezenet-walk; SQUEEZENET_SHARED
# overrides ../shared; run from the repository root with the venv's squeezenet on PATH)
set -euo pipefail
cd "$(dirname "$0")/../../.."
S=$(realpath "${SQUEEZENET_SHARED:-../shared}")
DIR=${1:-/tmp/squeezenet-walk}
[ -d ../runs/transfer/mydata ] || results/train/transfer/measure.sh ../runs/transfer none
DATA=$(realpath ../runs/transfer/mydata)
rm -rf "$DIR" && git clone -q . "$DIR" && cd "$DIR"
export SQUEEZENET_SHARED=$S
ln -s "$DATA" mydata
cp "$(find "$DATA/val/n01440764/" -name '*.JPEG' | sort | head -n 1)" photo.jpg
set -x
squeezenet train --init-from "$S/weights/deep-compression-squeezenet-v1.0/compressed_SqueezeNet.net" \
    --data mydata --out runs/mine --epochs 2
squeezenet evaluate --weights runs/mine/model.safetensors --data mydata/val
squeezenet export runs/mine/model.safetensors --format onnx --int8 --out mine.int8.onnx
squeezenet predict mine.int8.onnx photo.jpg
squeezenet compress --weights runs/mine/model.safetensors --out mine.sqz
squeezenet summary --weights mine.sqz
squeezenet export mine.sqz --format c --target cortex-m4 --out fw
make -C fw && make -C fw run
