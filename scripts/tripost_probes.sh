#!/usr/bin/env bash
# Issue 16's second round of probes: the TriPosT rows on top of a 10-epoch ft rationale, on the
# dev set (eval.set=dev), one run at a time (two CPU-bound runs at once slow each other far more
# than twice). Every run writes OUT/<name>/results.md; aggregate seeds with
#   python scripts/aggregate.py OUT/heldout_s1 OUT/heldout_s2 OUT/heldout_s3
#   bash scripts/tripost_probes.sh [OUT]          (default OUT: outputs/tripost_probes)
# Wall times on the 2-core AMD EPYC (avx512_bf16): a full run about 16 min (ft rationale 8 of
# them); a probe resumed from a finished ft rationale 2-6 min.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-outputs/tripost_probes}
PY=${PY:-.venv/bin/python}
mkdir -p "$OUT"
row() { grep -m1 "| $2 |" "$OUT/$1/results.md" | cut -d'|' -f1-13; }

# 1. The whole loop, three seeds: 4,800 questions, the last 800 the held-out window, so ft
#    rationale trains on 4,000 (10 epochs) and the rollouts are on questions it never saw.
for seed in 1 2 3; do
  "$PY" run.py eval.set=dev logger=none seed=$seed sft.epochs=10 task.train.size=4800 tripost.window_held_out=true \
    hydra.run.dir="$OUT/heldout_s$seed" > "$OUT/heldout_s$seed.log" 2>&1
  cat "$OUT/heldout_s$seed/results.md" | tail -5
done

# 2. One lever at a time on seed 1's ft rationale: a copy of the run with only ft rationale
#    finished, resumed with other TriPosT settings (resume keeps the questions and the model).
base() {  # OUT/base_s1: seed 1's run, cut back to ft rationale
  rm -rf "$OUT/base_s1" && mkdir -p "$OUT/base_s1"
  cp -r "$OUT/heldout_s1"/{data,ft_rationale,init_model,run_config.yaml,run_choices.yaml} "$OUT/base_s1/"
  "$PY" - "$OUT/heldout_s1/results.json" "$OUT/base_s1/results.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1])); r["rows"] = [x for x in r["rows"] if x["method"] == "ft_rationale"]
json.dump(r, open(sys.argv[2], "w"), indent=1)
PY
}
probe() {  # probe NAME overrides...: ft SI. demo alone (the fastest row that trains on feedback)
  local name=$1; shift
  rm -rf "${OUT:?}/$name" && cp -r "$OUT/base_s1" "$OUT/$name"
  "$PY" run.py resume="$OUT/$name" tripost.num_iterations=0 baselines.ft_si_demo=true "$@" > "$OUT/$name.log" 2>&1
  echo "$name ($*): $(row "$name" ft_si_demo)"
}
base
probe sid_lr2e-4 tripost.train.lr=2e-4
probe sid_waw0 tripost.train.wrong_attempt_weight=0
probe sid_waw0_lr2e-4 tripost.train.wrong_attempt_weight=0 tripost.train.lr=2e-4
probe sid_waw0_lr5e-5 tripost.train.wrong_attempt_weight=0 tripost.train.lr=5e-5
probe sid_waw0_gold4 tripost.train.wrong_attempt_weight=0 tripost.gold_ratio=4 tripost.max_data_length=2000
probe sid_waw0_gold4_lr2e-4 tripost.train.wrong_attempt_weight=0 tripost.gold_ratio=4 tripost.max_data_length=2000 \
  tripost.train.lr=2e-4

# 3. The control: the same training round on gold rationales alone (1,000 of the pool, with the
#    positive feedback appended, as gold examples are), written as the stage's collected data.
rm -rf "$OUT/gold_only" && cp -r "$OUT/base_s1" "$OUT/gold_only" && mkdir -p "$OUT/gold_only/ft_si_demo"
"$PY" - "$OUT/sid_waw0_gold4/ft_si_demo/train.jsonl" "$OUT/gold_only/ft_si_demo" <<'PY'
import json, sys
gold = [r for r in map(json.loads, open(sys.argv[1])) if r["kind"] == "gold"][:1000]
with open(sys.argv[2] + "/train.jsonl", "w") as f:
    f.writelines(json.dumps(r) + "\n" for r in gold)
json.dump({"examples": len(gold), "gold": len(gold)}, open(sys.argv[2] + "/stats.json", "w"))
PY
"$PY" run.py resume="$OUT/gold_only" tripost.num_iterations=0 baselines.ft_si_demo=true > "$OUT/gold_only.log" 2>&1
echo "gold_only: $(row gold_only ft_si_demo)"

# 4. The whole loop at the lower iteration lr (seed 1).
rm -rf "${OUT:?}/loop_lr2e-4" && cp -r "$OUT/base_s1" "$OUT/loop_lr2e-4"
"$PY" run.py resume="$OUT/loop_lr2e-4" tripost.num_iterations=3 baselines.ft_si_demo=true tripost.train.lr=2e-4 \
  > "$OUT/loop_lr2e-4.log" 2>&1
tail -5 "$OUT/loop_lr2e-4/results.md"
