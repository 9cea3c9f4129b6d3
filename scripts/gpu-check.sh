#!/usr/bin/env bash
# The GPU check of the candle backend against transformers on the same device, in one command.
#
#   scripts/gpu-check.sh prepare [DATA_DIR]            (here, on any machine: default .gpu)
#   scripts/gpu-check.sh run OUT_DIR [--device cuda:0|cpu] [--tiny] [--data DATA_DIR]
#
# `prepare` gathers what a GPU machine without network needs into DATA_DIR (about 10 MiB plus
# the binaries): the CrowS-Pairs file, BBQ's Religion category, 64 chat prompts (XSTest's first
# 64), two tokenizers exported from the GGUF files by transformers (SmolLM2's for the Llama-shaped
# model, Qwen2.5's for the Qwen-shaped one) and the CUDA binaries of scripts/build-cuda.sh (when
# dist/cuda-sm90 has them). It needs ~/.cache/probity/venv-torch and the models of
# scripts/fetch-models.sh smollm2 qwen0.5b.
#
# `run` then, for each of two seeded random models of real shapes (Llama-3.2-1B, Qwen2.5-1.5B;
# `--tiny`: two-layer models of the same families, for the CPU dry run in CI), written as HF
# folders by transformers:
#   - transformers and candle (the `bench_candle` example) each score the same CrowS-Pairs
#     sentences and BBQ items and greedily generate 128 tokens for 64 prompts, in f32 and bf16;
#   - `scripts/gpu-check.py compare` reports the agreement (f32: within 1e-3 nats, the same
#     greedy tokens except where transformers' own top-2 logits are within 1e-3) and tokens/s;
#   - peak GPU memory of each process is sampled with nvidia-smi every 50 ms (GPU runs only);
# and finally runs `probity run --device ...` twice on crows-pairs and counterfactual-refusal with
# the first model (Qwen-shaped) and checks that the two attempts.jsonl are byte-identical.
# Everything lands in OUT_DIR: results.json (all numbers), log.txt (every command's output).
#
# Environment: PYTHON (default python3: the one with torch), PROBITY_BIN and BENCH_BIN (default:
# DATA_DIR/bin/{probity,bench_candle}), GPU_CHECK_SENTENCES (3016), GPU_CHECK_BBQ_ITEMS (1200),
# GPU_CHECK_GEN_TOKENS (128).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"

die() { echo "error: $*" >&2; exit 2; }

prepare() {
  local data="${1:-$root/.gpu}"
  local cache="${PROBITY_CACHE:-$HOME/.cache/probity}"
  local models="${PROBITY_MODELS:-$cache/models}"
  local datasets="${PROBITY_DATASETS:-$root/../shared/datasets}"
  local py="${PYTHON:-$cache/venv-torch/bin/python}"
  mkdir -p "$data/datasets/crows_pairs" "$data/datasets/bbq/data" "$data/tokenizers" "$data/bin"
  cp "$datasets/crows_pairs/crows_pairs_anonymized.csv" "$data/datasets/crows_pairs/" || die "no CrowS-Pairs under $datasets"
  cp "$datasets/bbq/data/Religion.jsonl" "$data/datasets/bbq/data/" || die "no BBQ under $datasets"
  "$py" - "$datasets/xstest/xstest_prompts.csv" "$data/prompts.txt" <<'EOF' || die "cannot write prompts"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1], newline="")))
open(sys.argv[2], "w").write("".join(r["prompt"].replace("\n", " ") + "\n" for r in rows[:64]))
EOF
  for pair in "smollm2:SmolLM2-135M-Instruct.Q4_1.gguf" "qwen2.5:qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"; do
    local name="${pair%%:*}" file="${pair#*:}"
    [ -f "$models/$file" ] || die "$models/$file is missing; run scripts/fetch-models.sh"
    "$py" - "$models" "$file" "$data/tokenizers/$name" <<'EOF' || die "cannot export the tokenizer of $file"
import sys
from transformers import AutoTokenizer
tok = AutoTokenizer.from_pretrained(sys.argv[1], gguf_file=sys.argv[2])
tok.save_pretrained(sys.argv[3])
EOF
  done
  local dist="$root/dist/cuda-sm${CUDA_COMPUTE_CAP:-90}"
  for bin in probity bench_candle; do
    if [ -x "$dist/$bin" ]; then cp "$dist/$bin" "$data/bin/"; fi
  done
  du -sh "$data"
}

# sample_memory FILE: nvidia-smi's used memory (MiB) every 50 ms into FILE, in the background.
sample_memory() {
  if [ "$gpu" = 1 ]; then
    nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 50 > "$1" 2>/dev/null &
    sampler=$!
  else
    sampler=""
  fi
}
stop_sampling() {
  if [ -n "$sampler" ]; then kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null; fi
}

