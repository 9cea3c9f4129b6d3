#!/usr/bin/env bash
# Builds the `probity` binary and the `bench_candle` example with CUDA, on a machine without a GPU
# or a system CUDA install: the CUDA 13.0 compiler and libraries come from PyPI wheels.
#
#   scripts/build-cuda.sh [OUT_DIR]          (default: dist/cuda-sm<CAP>)
#   scripts/build-cuda.sh --check            (CI: the same build, not copied out; skipped with a
#                                             message when the wheels cannot be installed)
#
# Environment: CUDA_COMPUTE_CAP (default 90: Hopper, H100/H200; 80 gives PTX that the driver also
# compiles for Ampere, Ada and Hopper), PROBITY_CACHE (default ~/.cache/probity), CARGO_TARGET_DIR
# (default $PROBITY_CACHE/target-cuda), PROBITY_CUDA_PROFILE (cargo profile, default `gpu`: release
# code, no debug info, stripped).
#
# What it does, and why:
# 1. A venv with the CUDA 13.0 wheels, each pinned to 13.0 (nvcc, ptxas and the headers must come
#    from one minor version: a 13.5 `nvvm` emits PTX 9.5 that the 13.0 `ptxas` refuses).
# 2. A toolkit folder ($PROBITY_CACHE/cuda-13.0) laid out as CUDA_HOME is expected to be, with
#    links to the wheels' headers and libraries, their unversioned names (`-lcublas` needs
#    libcublas.so), and a stub libcuda.so. candle links cudarc with `dynamic-linking`, so the link
#    needs the driver library; there is no driver here and no PyPI wheel carries NVIDIA's stub. The
#    stub is generated from cudarc's own driver bindings (every `cu*` entry point, each a function
#    that is never called) with the driver's soname, libcuda.so.1: at run time the loader finds
#    the real driver library and the stub is not used. This is what NVIDIA's own stubs are.
# 3. `cargo build --features cuda` with CUDA_COMPUTE_CAP and CUDARC_CUDA_VERSION=13000 (candle's
#    kernels compile to PTX for that capability, plus a static library of quantized kernels).
#
# At run time the binary needs: an NVIDIA driver of the CUDA 13.0 branch or newer (580+), and
# libcublas.so.13, libcublasLt.so.13, libcurand.so.10, libnvrtc.so.13 and libcudart.so.13 on the
# loader's path (a CUDA 13 toolkit, or the same wheels: `pip install nvidia-cublas==13.0.*
# nvidia-cuda-runtime==13.0.* nvidia-cuda-nvrtc==13.0.* nvidia-curand` and LD_LIBRARY_PATH set to
# site-packages/nvidia/cu13/lib). `ldd` on the binary lists them.
set -euo pipefail
cd "$(dirname "$0")/.."

cap="${CUDA_COMPUTE_CAP:-90}"
cache="${PROBITY_CACHE:-$HOME/.cache/probity}"
venv="$cache/venv-cuda"
toolkit="$cache/cuda-13.0"
profile="${PROBITY_CUDA_PROFILE:-gpu}"
check=0
if [ "${1:-}" = --check ]; then check=1; shift; fi
out="${1:-dist/cuda-sm$cap}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$cache/target-cuda}"

wheels=(
  "nvidia-cuda-nvcc==13.0.*" "nvidia-nvvm==13.0.*" "nvidia-cuda-crt==13.0.*"
  "nvidia-cuda-cccl==13.0.*" "nvidia-cuda-runtime==13.0.*" "nvidia-cublas==13.0.*"
  "nvidia-cuda-nvrtc==13.0.*" "nvidia-curand==10.4.0.*"
)
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
site="$("$venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
cu="$site/nvidia/cu13"
if [ ! -x "$cu/bin/nvcc" ] || [ ! -e "$cu/lib/libcublas.so.13" ]; then
  if ! "$venv/bin/pip" install --quiet "${wheels[@]}"; then
    if [ "$check" = 1 ]; then
      echo "skipped: the CUDA 13.0 wheels could not be installed into $venv (no network?)"
      exit 0
    fi
    echo "error: the CUDA 13.0 wheels could not be installed into $venv" >&2
    exit 2
  fi
fi
nvcc_version="$("$cu/bin/nvcc" --version | sed -n 's/.*release \([0-9.]*\),.*/\1/p')"
if [ "$nvcc_version" != "13.0" ]; then
  echo "error: $cu/bin/nvcc is CUDA $nvcc_version, expected 13.0" >&2
  exit 2
fi

# The toolkit folder: links into the wheels, unversioned library names, the driver stub.
mkdir -p "$toolkit/lib"
ln -sfn "$cu/bin" "$toolkit/bin"
ln -sfn "$cu/include" "$toolkit/include"
ln -sfn "$cu/nvvm" "$toolkit/nvvm"
for lib in "$cu"/lib/*.so.*; do
  name="$(basename "$lib")"
  ln -sfn "$lib" "$toolkit/lib/$name"
  ln -sfn "$lib" "$toolkit/lib/${name%%.so.*}.so"
done
cudarc="$(cargo metadata --format-version 1 --features cuda 2>/dev/null \
  | "$venv/bin/python" -c 'import json,sys; print(next(p["manifest_path"] for p in json.load(sys.stdin)["packages"] if p["name"]=="cudarc"))')"
bindings="$(dirname "$cudarc")/src/driver/sys/mod.rs"
stub="$toolkit/lib/libcuda.so"
if [ ! -e "$stub" ] || [ "$bindings" -nt "$stub" ]; then
  grep -oP '^pub unsafe fn \Kcu\w+' "$bindings" | sort -u \
    | sed 's/.*/void &(void) {}/' > "$toolkit/libcuda-stub.c"
  gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$stub" "$toolkit/libcuda-stub.c"
fi

export PATH="$cu/bin:$PATH" NVCC="$cu/bin/nvcc" CUDA_HOME="$toolkit" CUDA_PATH="$toolkit" \
  CUDA_ROOT="$toolkit" CUDA_COMPUTE_CAP="$cap" CUDARC_CUDA_VERSION=13000 \
  LIBRARY_PATH="$toolkit/lib${LIBRARY_PATH:+:$LIBRARY_PATH}"

if [ "$check" = 1 ]; then
  # The same build as below without the copy: incremental on a machine that built before (the
  # target folder is outside the clone), and it links, which `cargo check` would not prove.
  echo "== cargo build --profile $profile --features cuda (sm_$cap, CUDA $nvcc_version), no copy"
  cargo build --profile "$profile" --features cuda --bin probity
  cargo build --profile "$profile" -p runners --features cuda --example bench_candle
  exit 0
fi

echo "== cargo build --profile $profile --features cuda (sm_$cap, CUDA $nvcc_version)"
cargo build --profile "$profile" --features cuda --bin probity
cargo build --profile "$profile" -p runners --features cuda --example bench_candle

mkdir -p "$out"
for bin in "$CARGO_TARGET_DIR/$profile/probity" "$CARGO_TARGET_DIR/$profile/examples/bench_candle"; do
  cp "$bin" "$out/"
  strip "$out/$(basename "$bin")"
done
echo "== built for sm_$cap into $out"
ls -l "$out"
echo "== libraries the binary needs at run time (not found here: the driver and CUDA libraries)"
LD_LIBRARY_PATH= ldd "$out/probity" | grep -E 'cuda|cublas|curand|nvrtc|not found' || true
