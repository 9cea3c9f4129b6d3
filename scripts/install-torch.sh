#!/usr/bin/env bash
# Installs PyTorch and transformers (the reference implementation the candle backend is checked
# against) into ${PROBITY_CACHE:-~/.cache/probity}/venv-torch, outside the repo. Idempotent: a venv
# where the pinned versions import is left alone. PyPI's torch wheel is the CUDA build (about
# 3 GB with its nvidia-* dependencies); it runs on the CPU too.
#
#   scripts/install-torch.sh
set -euo pipefail
cache="${PROBITY_CACHE:-$HOME/.cache/probity}"
venv="$cache/venv-torch"
pins=("torch==2.11.*" "transformers==5.*" "gguf" "accelerate" "sentencepiece" "protobuf")
if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import torch, transformers, gguf' 2>/dev/null; then
  echo "torch: installed in $venv ($("$venv/bin/python" -c 'import torch, transformers; print("torch", torch.__version__, "transformers", transformers.__version__)'))"
  exit 0
fi
mkdir -p "$cache"
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install --quiet "${pins[@]}"
"$venv/bin/python" -c 'import torch, transformers, gguf; print("torch", torch.__version__, "transformers", transformers.__version__)'
