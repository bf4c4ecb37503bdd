#!/bin/bash
# AlexNet (bvlc_alexnet at 128 px: fc6 takes 256*3*3 inputs; 10 classes) from scratch on Imagenette, the same
# resolution and epochs as SqueezeNet v1.0's run (results/train/squeezenet1_0: 10 epochs at 128 px); recipe
# `alexnet` (its default: Kaiming init, SGD lr 0.01, momentum 0.9, weight decay 5e-4, label smoothing 0.1).
. .venv/bin/activate  # from the repository root
squeezenet train --model alexnet --data ../shared/data/imagenette2 --image-size 128 --epochs 10 \
  --out runs/alexnet --checkpoint-every 20 --threads 2
squeezenet evaluate --weights runs/alexnet/model.safetensors --data ../shared/data/imagenette2/val --json \
  > results/table2/alexnet/evaluate.json
