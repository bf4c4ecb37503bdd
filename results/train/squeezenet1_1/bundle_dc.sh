#!/bin/bash
# The bundled model's Deep Compression version (issue 16: it must fit a 512 KB-flash microcontroller): the previous
# bundle (the 40-epoch v1.1, 8-bit, unpruned, 721,468 bytes; test_resolution.sh) pruned to Table 1's densities
# (gradually, AGP, while retraining 6 epochs), clustered to 6 bits (exact k-means), its centroids fine-tuned 2 epochs,
# with labels and the uncompressed model's soft targets, on all 9,469 Imagenette train images; then evaluated on
# all 3,925 val images at its size (160 px) and at the C engine's 128 px. About 1.5 hours on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/../../.."  # the repository root
. .venv/bin/activate
mkdir -p runs/bundle
git show 82c4b6c:src/squeezenet/assets/squeezenet1_1-imagenette.sqz > runs/bundle/imagenette-8bit.sqz
squeezenet --quiet compress --weights runs/bundle/imagenette-8bit.sqz --profile table1 --init optimal \
  --data ../shared/data/imagenette2 --train-limit 9469 --retrain-epochs 6 --finetune-epochs 2 --loss both \
  --out src/squeezenet/assets/squeezenet1_1-imagenette.sqz --json > results/train/squeezenet1_1/bundle_dc.json
for s in 160 128; do
  squeezenet evaluate --weights src/squeezenet/assets/squeezenet1_1-imagenette.sqz \
    --data ../shared/data/imagenette2/val --image-size $s --json
done > results/train/squeezenet1_1/bundle_dc_eval.jsonl
