#!/usr/bin/env python3
"""Writes an all-float32 copy of a GGUF file with llama.cpp's own quantizer (no torch needed).

The server/candle cross-check (tests/it/openai.rs, docs/backends/openai.md) runs both engines on an
unquantized GGUF of SmolLM2, so that both multiply in float32 and only summation order differs.
This script makes that file from the Q4_1 one: llama_model_quantize with ftype ALL_F32 and
allow_requantize dequantizes every tensor (Q4_1 blocks: d * q + m; the Q8_0 token embedding:
d * q) and stores it as F32; metadata and tokenizer are copied unchanged. Dequantizing is exact
in float32, so the output is a function of the input: the same bytes on every run (checked by its
sha256 in scripts/install-llama-server.sh). Checked once against the `gguf` package's own
dequantization (gguf 0.19.0, `gguf.quants.dequantize`): all 272 tensors bit-identical.

Run it with the python of the venv that scripts/install-llama-server.sh makes:

  ~/.cache/probity/venv-llama/bin/python scripts/dequantize-gguf.py IN.gguf OUT.gguf
"""

import ctypes
import os
import sys


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: dequantize-gguf.py IN.gguf OUT.gguf", file=sys.stderr)
        return 2
    source, target = sys.argv[1], sys.argv[2]
    if not os.path.isfile(source):
        print(f"error: {source}: no such file", file=sys.stderr)
        return 2
    import llama_cpp

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_ALL_F32
    params.allow_requantize = True
    params.nthread = 1
    partial = target + ".partial"
    code = llama_cpp.llama_model_quantize(
        source.encode(), partial.encode(), ctypes.byref(params)
    )
    if code != 0:
        print(f"error: {source}: llama_model_quantize returned {code}", file=sys.stderr)
        return 2
    os.replace(partial, target)
    return 0


if __name__ == "__main__":
    sys.exit(main())
