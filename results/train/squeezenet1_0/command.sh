#!/bin/bash
# SqueezeNet v1.0 from scratch on Imagenette: one process, 1 thread (the other core ran the design-space sweeps),
# recipe `bn`, 128 px, 10 epochs; then the same weights evaluated at 128 and 160 px.
. .venv/bin/activate  # from the repository root
export OMP_NUM_THREADS=1
squeezenet train --model squeezenet1_0 --data ../shared/data/imagenette2 --out runs/squeezenet1_0 \
  --epochs 10 --batch-size 128 --lr 0.1 --warmup-epochs 1 --label-smoothing 0.1 --image-size 128 \
  --batch-norm --no-final-relu --checkpoint-every 20 --threads 1
for s in 128 160; do
  squeezenet evaluate --weights runs/squeezenet1_0/model.safetensors --data ../shared/data/imagenette2/val \
    --image-size $s --json
done > results/train/squeezenet1_0/test_resolution.jsonl
