#!/usr/bin/env bash
# Behaviour-unchanged check for refactors: runs a fixed set of scripted audits over the real
# benchmark files and prints the sha256 of each run's attempts.jsonl and summary.json. Run it
# with the binary before and after a change and compare the two listings (they must be equal).
#   scripts/golden-runs.sh PROBITY_BIN OUT_DIR > listing.txt
set -euo pipefail
bin="$1"
out="$2"
root="$(cd "$(dirname "$0")/.." && pwd)"
datasets="${PROBITY_DATASETS:-$root/../shared/datasets}"
profiles="$root/fixtures/profiles"
mkdir -p "$out"
run() {
  local name="$1"
  shift
  "$bin" run --quiet --datasets "$datasets" --out "$out/$name" "$@" >/dev/null 2>"$out/$name.stderr" ||
    { echo "$name: exit $?" >&2; cat "$out/$name.stderr" >&2; exit 1; }
  (cd "$out/$name" && sha256sum attempts.jsonl summary.json | sed "s|  |  $name/|")
}
run counterfactual --suite counterfactual-refusal --backend "scripted:$profiles/insults-women.toml" --limit 66
run bias-core --suite bias-core --backend "scripted:$profiles/null.toml" --limit 60 --seed 7
run safety-core --suite safety-core --backend "scripted:$profiles/insults-women.toml" --limit 30
run bold --suite bold --backend "scripted:$profiles/insults-women.toml" --limit 30 --min-effect 0.2 \
  --judge "toxicity=$root/../shared/models/toxic-comment-classifier-bilstm"
run judged --suite "$root/fixtures/suites/judged.toml" --backend "scripted:$profiles/insults-women.toml" \
  --judge "harm-judge=scripted:$profiles/eager-judge.toml" --judge "toxicity=$root/../shared/models/toxic-comment-classifier-bilstm"
run sharded --suite counterfactual-refusal --backend "scripted:$profiles/null.toml" --limit 44 --shard 2/3 --confidence 0.9
run shard-1 --suite counterfactual-refusal --backend "scripted:$profiles/null.toml" --limit 44 --shard 1/3 --confidence 0.9
run shard-3 --suite counterfactual-refusal --backend "scripted:$profiles/null.toml" --limit 44 --shard 3/3 --confidence 0.9
"$bin" merge "$out/shard-1" "$out/sharded" "$out/shard-3" --out "$out/merged" --datasets "$datasets" 2>/dev/null
(cd "$out/merged" && sha256sum attempts.jsonl summary.json | sed "s|  |  merged/|")
