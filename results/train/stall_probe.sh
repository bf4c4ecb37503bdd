#!/bin/bash
# Stall probe: 1 epoch of Imagenette at 96 px per recipe, single thread; the first epoch shows whether loss moves.
. .venv/bin/activate  # from the repository root
C="python -m squeezenet train --model squeezenet1_1 --data ../shared/data/imagenette2 --epochs 1 --batch-size 64 --image-size 96 --warmup-epochs 0.3 --threads 1 --seed 0"
$C --out /tmp/h2/probe/paper-init-lr0.04 --init paper --lr 0.04
$C --out /tmp/h2/probe/tv-init-lr0.01 --lr 0.01
$C --out /tmp/h2/probe/no-final-relu-lr0.04 --no-final-relu --lr 0.04
$C --out /tmp/h2/probe/bn-no-final-relu-lr0.1 --batch-norm --no-final-relu --lr 0.1
