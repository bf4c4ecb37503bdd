#!/bin/bash
# Fine-tune the authors' Deep Compression SqueezeNet v1.0 (ImageNet) on Imagenette: conv10 starts from the
# 10 matching ImageNet rows; features frozen; 128 px crops with the model's own Caffe preprocessing.
. .venv/bin/activate  # from the repository root
python -m squeezenet train --init-from ../shared/weights/deep-compression-squeezenet-v1.0/compressed_SqueezeNet.net \
  --freeze-features --data ../shared/data/imagenette2 --out runs/finetune_authors_v1_0 \
  --epochs 2 --batch-size 128 --lr 0.01 --warmup-epochs 0.2 --image-size 128 --threads 1
