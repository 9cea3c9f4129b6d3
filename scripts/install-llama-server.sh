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

if installed; then
  echo "llama-cpp-python[server]==$version: installed in $venv"
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
