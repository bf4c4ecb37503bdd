#!/bin/bash
# A search for a 40 KB-RAM part: the most accurate SqueezeNet whose C-engine firmware needs <= 40,960 B of RAM
# (what v1.1 needs at 128 px: 39,688 B), on Imagenette at 64 px, 5 epochs each (the sweeps' protocol), 16
# configurations trained by two workers on one machine, 1 thread each; the training runs live outside the repository
# (a configuration already trained there with the same arguments is reused, not trained again).
. .venv/bin/activate  # from the repository root
set -e
squeezenet explore --search --objective ram --max-ram 40K --sizes 64 --trials 16 --epochs 5 \
  --data ../shared/data/imagenette2 --out results/explore/search --runs ../runs/search --workers 2 --threads 1
# the verdict, two seeds: v1.1, the front's most accurate configuration and its most accurate one needing less RAM
# than v1.1 (the one that would dominate v1.1 if as accurate) trained again with --seed 1, and each compared with v1.1
# of the same seed image by image on the 3,925 Imagenette val images (agreement, paired difference, its 95% interval)
front() {  # the run folder of the front's most accurate row meeting a condition on r (a csv row) and v (v1.1's row)
  python -c "import csv; rows = list(csv.DictReader(open('results/explore/search/pareto.csv')))
v = next(r for r in rows if r['reference'] == 'v1.1')
print(max((r for r in rows if (r['on_front'] == '1' or r is v) and ($1)), key=lambda r: float(r['top1']))['run_dir'])"
}
v11=$(front "r['reference'] == 'v1.1'")
best=$(front "True")
below=$(front "int(r['ram']) < int(v['ram'])")
for run in "$v11" "$best" "$below"; do  # a run already there is resumed (a finished one is left as it is)
  if [ -d "$run-seed1" ]; then squeezenet train --resume "$run-seed1"
  else squeezenet train $(sed -n '1s/^\$ [^ ]* -m squeezenet train //; 1s/ --out .*//p' "$run/train.log") \
      --seed 1 --out "$run-seed1"; fi
done
: > results/explore/search/verdict.jsonl.tmp
for pair in "best|$best" "below|$below"; do
  for seed in 0 1; do
    run=${pair#*|}; suffix=$([ $seed = 1 ] && echo -seed1 || true)
    line=$(squeezenet evaluate --weights "$run$suffix/model.safetensors" --reference "$v11$suffix/model.safetensors" \
      --data ../shared/data/imagenette2/val --json)
    echo "{\"pair\": \"${pair%%|*}\", \"seed\": $seed, ${line#\{}" >> results/explore/search/verdict.jsonl.tmp
  done
done
mv results/explore/search/verdict.jsonl.tmp results/explore/search/verdict.jsonl
