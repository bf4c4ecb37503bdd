#!/bin/bash
# A search for a 40 KB-RAM part: the most accurate SqueezeNet whose C-engine firmware needs <= 40,960 B of RAM
# (what v1.1 needs at 128 px: 39,688 B), on Imagenette at 64 px, 5 epochs each (the sweeps' protocol), 16
# configurations trained by two workers on one machine, 1 thread each; the training runs live outside the repository
# (a configuration already trained there with the same arguments is reused, not trained again).
. .venv/bin/activate  # from the repository root
set -e
squeezenet explore --search --objective ram --max-ram 40K --sizes 64 --trials 16 --epochs 5 \
  --data ../shared/data/imagenette2 --out results/explore/search --runs ../runs/search --workers 2 --threads 1
# the verdict, two seeds: the front's most accurate configuration and v1.1 trained again with --seed 1, and each
# pair compared image by image on the 3,925 Imagenette val images (agreement, paired difference, its 95% interval)
best=$(python -c "import csv; r = max((r for r in csv.DictReader(open('results/explore/search/pareto.csv'))
                                       if r['on_front'] == '1'), key=lambda r: float(r['top1'])); print(r['run_dir'])")
v11=$(python -c "import csv; print(next(r['run_dir'] for r in csv.DictReader(open('results/explore/search/pareto.csv'))
                                        if r['reference'] == 'v1.1'))")
for run in "$best" "$v11"; do
  [ -f "$run-seed1/done.json" ] || squeezenet train $(sed -n '1s/^\$ [^ ]* -m squeezenet train //; 1s/ --out .*//p' \
      "$run/train.log") --seed 1 --out "$run-seed1"
done
: > results/explore/search/verdict.jsonl
for seed in "" "-seed1"; do
  squeezenet evaluate --weights "$best$seed/model.safetensors" --reference "$v11$seed/model.safetensors" \
    --data ../shared/data/imagenette2/val --json >> results/explore/search/verdict.jsonl
done
