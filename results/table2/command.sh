#!/bin/bash
# Table 2 on Imagenette: every row trained and compressed by the project's own commands, from the repository root.
# The two trained networks (same budget: 10 epochs at 128 px) come from
#   results/table2/alexnet/command.sh        -> runs/alexnet/model.safetensors      (AlexNet fp32)
#   results/train/squeezenet1_0/command.sh   -> runs/squeezenet1_0/model.safetensors (SqueezeNet v1.0 fp32)
# Every compression gets the same budget for both networks: 3 epochs of gradual pruning with retraining (or 1 epoch
# of fine-tuning after SVD), then 1 epoch of centroid fine-tuning after quantization, on all 9,469 train images;
# 1,000 random val images only report a score per stage (the table's figures are on all 3,925).
. .venv/bin/activate
set -e
D=../shared/data/imagenette2
R=runs/table2
mkdir -p $R
C="--data $D --train-limit 9469 --eval-data $D/val --eval-limit 1000"
ln -sfn ../alexnet/model.safetensors $R/alexnet.safetensors
ln -sfn ../squeezenet1_0/model.safetensors $R/squeezenet.safetensors
# SVD (Denton et al.): fc6 and fc7 at rank 256, fine-tuned 1 epoch by distillation
squeezenet compress --weights $R/alexnet.safetensors --svd 256 --retrain-epochs 1 --no-quantize $C \
  --out $R/alexnet-svd.safetensors --json > results/table2/compress/alexnet-svd.json
# network pruning (Han et al. 2015's densities), gradual, retrained on labels and the unpruned model's soft targets
squeezenet compress --weights $R/alexnet.safetensors --profile alexnet --retrain-epochs 3 --loss both --no-quantize $C \
  --out $R/alexnet-pruned.safetensors --json > results/table2/compress/alexnet-pruned.json
# Deep Compression = that pruned model, 8-bit conv / 5-bit fc trained quantization, entropy coded
squeezenet compress --weights $R/alexnet-pruned.safetensors --profile none --bits 8 --fc-bits 5 --init optimal \
  --finetune-epochs 1 --loss both $C --out $R/alexnet-dc.sqz --json > results/table2/compress/alexnet-dc.json
# SqueezeNet: Table 1's densities, the same retraining, then 8 and 6 bits
squeezenet compress --weights $R/squeezenet.safetensors --profile table1 --retrain-epochs 3 --loss both --no-quantize \
  $C --out $R/squeezenet-pruned.safetensors --json > results/table2/compress/squeezenet-pruned.json
for b in 8 6; do
  squeezenet compress --weights $R/squeezenet-pruned.safetensors --profile none --bits $b --init optimal \
    --finetune-epochs 1 --loss both $C --out $R/squeezenet-dc$b.sqz --json > results/table2/compress/squeezenet-dc$b.json
done
# the table: sizes as the paper counts them, top-1/top-5 on all 3,925 val images -> results/table2/table2.json
(cd $R && python ../../benchmarks/table2_imagenette.py --alexnet alexnet.safetensors --svd alexnet-svd.safetensors \
  --pruned alexnet-pruned.safetensors --deep-compression alexnet-dc.sqz --squeezenet squeezenet.safetensors \
  --squeezenet-dc8 squeezenet-dc8.sqz --squeezenet-dc6 squeezenet-dc6.sqz --data ../../$D/val \
  --out ../../results/table2/table2.json)
# why the AlexNet ratios depend on the input size and classes (untrained networks, sizes only)
python benchmarks/alexnet_sizes.py --out results/table2/alexnet_sizes.json
# SqueezeNet with longer retraining after pruning (results/table2/squeezenet-retrain/)
for e in 6 12; do
  squeezenet compress --weights $R/squeezenet.safetensors --profile table1 --retrain-epochs $e --loss both \
    --no-quantize $C --out $R/squeezenet-pruned$e.safetensors --json > results/table2/squeezenet-retrain/squeezenet-pruned$e.json
  for b in 8 6; do
    squeezenet compress --weights $R/squeezenet-pruned$e.safetensors --profile none --bits $b --init optimal \
      --finetune-epochs 1 --loss both $C --out $R/squeezenet-r$e-dc$b.sqz --json \
      > results/table2/squeezenet-retrain/squeezenet-r$e-dc$b.json
  done
done
for f in squeezenet-pruned.safetensors squeezenet-pruned{6,12}.safetensors squeezenet-r{6,12}-dc{8,6}.sqz; do
  squeezenet evaluate --weights $R/$f --data $D/val --json; done > results/table2/squeezenet-retrain/evaluate.jsonl
