#!/usr/bin/env bash
# Installs llama.cpp's OpenAI-compatible server (llama-cpp-python[server], pinned) into a virtual
# environment outside the repo, for the openai backend's end-to-end tests (tests/openai.rs).
#
#   scripts/install-llama-server.sh
#
# The venv lands in ${PROBITY_CACHE:-$HOME/.cache/probity}/venv-llama; the tests find its python
# through PROBITY_LLAMA_PYTHON (default: that venv's bin/python). Idempotent: an existing install
# of the pinned version is left alone. The first install compiles llama.cpp (6-15 minutes on 2
# cores); pip caches the built wheel, so a later install on the same machine takes seconds.
#
# It then derives SmolLM2-135M-Instruct.F32.gguf (540 MB) in ${PROBITY_MODELS:-~/.cache/probity/models} from
# the Q4_1 file (fetched by scripts/fetch-models.sh smollm2 if absent) with llama.cpp's quantizer
# (scripts/dequantize-gguf.py): the unquantized file of the server/candle cross-check. Its sha256
# is checked; a file already there with the right hash is kept.
#
# llama.cpp's default build tunes for the build machine's CPU (GGML_NATIVE) and then dies with
# SIGILL on these virtual CPUs; the explicit instruction sets below are the ones that work here.
set -euo pipefail

version="0.3.36"
cache="${PROBITY_CACHE:-$HOME/.cache/probity}"
venv="$cache/venv-llama"
python="$venv/bin/python"

installed() {
  [ -x "$python" ] && "$python" - "$version" <<'EOF' 2>/dev/null
import sys
from importlib.metadata import version
import llama_cpp.server  # noqa: F401 (the [server] extra's imports must work too)
sys.exit(0 if version("llama_cpp_python") == sys.argv[1] else 1)
EOF
}

derive_f32() {
  local models="${PROBITY_MODELS:-$HOME/.cache/probity/models}"  # as fetch-models.sh and the tests
  local file="$models/SmolLM2-135M-Instruct.F32.gguf"
  local sha=6532799f494167f79cf75f7de685ad44fe6a1fe1a9cd41d7a2cd9603e64d4b9b
  if [ -f "$file" ] && [ "$(sha256sum "$file" | cut -d' ' -f1)" = "$sha" ]; then
    echo "smollm2 f32: cached at $file"
    return
  fi
  PROBITY_MODELS="$models" "$(dirname "$0")/fetch-models.sh" smollm2 >/dev/null
  local log
  log="$(mktemp)"
  # llama.cpp logs every tensor on stderr: shown only when it fails.
  if ! "$python" "$(dirname "$0")/dequantize-gguf.py" "$models/SmolLM2-135M-Instruct.Q4_1.gguf" "$file" 2>"$log"; then
    tail -n 20 "$log" >&2
    rm -f "$log"
    exit 2
  fi
  rm -f "$log"
  local got
  got="$(sha256sum "$file" | cut -d' ' -f1)"
  if [ "$got" != "$sha" ]; then
    echo "error: $file has sha256 $got, expected $sha" >&2
    exit 2
  fi
  echo "smollm2 f32: $file"
}

if installed; then
  echo "llama-cpp-python[server]==$version: installed in $venv"
  derive_f32
  exit 0
fi

mkdir -p "$cache"
if [ ! -x "$python" ]; then
  python3 -m venv "$venv"
fi
export CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_AVX512=ON"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
"$python" -m pip install --quiet "llama-cpp-python[server]==$version"
if ! installed; then
  echo "error: llama-cpp-python[server]==$version did not install into $venv" >&2
  exit 2
fi
echo "llama-cpp-python[server]==$version: installed in $venv"
derive_f32
