#!/bin/bash
# The three sweeps of the paper's Section 5-6 on Imagenette: 64 px, 5 epochs, recipe `bn` (the training default),
# one configuration at a time on 1 thread. They share one runs folder (outside the repository: checkpoints), so
# v1.0 (SR 0.125 = bypass none) and SR 0.5 / pct3x3 0.5 are each trained once.
. .venv/bin/activate  # from the repository root
set -e
for sweep in sr pct3x3 bypass; do
  squeezenet explore --sweep $sweep --data ../shared/data/imagenette2 --out results/explore/$sweep \
    --runs ../runs/explore --epochs 5 --image-size 64 --threads 1
done
# run-to-run noise: vanilla and simple bypass again with another seed (own runs folder: other arguments)
squeezenet explore --sweep bypass --values none simple --data ../shared/data/imagenette2 \
  --out results/explore/bypass-seed1 --runs ../runs/explore-seed1 --epochs 5 --image-size 64 --seed 1 --threads 1
