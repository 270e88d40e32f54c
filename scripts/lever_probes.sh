#!/usr/bin/env bash
# Issue 16's first lever probes: ft rationale alone (no iterations, no ft SI. demo), on the dev set
# (eval.set=dev: questions of their own seed, never the test set), one probe at a time (two
# CPU-bound runs at once slow each other far more than twice). Each writes OUT/<name>/results.json;
# aggregate a lever over its seeds with: python scripts/aggregate.py OUT/<name>_s*
#   bash scripts/lever_probes.sh [OUT]          (default OUT: outputs/lever_probes)
# Wall times on the 2-core AMD EPYC (avx512_bf16): about 4 min a 5-epoch probe, 8 min a 10-epoch one.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-outputs/lever_probes}
PY=${PY:-.venv/bin/python}
probe() {
  local name=$1; shift
  "$PY" run.py eval.set=dev tripost.num_iterations=0 baselines.ft_si_demo=false logger=none "$@" \
    hydra.run.dir="$OUT/$name" > "$OUT/$name.log" 2>&1
  echo "$name: $(grep -m1 '| ft_rationale |' "$OUT/$name/results.md" | cut -d'|' -f3-5)"
}
mkdir -p "$OUT"
for seed in 1 2 3; do
  probe "word_sort_default_s$seed" seed=$seed
  probe "word_sort_epochs10_s$seed" seed=$seed sft.epochs=10
done
probe word_sort_4x192_s1 seed=1 model.arch.num_layers=4 model.arch.hidden_size=192 model.arch.intermediate_size=768
probe arithmetic_default_s1 seed=1 task=multistep_arithmetic
