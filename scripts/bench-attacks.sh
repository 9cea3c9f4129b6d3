#!/usr/bin/env bash
# The adaptive-attack benchmark of BENCHMARKS.md: PAIR, TAP and Crescendo (small budgets,
# scripts/bench/attacks.toml) on 20 JailbreakBench behaviors, next to the plain request and
# four static transforms, with Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF) as target, attacker
# and harm judge (one loaded model). Prints the table of BENCHMARKS.md.
#
#   scripts/bench-attacks.sh [BIN] [OUT]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${1:-target/release/probity}
out=${2:-runs/bench-attacks}
models=${PROBITY_MODELS:-$HOME/.cache/probity/models}
datasets=${PROBITY_DATASETS:-$here/../../shared/datasets}
model=$models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
[ -f "$model" ] || { echo "missing $model: run scripts/fetch-models.sh" >&2; exit 2; }
start=$(date +%s)
/usr/bin/time -v "$bin" run --suite "$here/bench/attacks.toml" --model "$model" \
  --attacker target --judge "harm-judge=$model" --datasets "$datasets" \
  --max-new-tokens 48 --out "$out" 2> "$out.time" || { tail -5 "$out.time" >&2; exit 1; }
echo "wall: $(( $(date +%s) - start )) s; $(grep -E 'Maximum resident' "$out.time")"
python3 "$here/bench/attacks-table.py" "$out"
