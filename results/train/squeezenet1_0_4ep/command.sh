#!/bin/bash
# SqueezeNet v1.0 from scratch on Imagenette, the default (bn) recipe, only 4 epochs (the time left after v1.1).
. .venv/bin/activate  # from the repository root
export OMP_NUM_THREADS=1
torchrun --standalone --nproc-per-node 2 -m squeezenet train --model squeezenet1_0 \
  --data ../shared/data/imagenette2 --out runs/squeezenet1_0 \
  --epochs 4 --batch-size 128 --lr 0.1 --warmup-epochs 0.5 --label-smoothing 0.1 --image-size 128 \
  --batch-norm --no-final-relu --checkpoint-every 20 --threads 1