# step NAME COMMAND...: runs one step with its output in the log; a failure is recorded, and the
# check goes on with the next step.
step() {
  local name="$1"; shift
  echo "== $name: $*" >> "$log"
  local t0=$SECONDS
  if "$@" >> "$log" 2>&1; then
    echo "{\"step\": \"$name\", \"ok\": true, \"s\": $((SECONDS - t0))}" >> "$steps"
    echo "ok   $name ($((SECONDS - t0)) s)"
  else
    echo "{\"step\": \"$name\", \"ok\": false, \"s\": $((SECONDS - t0))}" >> "$steps"
    echo "FAIL $name ($((SECONDS - t0)) s): see log.txt"
    tail -n 5 "$log"
    return 1
  fi
}

# collect: every number so far into OUT/results.json (called after each part, so that a check
# stopped at its time limit still returns what it measured).
collect() {
  "$py" - "$work" "$out/results.json" "$@" <<'EOF'
import glob, json, os, sys
work, dest = sys.argv[1], sys.argv[2]
def load(p):
    try:
        return json.load(open(p))
    except Exception as e:
        return {"error": str(e)}
def peak(p):
    vals = [int(l) for l in open(p) if l.strip().isdigit()] if os.path.exists(p) else []
    return {"baseline_mib": vals[0], "peak_mib": max(vals), "peak_minus_baseline_mib": max(vals) - vals[0]} if vals else None
res = {"steps": [json.loads(l) for l in open(os.path.join(work, "steps.jsonl"))], "compare": {}, "memory": {}}
for p in sorted(glob.glob(os.path.join(work, "cmp-*.json"))):
    res["compare"][os.path.basename(p)[4:-5]] = load(p)
for p in sorted(glob.glob(os.path.join(work, "mem-*.txt"))):
    res["memory"][os.path.basename(p)[4:-4]] = peak(p)
for p in sorted(glob.glob(os.path.join(work, "ref-*.json"))):
    r = load(p)
    res.setdefault("reference", {})[os.path.basename(p)[4:-5]] = {k: v for k, v in r.items() if not isinstance(v, list)}
for p in sorted(glob.glob(os.path.join(work, "candle-*.json"))):
    c = load(p)
    c = {k: v for k, v in c.items() if not isinstance(v, (list, dict)) or k == "bbq"}
    if isinstance(c.get("bbq"), dict):
        c["bbq"] = {k: v for k, v in c["bbq"].items() if not isinstance(v, list)}
    res.setdefault("candle", {})[os.path.basename(p)[7:-5]] = c
for r in (1, 2):
    s = os.path.join(work, f"run{r}", "summary.json")
    if os.path.exists(s):
        res.setdefault("e2e", {})[f"run{r}_summary_sha256"] = __import__("hashlib").sha256(open(s, "rb").read()).hexdigest()
json.dump(res, open(dest, "w"), indent=1)
if len(sys.argv) > 3:  # the final table
    f = lambda x: "-" if x is None else (f"{x:.3g}" if isinstance(x, float) else str(x))
    for name, c in res["compare"].items():
        if "error" in c:
            print(name, c["error"]); continue
        print(f"{name}: crows max|d| {f(c['crows_max_abs_diff'])} pref {c['crows_same_preference']}, bbq max|d| {f(c['bbq_max_abs_diff'])} argmax {c['bbq_same_argmax']}, gen identical {c['gen_identical_prompts']} diverged {c['gen_diverged'][:3]}")
        print(f"  tokens/s candle/transformers: crows {f(c['candle_crows_tokens_per_s'])}/{f(c['reference_crows_tokens_per_s'])} = {f(c['crows_ratio'])}x, bbq {f(c['candle_bbq_tokens_per_s'])}/{f(c['reference_bbq_tokens_per_s'])} = {f(c['bbq_ratio'])}x, gen {f(c['candle_gen_tokens_per_s'])}/{f(c['reference_gen_tokens_per_s'])} = {f(c['gen_ratio'])}x")
    for name, m in res["memory"].items():
        print(f"memory {name}: {m}")
    print("e2e", res.get("e2e"))
    print("failed steps:", [s["step"] for s in res["steps"] if not s["ok"]])
EOF
}

