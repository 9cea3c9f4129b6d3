#!/usr/bin/env bash
# Installs llama.cpp's OpenAI-compatible server (llama-cpp-python[server], pinned) into a virtual
# environment outside the repo, for the openai backend's end-to-end tests (tests/it/openai.rs).
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
# Instruction sets: llama.cpp's default build tunes for the build machine's CPU (GGML_NATIVE,
# -march=native), which dies with SIGILL on virtual CPUs that advertise more than they run, and a
# build for AVX-512 dies the same way on a CPU without it (an AVX2-only AMD EPYC). So each x86
# switch that ggml has is set from the flags this CPU's /proc/cpuinfo lists (SSE4.2, AVX, AVX2,
# FMA, F16C, BMI2, and AVX-512 when F, CD, VL, DQ and BW are all there; the AVX-512 extensions
# VNNI/VBMI/BF16 and AMX stay off, as in every build measured). The switches are recorded in the
# venv (probity-llama-build): a venv built for another CPU, or by an older version of this script,
# is rebuilt. The built wheel is kept under $cache/llama-wheels/<switches> and pip's own wheel
# cache is bypassed, since pip keys that cache by version only and would hand an AVX-512 build to
# an AVX2 machine that shares the home folder. llama.cpp's runtime-dispatched CPU variants
# (GGML_BACKEND_DL + GGML_CPU_ALL_VARIANTS) are not used: llama-cpp-python 0.3.36 installs only a
# target named ggml-cpu and never calls ggml_backend_load_all, so its server would find no backend.
#
# PROBITY_LLAMA_CPU_FLAGS (cpuinfo flag names, space-separated) builds for another CPU than this
# one, e.g. "sse4_2 avx avx2 fma f16c bmi2" for the lowest common denominator of an AVX2 fleet.
set -euo pipefail

version="0.3.36"
cache="${PROBITY_CACHE:-$HOME/.cache/probity}"
venv="$cache/venv-llama"
python="$venv/bin/python"

# The CMake switches for the CPU whose flags are "$1" (the words of /proc/cpuinfo's flags line).
cmake_args() {
  local args="-DGGML_NATIVE=OFF"
  if [ "$(uname -m)" = x86_64 ]; then
    local have=" $1 "
    on() { case "$have" in *" $1 "*) echo ON ;; *) echo OFF ;; esac; }
    local avx512=ON flag
    for flag in avx512f avx512cd avx512vl avx512dq avx512bw; do
      [ "$(on "$flag")" = ON ] || avx512=OFF
    done
    args="$args -DGGML_SSE42=$(on sse4_2) -DGGML_AVX=$(on avx) -DGGML_AVX2=$(on avx2)"
    args="$args -DGGML_FMA=$(on fma) -DGGML_F16C=$(on f16c) -DGGML_BMI2=$(on bmi2)"
    args="$args -DGGML_AVX512=$avx512 -DGGML_AVX512_VBMI=OFF -DGGML_AVX512_VNNI=OFF"
    args="$args -DGGML_AVX512_BF16=OFF -DGGML_AVX_VNNI=OFF -DGGML_AMX_TILE=OFF"
    args="$args -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
  fi
  echo "$args"
}

cpu_flags="${PROBITY_LLAMA_CPU_FLAGS:-$(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2 || true)}"
build="llama-cpp-python==$version $(cmake_args "$cpu_flags")"
marker="$venv/probity-llama-build"

installed() {
  [ -x "$python" ] && [ -f "$marker" ] && [ "$(cat "$marker")" = "$build" ] &&
    "$python" - "$version" <<'EOF' 2>/dev/null
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
  echo "llama-cpp-python[server]==$version: installed in $venv (${build#* })"
  derive_f32
  exit 0
fi

mkdir -p "$cache"
if [ ! -x "$python" ]; then
  python3 -m venv "$venv"
elif [ -f "$marker" ]; then
  echo "llama.cpp in $venv was built with: $(cut -d' ' -f2- "$marker"); rebuilding for this CPU"
fi
echo "llama.cpp: building with ${build#* }"
rm -f "$marker"
export CMAKE_ARGS="${build#* }"
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}"
wheels="$cache/llama-wheels/$(echo "$build" | sha256sum | cut -c1-16)"
wheel() { find "$wheels" -name "llama_cpp_python-$version-*.whl" 2>/dev/null | head -n 1; }
if [ -z "$(wheel)" ]; then
  rm -rf "$wheels.partial"
  "$python" -m pip wheel --quiet --no-deps --no-cache-dir --no-binary llama-cpp-python \
    --wheel-dir "$wheels.partial" "llama-cpp-python==$version"
  echo "$build" >"$wheels.partial/build"
  rm -rf "$wheels"
  mv "$wheels.partial" "$wheels"
fi
"$python" -m pip uninstall --quiet --yes llama-cpp-python >/dev/null 2>&1 || true
"$python" -m pip install --quiet "$(wheel)[server]"
echo "$build" >"$marker"
if ! installed; then
  rm -f "$marker"
  echo "error: llama-cpp-python[server]==$version did not install into $venv" >&2
  exit 2
fi
echo "llama-cpp-python[server]==$version: installed in $venv"
derive_f32
