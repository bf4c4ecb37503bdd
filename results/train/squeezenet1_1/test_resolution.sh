#!/bin/bash
# The 40-epoch v1.1 (trained on 128 px random-resized crops) evaluated at several input sizes (resize 8/7, centre
# crop): objects look larger in training crops than in a centre crop of the same size (Touvron et al. 2019,
# "FixRes"), so the net is best tested above its training size. Then the bundled model: stored at 160 px, 8 bit.
. .venv/bin/activate  # from the repository root
W=runs/squeezenet1_1/model.safetensors
for s in 128 144 160 176; do
  squeezenet evaluate --weights $W --data ../shared/data/imagenette2/val --image-size $s --json
done > results/train/squeezenet1_1/test_resolution.jsonl
squeezenet convert $W --out runs/squeezenet1_1/model160.safetensors --image-size 160
squeezenet compress --weights runs/squeezenet1_1/model160.safetensors --profile none --bits 8 \
  --out src/squeezenet/assets/squeezenet1_1-imagenette.sqz                    # 721,468 bytes
squeezenet evaluate --weights src/squeezenet/assets/squeezenet1_1-imagenette.sqz \
  --data ../shared/data/imagenette2/val --json >> results/train/squeezenet1_1/test_resolution.jsonl