run() {
  local out="" device="cuda:0" tiny=0 data="$root/.gpu"
  while [ $# -gt 0 ]; do
    case "$1" in
      --device) device="$2"; shift 2 ;;
      --tiny) tiny=1; shift ;;
      --data) data="$2"; shift 2 ;;
      -*) die "unknown flag $1" ;;
      *) out="$1"; shift ;;
    esac
  done
  [ -n "$out" ] || die "usage: gpu-check.sh run OUT_DIR [--device D] [--tiny] [--data DIR]"
  mkdir -p "$out"
  out="$(cd "$out" && pwd)"
  data="$(cd "$data" && pwd)" || die "no data folder; run: scripts/gpu-check.sh prepare"
  local py="${PYTHON:-python3}"
  local probity="${PROBITY_BIN:-$data/bin/probity}" bench="${BENCH_BIN:-$data/bin/bench_candle}"
  [ -x "$probity" ] || die "$probity is missing (scripts/build-cuda.sh, then prepare)"
  [ -x "$bench" ] || die "$bench is missing (scripts/build-cuda.sh, then prepare)"
  local tdev="cuda"
  gpu=1
  if [ "$device" = cpu ]; then tdev=cpu; gpu=0; fi
  local sentences="${GPU_CHECK_SENTENCES:-3016}" items="${GPU_CHECK_BBQ_ITEMS:-1200}"
  local gen="${GPU_CHECK_GEN_TOKENS:-128}"
  local shapes=("qwen2.5-1.5b:qwen2.5" "llama-3.2-1b:smollm2")
  if [ "$tiny" = 1 ]; then
    shapes=("tiny-qwen2:qwen2.5" "tiny-llama:smollm2")
  fi
  work="$(mktemp -d)"
  log="$out/log.txt"; steps="$work/steps.jsonl"
  : > "$log"; : > "$steps"
  {
    echo "device $device, shapes ${shapes[*]}, $sentences sentences, $items BBQ items, $gen new tokens"
    uname -a; nproc
    [ "$gpu" = 1 ] && nvidia-smi
    "$py" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'
    ldd "$bench" | grep -E 'cuda|cublas|curand|nvrtc|not found'
  } >> "$log" 2>&1
  if [ "$gpu" = 1 ]; then
    # The CUDA libraries of the machine's PyTorch (pip's nvidia-* wheels), for the binaries.
    local libs
    libs="$("$py" -c 'import glob, os, nvidia; print(":".join(sorted({os.path.dirname(p) for d in nvidia.__path__ for p in glob.glob(d + "/**/lib*.so*", recursive=True)})))' 2>/dev/null)"
    # The driver's own folder too, where the image keeps it outside the loader's cache.
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/local/cuda/lib64; do
      [ -d "$d" ] && libs="$libs:$d"
    done
    export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH" >> "$log"
    ldd "$bench" | grep -E 'cuda|cublas|curand|nvrtc|not found' >> "$log" 2>&1
  fi
  local crows="$data/datasets/crows_pairs/crows_pairs_anonymized.csv"
  local bbq="$data/datasets/bbq/data/Religion.jsonl"
  local e2e_done=""
  for pair in "${shapes[@]}"; do
    local shape="${pair%%:*}" tok="${pair#*:}"
    local model="$work/models/$shape"
    step "make $shape" "$py" "$here/gpu-check.py" make-model "$shape" "$data/tokenizers/$tok" "$model" --device "$tdev" || continue
    for dtype in f32 bf16; do
      sample_memory "$work/mem-ref-$shape-$dtype.txt"
      step "transformers $shape $dtype" "$py" "$here/gpu-check.py" reference "$model" --dtype "$dtype" \
        --device "$tdev" --crows "$crows" --sentences "$sentences" --bbq "$bbq" --bbq-items "$items" \
        --prompts "$data/prompts.txt" --gen-tokens "$gen" --json "$work/ref-$shape-$dtype.json"
      stop_sampling
      sample_memory "$work/mem-candle-$shape-$dtype.txt"
      step "candle $shape $dtype" sh -c "\"$bench\" \"$model\" \"$crows\" --pairs --sentences $sentences \
        --bbq \"$bbq\" --bbq-items $items --prompts \"$data/prompts.txt\" --gen-tokens $gen \
        --device $device --dtype $dtype > \"$work/candle-$shape-$dtype.json\""
      stop_sampling
      step "compare $shape $dtype" "$py" "$here/gpu-check.py" compare "$work/candle-$shape-$dtype.json" \
        "$work/ref-$shape-$dtype.json" --json "$work/cmp-$shape-$dtype.json"
    done
    collect
    # End to end, twice, on the first model (the Qwen-shaped one): identical journals.
    if [ -z "$e2e_done" ]; then
      e2e_done=1
      for r in 1 2; do
        step "probity run $r" "$probity" run --suite crows-pairs,counterfactual-refusal --model "$model" \
          --device "$device" --datasets "$data/datasets" --limit 220 --max-new-tokens 32 --out "$work/run$r"
      done
      step "attempts.jsonl identical" cmp "$work/run1/attempts.jsonl" "$work/run2/attempts.jsonl"
      collect
    fi
  done
  collect final
  rm -rf "$work"
  grep -q '"ok": false' "$out/results.json" && return 1
  return 0
}

case "${1:-}" in
  prepare) shift; prepare "$@" ;;
  run) shift; run "$@" ;;
  *) die "usage: gpu-check.sh prepare [DIR] | run OUT_DIR [--device D] [--tiny] [--data DIR]" ;;
esac
