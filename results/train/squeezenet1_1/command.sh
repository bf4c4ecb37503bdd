#!/bin/bash
# SqueezeNet v1.1 from scratch on Imagenette: 2 processes x 1 thread through torchrun (gloo), global batch 128.
. .venv/bin/activate  # from the repository root
export OMP_NUM_THREADS=1
torchrun --standalone --nproc-per-node 2 -m squeezenet train --model squeezenet1_1 \
  --data ../shared/data/imagenette2 --out runs/squeezenet1_1 \
  --epochs 40 --batch-size 128 --lr 0.1 --warmup-epochs 1 --label-smoothing 0.1 --image-size 128 \
  --batch-norm --no-final-relu --checkpoint-every 20 --threads 1
