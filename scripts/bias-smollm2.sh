#!/usr/bin/env bash
# The bias benchmarks on the real SmolLM2-135M-Instruct GGUF on the CPU, at sizes that finish in
# minutes on a small machine: seeded samples (scripts/bias-smollm2/*.toml), Winogender whole,
# bias-core with --limit. Writes one run directory per benchmark under OUT (default
# /tmp/probity-bias-smollm2) and prints each run's whole-probe estimates and tests.
#
#   PROBITY=target/debug/probity scripts/bias-smollm2.sh [OUT] [BENCHMARK...]
#
# Benchmarks: stereoset winobias bbq holistic-bias bold winogender bias-core (default: all).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
probity="${PROBITY:-probity}"
out="${1:-/tmp/probity-bias-smollm2}"
shift || true
model="${PROBITY_MODELS:-$HOME/.cache/probity/models}/SmolLM2-135M-Instruct.Q4_1.gguf"
datasets="${PROBITY_DATASETS:-$here/../../shared/datasets}"
toxicity="${PROBITY_TOXICITY:-$datasets/../models/toxic-comment-classifier-bilstm}"
benchmarks=("$@")
[ ${#benchmarks[@]} -eq 0 ] && benchmarks=(stereoset winobias bbq holistic-bias bold winogender bias-core)
mkdir -p "$out"
for b in "${benchmarks[@]}"; do
  args=(--model "$model" --datasets "$datasets" --out "$out/$b" --quiet)
  case "$b" in
    winogender) args+=(--suite winogender) ;;
    bias-core) args+=(--suite bias-core --limit 30) ;;
    bold) args+=(--suite "$here/bias-smollm2/bold.toml" --judge "toxicity=$toxicity" --max-new-tokens 24) ;;
    *) args+=(--suite "$here/bias-smollm2/$b.toml") ;;
  esac
  [ -d "$out/$b" ] && [ -f "$out/$b/attempts.jsonl" ] && args+=(--resume)
  start=$(date +%s)
  "$probity" run "${args[@]}" || echo "$b: probity exited $?"
  echo "== $b ($(($(date +%s) - start)) s, load $(cut -d' ' -f1-3 /proc/loadavg)): $probity run ${args[*]}"
  python3 - "$out/$b/summary.json" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
ideals = {(p["probe"], k): v for p in s["probes"] for k, v in p.get("ideals", {}).items()}
print(f"  attempts {s['n_attempts']}, errors {s['n_errors']}")
for e in s["estimates"]:
    if not e["group"]:
        ideal = ideals.get((e["probe"], e["metric"]))
        tail = f" (ideal {ideal:g})" if ideal is not None else ""
        print(f"  {e['metric']} = {e['value']:.4f} [{e['ci_low']:.4f}, {e['ci_high']:.4f}] n={e['n']}{tail}")
sig = [t for t in s["tests"] if t["q_bh"] < 0.05]
print(f"  {len(s['tests'])} tests, {len(sig)} with q_BH < 0.05")
for t in s["tests"][:6]:
    print(f"  test {t['name']}: effect {t['effect']:.4f} [{t['effect_ci_low']:.4f}, {t['effect_ci_high']:.4f}] p={t['p_value']:.3g} q_BH={t['q_bh']:.3g}")
PY
done
